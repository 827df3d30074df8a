import CSupport
import Checker
import Foundation
import Glibc
import HostilePeers
import LiveCheck
@testable import Recorder
import Testing
import TraceFormat
import VhostUser
import VirtioProtocol

/// Issue 9, "Recorder": each item the hostile front-end and fake back-end found, pinned down.
@Suite struct HostilePeerRegressionTests {
    static func gaps(_ ev: [TraceEvent], _ reason: RingGapReason) -> Int {
        ev.filter { $0.kind == .ringGap && $0.p0 == UInt64(reason.rawValue) }.count
    }

    /// The trace on disk reads and checks without error (0, 1 or 3, never 2).
    static func checkable(_ path: String) -> Bool {
        let r = CheckRun.check(path: path)
        return r.error == nil
    }

    // MARK: no SIGBUS

    @Test func regionDeclaredLargerThanItsMemfdIsNotMappedAndItsRingIsReportedUnmapped() throws {
        let h = try Capture()
        defer { h.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: 8, at: 0)
        h.startRing(ring: ring, region: mem.region(size: 1 << 20))
        #expect(h.waitForEvent { $0.kind == .ringGap })
        h.fe.close()
        let r = try #require(h.finish())
        #expect(h.log.contains { $0.contains("beyond the end of its file") }, "\(h.log)")
        #expect(Self.gaps(try h.events(), .unmapped) == 1)
        #expect(r.exitStatus == CheckExit.incomplete)
        #expect(Self.checkable(h.tracePath))
    }

    @Test func mmapOffsetBeyondTheEndOfTheMemfdIsNotMapped() throws {
        let h = try Capture()
        defer { h.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: 8, at: 0)
        h.startRing(ring: ring, region: mem.region(size: 4096, mmapOffset: 1 << 20))
        #expect(h.waitForEvent { $0.kind == .ringGap })
        h.fe.close()
        let r = try #require(h.finish())
        #expect(h.log.contains { $0.contains("beyond the end of its file") })
        #expect(r.exitStatus == CheckExit.incomplete)
    }

    @Test func indirectTableBeyondTheEndOfAShrunkMemfdBecomesAMemoryFaultGapAndTheCaptureGoesOn() throws {
        let h = try Capture()
        defer { h.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: 8, at: 0)
        ring.desc(0, addr: mem.guest(0xF000), len: 4 * 16, flags: .indirect)
        ring.simpleBuffer(1, bufferOffset: 0x4000)
        h.startRing(ring: ring, features: FeatureBit.version1.mask | FeatureBit.indirectDesc.mask)
        #expect(h.waitForEvent { $0.kind == .poll })
        let recovered = cs_guard_recovered()
        mem.truncate(to: 0x8000)   // the ring stays in the file, the indirect table does not
        ring.expose(head: 0, at: 0)
        #expect(h.waitForEvent { $0.kind == .ringGap })
        mem.restore()
        ring.expose(head: 1, at: 1)
        #expect(h.waitForEvent { $0.kind == .availEntry && $0.p0 == 1 })
        h.fe.close()
        let r = try #require(h.finish())
        let ev = try h.events(vq: 0)
        #expect(Self.gaps(ev, .memoryFault) == 1)
        #expect(cs_guard_recovered() > recovered, "the fault was taken and recovered")
        #expect(r.record.end == .frontendClosed && r.exitStatus == CheckExit.incomplete)
        #expect(Self.checkable(h.tracePath))
    }

    @Test func memfdShrunkWhileTheRingIsPolledBecomesAGapAndFollowingResumesWhenItIsBack() throws {
        let h = try Capture()
        defer { h.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: 8, at: 0)
        ring.simpleBuffer(0, bufferOffset: 0x8000)
        h.startRing(ring: ring)
        #expect(h.waitForEvent { $0.kind == .poll })
        mem.truncate(to: 0)
        #expect(h.waitForEvent { $0.kind == .ringGap })
        usleep(100_000)   // polls keep faulting meanwhile: one gap, not one per poll
        mem.restore()
        // The starting observation after the gap, then a new exposure seen as a snapshot.
        #expect(h.waitForEvent { _ in ((try? h.events(vq: 0).filter { $0.kind == .poll }.count) ?? 0) >= 2 })
        ring.simpleBuffer(0, bufferOffset: 0x8000)
        ring.expose(head: 0, at: 0)
        #expect(h.waitForEvent { $0.kind == .availEntry })
        h.fe.close()
        let r = try #require(h.finish())
        let d = try h.events(vq: 0).filter { $0.kind.plane != .control && $0.kind != .usedSlot }
        #expect(d.map(\.kind) == [.poll, .ringGap, .poll, .desc, .availEntry, .poll, .poll], "\(d.map(\.kind))")
        #expect(r.exitStatus == CheckExit.incomplete)
    }

    // MARK: no hang

    @Test func truncatedHeaderThenSilenceEndsTheSessionAtTheStallTimeout() throws {
        let h = try Capture { $0.stallTimeout = 0.5 }
        defer { h.cleanup() }
        h.forward(Message(.setOwner))
        let t0 = Date()
        h.fe.send([1, 0, 0, 0, 0])
        let r = try #require(h.finish(timeout: 5))
        #expect(Date().timeIntervalSince(t0) < 2.0)
        guard case .failed(let why) = r.record.end else { Issue.record("\(r.record.end)"); return }
        #expect(why.contains("front-end stalled") && why.contains("mid-header"), "\(why)")
        #expect(r.exitStatus == CheckExit.usageOrInput)
        #expect(try h.events().map(\.kind) == [.setOwner, .captureEnd])
    }

    @Test func backEndThatStallsMidReplyEndsTheSessionAtTheStallTimeout() throws {
        let h = try Capture { $0.stallTimeout = 0.5 }
        defer { h.cleanup() }
        h.forward(Message(.getFeatures))
        let t0 = Date()
        h.be.send(Array(Message(.getFeatures, flags: [.version1, .reply], payload: U64Payload(1)).bytes.prefix(14)))
        let r = try #require(h.finish(timeout: 5))
        #expect(Date().timeIntervalSince(t0) < 2.0)
        guard case .failed(let why) = r.record.end else { Issue.record("\(r.record.end)"); return }
        #expect(why.contains("back-end stalled") && why.contains("mid-payload"), "\(why)")
    }

    @Test func peerThatStopsReadingCostsAtMostTheStallTimeout() throws {
        let h = try Capture { $0.stallTimeout = 0.5 }
        defer { h.cleanup() }
        // The back-end never reads; the front-end sends until its own send would block.
        let m = Message(.setConfig, payload: ConfigPayload(offset: 0, data: [UInt8](repeating: 1, count: 256)))
        let t0 = Date()
        var n = 0
        while h.fe.send(m.bytes, within: 0.2) && n < 100_000 { n += 1 }
        let r = try #require(h.finish(timeout: 5))
        #expect(Date().timeIntervalSince(t0) < 4.0)
        guard case .failed(let why) = r.record.end else { Issue.record("\(r.record.end)"); return }
        #expect(why.contains("back-end stalled") && why.contains("stopped reading"), "\(why)")
    }

    @Test func durationEndsTheCaptureEvenWhileAPeerStallsMidMessage() throws {
        let h = try Capture { $0.stallTimeout = 30; $0.duration = 1 }
        defer { h.cleanup() }
        h.fe.send([1, 0, 0, 0, 0, 0, 0])
        let t0 = Date()
        let r = try #require(h.finish(timeout: 5))
        #expect(Date().timeIntervalSince(t0) < 2.0)
        #expect(r.record.end == .duration)
    }

    @Test func fullCallEventfdWithRelayedNotificationsNeverBlocksTheRecorder() throws {
        let h = try Capture { $0.relayNotifications = true; $0.duration = 2 }
        defer { h.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: 8, at: 0)
        // The front-end's call fd is blocking and its counter full: a blocking write would hang.
        let call = cs_eventfd_blocking()
        defer { close(call) }
        #expect(EventNotifier.signal(call, count: 0xffff_ffff_ffff_fffe) == .signalled)
        h.startRing(ring: ring)
        let got = try #require(h.forward(Message(.setVringCall, payload: VringFile(index: 0), fds: [call]), keepFds: true))
        let beCall = try #require(got.fds.first)
        defer { close(beCall) }
        // The back-end interrupts again and again.
        for _ in 0..<1000 { _ = EventNotifier.signal(beCall) }
        // Still relaying promptly.
        let t0 = Date()
        #expect(h.forward(Message(.setVringNum, payload: VringState(index: 1, num: 8))) != nil)
        #expect(Date().timeIntervalSince(t0) < 1)
        let r = try #require(h.finish(timeout: 5))
        #expect(r.record.end == .duration)
        #expect(try h.events().contains { $0.kind == .interrupt })
    }

    // MARK: no amplification

    @Test func loopingChainWalkedFromEverySlotIsBoundedAndBecomesAWorkBoundGap() throws {
        let h = try Capture()
        defer { h.cleanup() }
        let n = 1024
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: n, at: 0)
        for i in 0..<n { ring.desc(i, addr: mem.guest(0xF000), len: 16, flags: .next, next: UInt16((i + 1) % n)) }
        h.startRing(ring: ring)
        #expect(h.waitForEvent { $0.kind == .poll })
        // One index write exposes 1000 heads whose chains each loop over all 1024 descriptors.
        for k in 0..<1000 { ring.availSlot(pos: UInt16(k), head: UInt16(k % n)) }
        ring.availIdx(1000)
        #expect(h.waitForEvent { $0.kind == .ringGap })
        h.fe.close()
        let r = try #require(h.finish())
        let ev = try h.events(vq: 0)
        #expect(Self.gaps(ev, .workBound) == 1)
        let polled = ev.filter { $0.kind != .usedSlot }
        #expect(polled.count < 100, "nothing of the poll that hit the bound was written (\(polled.count) events)")
        #expect(r.exitStatus == CheckExit.incomplete)
    }

    @Test func indirectTablesOf65536EntriesAreBoundedByTheWorkBound() throws {
        let h = try Capture()
        defer { h.cleanup() }
        let mem = GuestMemory(size: 2 << 20)
        let ring = SplitRingWriter(memory: mem, size: 16, at: 0)
        for i in 0..<16 { ring.desc(i, addr: mem.guest(1 << 20), len: 65536 * 16, flags: .indirect) }
        h.startRing(ring: ring, features: FeatureBit.version1.mask | FeatureBit.indirectDesc.mask)
        #expect(h.waitForEvent { $0.kind == .poll })
        for k in 0..<15 { ring.availSlot(pos: UInt16(k), head: UInt16(k)) }
        ring.availIdx(15)
        #expect(h.waitForEvent { $0.kind == .ringGap })
        h.fe.close()
        _ = h.finish()
        #expect(Self.gaps(try h.events(vq: 0), .workBound) == 1)
    }

    // MARK: no invalid trace reported as success

    @Test func vringIndexBeyondTheTracesQueueLimitIsThePeersErrorNeverAnEmptyTraceNorExit0() throws {
        let h = try Capture()
        defer { h.cleanup() }
        h.forward(Message(.setOwner))
        let got = h.forward(Message(.setVringNum, payload: VringState(index: 32748, num: 256)))
        #expect(got != nil, "forwarded: refusing it is the back-end's job")
        h.fe.close()
        let r = try #require(h.finish())
        #expect(r.record.peerErrors.count == 1 && r.record.peerErrors[0].contains("vring 32748"))
        #expect(r.exitStatus == CheckExit.incomplete)
        let header = try TraceReader(path: h.tracePath).header
        #expect(header.queueCount == 256)
        // The trace says it too: a device-wide gap, so it never checks as conformant.
        #expect(try h.events().map(\.kind) == [.setOwner, .ringGap, .captureEnd])
        #expect(CheckRun.check(path: h.tracePath).incomplete)
    }

    @Test func traceHeaderIsOnDiskBeforeAnyoneConnectsAndEventsWithinASecond() throws {
        let h = try Capture(connect: false)
        defer { h.cleanup() }
        var header: TraceHeader?
        for _ in 0..<100 where header == nil {
            header = try? TraceReader(path: h.tracePath).header
            usleep(10_000)
        }
        #expect(header?.queueCount == 256 && header?.flags.contains(.sampled) == true)
        try h.connectPeers()
        h.forward(Message(.setOwner))
        let t0 = Date()
        #expect(h.waitForEvent(within: 1.5) { $0.kind == .setOwner }, "flushed while the capture runs")
        #expect(Date().timeIntervalSince(t0) < 1.1)
        #expect(!h.isDone)
        h.fe.close()
        _ = h.finish()
    }

    @Test func fdsSentWithThePayloadSegmentAfterAHeaderAloneAreForwarded() throws {
        let h = try Capture()
        defer { h.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let m = Message(.setMemTable, payload: MemoryTablePayload(regions: [mem.region()]))
        h.fe.send(Array(m.bytes.prefix(12)))
        usleep(20_000)
        h.fe.send(Array(m.bytes.dropFirst(12)), fds: [mem.fd])
        let got = try #require(h.be.receiveMessage())
        defer { got.closeFds() }
        #expect(got.bytes == m.bytes)
        #expect(got.fds.count == 1 && FileIdentity(got.fds[0]) == FileIdentity(mem.fd))
        h.fe.close()
        _ = h.finish()
    }

    // MARK: exit status

    @Test func exitStatusIsZeroOnlyForAValidTraceWithEveryRingFollowed() throws {
        let h = try Capture()
        defer { h.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: 8, at: 0)
        ring.simpleBuffer(0, bufferOffset: 0x8000, write: true)
        h.startRing(ring: ring)
        #expect(h.waitForEvent { $0.kind == .poll })
        ring.expose(head: 0, at: 0)
        ring.complete(id: 0, len: 8, at: 0)
        usleep(50_000)
        h.fe.close()
        let r = try #require(h.finish())
        #expect(r.record.ringProblems.isEmpty && r.record.peerErrors.isEmpty)
        #expect(r.exitStatus == CheckExit.conformant)
    }

    @Test func anOutputThatCannotBeWrittenIsExit2BeforeAnyoneConnects() throws {
        let r = LiveRecord.run(RecordOptions(listenPath: "/tmp/x-\(getpid()).sock", connectPath: "/nonexistent.sock",
                                             outputPath: "/nonexistent-dir/t.trace"), log: { _ in })
        guard case .setupFailed(let why) = r.record.end else { Issue.record("\(r.record.end)"); return }
        #expect(why.contains("cannot write the trace"))
        #expect(r.exitStatus == CheckExit.usageOrInput)
    }
}
