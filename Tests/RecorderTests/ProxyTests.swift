import CSupport
import Checker
import Foundation
import Glibc
@testable import Recorder
import Testing
import TraceFormat
import VirtioProtocol

/// The proxy between two fake peers: forwarding is byte- and fd-exact, the control plane is
/// recorded, rings in mapped memory are followed, and bad input ends the capture cleanly.
@Suite struct ProxyTests {
    typealias H = ProxyHarness

    @Test func forwardsMessagesRepliesAndFdsUnchangedAndRecordsRingTraffic() throws {
        let h = try ProxyHarness()
        defer { h.cleanup() }

        // SET_OWNER and GET_FEATURES with its reply pass through byte for byte.
        let owner = H.message(3)
        h.send(h.frontend, owner)
        #expect(h.receive(h.backend)?.bytes == owner)
        let getFeatures = H.message(1)
        h.send(h.frontend, getFeatures)
        #expect(h.receive(h.backend)?.bytes == getFeatures)
        // VERSION_1 and VHOST_USER_F_PROTOCOL_FEATURES: SET_VRING_ENABLE below needs the latter
        // (VHOST-USER-ENABLE-GATE).
        let reply = H.message(1, flags: 5, payload: H.payload([UInt64(1 << 32 | 1 << 30)]))
        h.send(h.backend, reply)
        #expect(h.receive(h.frontend)?.bytes == reply)
        let setFeatures = H.message(2, payload: H.payload([UInt64(1 << 32 | 1 << 30)]))
        h.send(h.frontend, setFeatures)
        #expect(h.receive(h.backend)?.bytes == setFeatures)

        // Guest memory: a 64 KiB file shared like a memfd, guest and user addresses 0x100000.
        let memPath = h.dir + "/mem"
        let memFd = open(memPath, O_RDWR | O_CREAT, 0o600)
        #expect(ftruncate(memFd, 0x10000) == 0)
        let mem = mmap(nil, 0x10000, PROT_READ | PROT_WRITE, MAP_SHARED, memFd, 0)!
        defer { munmap(mem, 0x10000); close(memFd) }
        let base: UInt64 = 0x100000
        let table = H.message(5, payload: H.payload([UInt32(1), UInt32(0), base, UInt64(0x10000), base, UInt64(0)]))
        h.send(h.frontend, table, fds: [memFd])
        let got = try #require(h.receive(h.backend))
        #expect(got.bytes == table)
        #expect(got.fds.count == 1)
        var a = stat(), b = stat()
        fstat(memFd, &a); fstat(got.fds[0], &b)
        #expect(a.st_ino == b.st_ino)
        got.fds.forEach { close($0) }

        // vq 0, size 8: desc at +0, avail at +0x1000, used at +0x2000.
        let setup: [[UInt8]] = [
            H.message(8, payload: H.payload([UInt32(0), UInt32(8)])),
            H.message(9, payload: H.payload([UInt32(0), UInt32(0), base, base + 0x2000, base + 0x1000, UInt64(0)])),
            H.message(10, payload: H.payload([UInt32(0), UInt32(0)])),
            H.message(18, payload: H.payload([UInt32(0), UInt32(1)])),
        ]
        for m in setup {
            h.send(h.frontend, m)
            #expect(h.receive(h.backend)?.bytes == m)
        }
        // The kick fd reaches the back-end as the same pipe.
        var pipeFds: [Int32] = [0, 0]
        #expect(pipe(&pipeFds) == 0)
        let kick = H.message(12, payload: H.payload([UInt64(0)]))
        h.send(h.frontend, kick, fds: [pipeFds[0]])
        let k = try #require(h.receive(h.backend))
        #expect(k.bytes == kick && k.fds.count == 1)
        var byte: UInt8 = 7
        #expect(write(pipeFds[1], &byte, 1) == 1)
        var back: UInt8 = 0
        #expect(read(k.fds[0], &back, 1) == 1 && back == 7)
        (pipeFds + k.fds).forEach { close($0) }
        usleep(50_000)   // the ring's starting observation, at its base, before anything is exposed

        // Driver exposes a 2-descriptor chain (readable then writable); the device completes it.
        let m = mem.assumingMemoryBound(to: UInt8.self)
        func put<T>(_ off: Int, _ v: T) { withUnsafeBytes(of: v) { UnsafeMutableRawPointer(m + off).copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
        put(0, base + 0x3000); put(8, UInt32(64)); put(12, UInt16(1)); put(14, UInt16(1))
        put(16, base + 0x4000); put(24, UInt32(1500)); put(28, UInt16(2)); put(30, UInt16(0))
        put(0x1000 + 4, UInt16(0))
        put(0x1000 + 2, UInt16(1))
        usleep(100_000)
        put(0x2000 + 4, UInt32(0)); put(0x2000 + 8, UInt32(1000))
        put(0x2000 + 2, UInt16(1))
        usleep(100_000)

        // A message announcing a 1 MiB payload cannot be relayed: the capture ends with a reason.
        h.send(h.frontend, H.message(2, payload: []).prefix(8) + H.payload([UInt32(1 << 20)]))
        let r = try #require(h.finish())
        guard case .failed(let why) = r.record.end else { Issue.record("capture should fail, ended \(r.record.end)"); return }
        #expect(why.contains("malformed"))
        #expect(r.exitStatus == 2)
        // Both peers see the connection close, as they would if the other side had gone.
        #expect(h.receive(h.backend, timeoutMs: 2000) == nil)

        let all = try h.events()
        // The ring's start: one used_slot per slot of its 8-entry used ring, before its first poll.
        #expect(all.filter { $0.kind == .usedSlot }.count == 8)
        let ev = all.filter { $0.kind != .usedSlot }
        let kinds = ev.map(\.kind)
        // The control plane as sent, the back-end's offer as answered, the table region by region.
        #expect(Array(kinds.prefix(10)) == [.setOwner, .getFeatures, .setFeatures, .setMemTable, .memRegion, .setVringNum, .setVringAddr, .setVringBase, .setVringEnable, .setVringKick])
        // Snapshots: the starting observation at the base, the exposure, its quiet close, the
        // completion, its quiet close.
        #expect(ev[1].p0 == 1 << 32 | 1 << 30, "get_features: the back-end's answer")
        #expect(ev[4].aux == 0 && ev[4].p0 == base && ev[4].p1 == 0x10000 && ev[4].p2 == base, "mem_region 0: guest, size, user")
        #expect(Array(kinds.dropFirst(10)) == [.poll, .desc, .desc, .availEntry, .poll, .poll, .usedEntry, .poll, .poll, .captureEnd])
        #expect(ev.dropFirst(10).dropLast().allSatisfy { $0.isSampled })
        #expect(ev.last?.p0 == UInt64(CaptureEndReason.failure.rawValue), "capture_end: the session failed (the malformed message)")
        #expect(ev[11].descLen == 64 && ev[12].descFlags == .write)
        #expect(ev[14].p0 == 1 && ev[14].p1 == 0, "poll avail=1 used=0")
        #expect(ev[16].p1 == 0 && ev[16].p2 == 1000)
        #expect(ev[17].p0 == 1 && ev[17].p1 == 1, "poll avail=1 used=1")
        let header = try TraceReader(path: h.tracePath).header
        #expect(header.flags.contains(.sampled) && header.profile == .vhostUser && header.queueCount == 256)
        let report = CheckRun.check(path: h.tracePath)
        #expect(report.conformant, "\(report.findings.map(\.message))")
    }

    @Test func unmappableMemoryTableIsForwardedAndLeavesTheControlPlaneRecorded() throws {
        let h = try ProxyHarness()
        defer { h.cleanup() }
        h.send(h.frontend, H.message(3))
        _ = h.receive(h.backend)
        // A pipe cannot be mapped: the message still reaches the back-end with its fd.
        var p: [Int32] = [0, 0]
        #expect(pipe(&p) == 0)
        let table = H.message(5, payload: H.payload([UInt32(1), UInt32(0), UInt64(0x1000), UInt64(0x1000), UInt64(0x1000), UInt64(0)]))
        h.send(h.frontend, table, fds: [p[0]])
        let got = try #require(h.receive(h.backend))
        #expect(got.bytes == table && got.fds.count == 1)
        (p + got.fds).forEach { close($0) }
        close(h.frontend); h.frontend = -1
        let r = try #require(h.finish())
        #expect(r.record.end == .frontendClosed)
        #expect(r.exitStatus == 0)
        #expect(h.log.contains { $0.contains("not a memory file") }, "\(h.log)")
        let kinds = try h.events()
        // The table is recorded as declared even though the recorder could not map it.
        #expect(kinds.map(\.kind) == [.setOwner, .setMemTable, .memRegion, .captureEnd])
    }

    @Test func backendDisconnectEndsTheCaptureWithAValidTrace() throws {
        let h = try ProxyHarness()
        defer { h.cleanup() }
        h.send(h.frontend, H.message(3))
        _ = h.receive(h.backend)
        close(h.backend); h.backend = -1
        let r = try #require(h.finish())
        #expect(r.record.end == .backendClosed)
        #expect(h.receive(h.frontend, timeoutMs: 2000) == nil)
        let kinds = try h.events()
        #expect(kinds.map(\.kind) == [.setOwner, .captureEnd])
        #expect(kinds.last?.p0 == UInt64(CaptureEndReason.backendClosed.rawValue))
    }

    @Test func truncatedMessageFromTheFrontEndEndsTheCaptureWithAReason() throws {
        let h = try ProxyHarness()
        defer { h.cleanup() }
        h.send(h.frontend, H.message(3))
        _ = h.receive(h.backend)
        // Header promises 8 bytes, 4 arrive, then the front-end is gone.
        h.send(h.frontend, Array(H.message(2, payload: H.payload([UInt64(1)])).prefix(16)))
        close(h.frontend); h.frontend = -1
        let r = try #require(h.finish())
        guard case .failed(let why) = r.record.end else { Issue.record("ended \(r.record.end)"); return }
        #expect(why.contains("truncated"))
        let kinds = try h.events()
        #expect(kinds.map(\.kind) == [.setOwner, .captureEnd])
        #expect(kinds.last?.p0 == UInt64(CaptureEndReason.failure.rawValue))
    }

    @Test func maxEventsEndsTheCaptureAtExactlyThatMany() throws {
        let h = try ProxyHarness { $0.maxEvents = 3 }
        defer { h.cleanup() }
        for m in [H.message(3), H.message(2, payload: H.payload([UInt64(1 << 32)])), H.message(16, payload: H.payload([UInt64(1)]))] {
            h.send(h.frontend, m)
            _ = h.receive(h.backend)
        }
        let r = try #require(h.finish())
        #expect(r.record.end == .maxEvents)
        let kinds = try h.events()
        // The count holds the closing capture_end, which says why the capture ended.
        #expect(kinds.map(\.kind) == [.setOwner, .setFeatures, .captureEnd] && kinds.last?.p0 == UInt64(CaptureEndReason.maxEvents.rawValue))
    }

    @Test func liveCheckStopsAtTheFirstViolationWhenAsked() throws {
        let h = try ProxyHarness(check: true, stopOnViolation: true) { $0.queues = 2 }
        defer { h.cleanup() }
        // SET_VRING_CALL (no fd) before SET_OWNER: the back-end should have refused it.
        let call = H.message(13, payload: H.payload([UInt64(0x100)]))
        h.send(h.frontend, call)
        #expect(h.receive(h.backend)?.bytes == call)
        let r = try #require(h.finish())
        #expect(r.record.end == .sinkStopped)
        #expect(r.findings.first?.rule == .vhostOwnerFirst)
        #expect(r.exitStatus == 1)
        // The trace up to the violation is on disk and shows the same finding offline.
        #expect(CheckRun.check(path: h.tracePath).findings.first?.rule == .vhostOwnerFirst)
    }

    @Test func reconnectingFrontEndStartsANewSessionInTheSameTrace() throws {
        let h = try ProxyHarness { $0.reconnect = true; $0.acceptTimeout = 2 }
        defer { h.cleanup() }
        h.send(h.frontend, H.message(3))
        _ = h.receive(h.backend)
        close(h.frontend)
        // The back-end sees the front-end leave, then a new connection.
        #expect(h.receive(h.backend, timeoutMs: 2000) == nil)
        close(h.backend)
        h.frontend = cs_unix_connect(h.options.listenPath)
        h.backend = cs_unix_accept(h.backendListener, 5000)
        #expect(h.frontend >= 0 && h.backend >= 0)
        h.send(h.frontend, H.message(3))
        #expect(h.receive(h.backend)?.bytes == H.message(3))
        close(h.frontend); h.frontend = -1
        // Nobody comes back: the capture ends after the accept timeout.
        let r = try #require(h.finish(timeout: 10))
        #expect(r.record.end == .frontendClosed)
        let kinds = try h.events().map(\.kind)
        #expect(kinds == [.setOwner, .resetOwner, .setOwner, .resetOwner, .captureEnd])
        #expect(CheckRun.check(path: h.tracePath).conformant)
    }

    @Test func relayedNotificationsReachThePeerAndAreRecorded() throws {
        let h = try ProxyHarness { $0.relayNotifications = true }
        defer { h.cleanup() }
        h.send(h.frontend, H.message(3)); _ = h.receive(h.backend)
        let memFd = open(h.dir + "/mem", O_RDWR | O_CREAT, 0o600)
        #expect(ftruncate(memFd, 0x10000) == 0)
        defer { close(memFd) }
        let base: UInt64 = 0x100000
        h.send(h.frontend, H.message(5, payload: H.payload([UInt32(1), UInt32(0), base, UInt64(0x10000), base, UInt64(0)])), fds: [memFd])
        h.receive(h.backend)?.fds.forEach { close($0) }
        for m in [H.message(8, payload: H.payload([UInt32(0), UInt32(8)])),
                  H.message(9, payload: H.payload([UInt32(0), UInt32(0), base, base + 0x2000, base + 0x1000, UInt64(0)]))] {
            h.send(h.frontend, m); _ = h.receive(h.backend)
        }
        // Kick and call eventfds: the back-end receives the recorder's, not the front-end's.
        let kick = cs_eventfd(), call = cs_eventfd()
        defer { close(kick); close(call) }
        h.send(h.frontend, H.message(13, payload: H.payload([UInt64(0)])), fds: [call])
        let beCall = try #require(h.receive(h.backend)?.fds.first)
        h.send(h.frontend, H.message(12, payload: H.payload([UInt64(0)])), fds: [kick])
        let beKick = try #require(h.receive(h.backend)?.fds.first)
        defer { close(beCall); close(beKick) }
        // A different eventfd: a count put into the back-end's never shows on the front-end's.
        #expect(cs_eventfd_add_nb(beKick, 5) == 0)
        #expect(cs_eventfd_take_nb(kick) == 0)
        #expect(cs_eventfd_take_nb(beKick) == 5)
        // A kick from the front-end arrives at the back-end with its count; a call goes back.
        #expect(cs_eventfd_add_nb(kick, 2) == 0)
        var got: Int64 = 0
        for _ in 0..<100 where got == 0 { usleep(10_000); got = Int64(cs_eventfd_take_nb(beKick)) }
        #expect(got == 2)
        #expect(cs_eventfd_add_nb(beCall, 1) == 0)
        got = 0
        for _ in 0..<100 where got == 0 { usleep(10_000); got = Int64(cs_eventfd_take_nb(call)) }
        #expect(got == 1)
        close(h.frontend); h.frontend = -1
        _ = try #require(h.finish())
        let kinds = try h.events().map(\.kind)
        #expect(kinds.contains(.kick) && kinds.contains(.interrupt))
    }
}
