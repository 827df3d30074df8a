import CSupport
import Checker
import Foundation
import Glibc
import HostilePeers
@testable import Recorder
import Testing
import TraceFormat
import VhostUser
import VirtioProtocol

/// The recorder follows packed rings by the contract the checker reads (`Specs/model.md`, "Polled
/// packed rings"): lists from its avail position, flags before bodies, used descriptors from its used
/// position, polls with positions; what it writes is judged, and a buggy driver is caught.
@Suite struct PackedFollowerTests {
    static let features = FeatureBit.version1.mask | FeatureBit.protocolFeatures.mask | FeatureBit.ringPacked.mask

    /// A driver and device that take turns, each waiting until the recorder has written what the
    /// other did (so no step falls between two polls, however loaded the machine).
    func run(size: Int, laps: Int, inOrder: Bool = false, headFirstAt: Int? = nil) throws -> (events: [TraceEvent], report: CheckReport) {
        let h = try Capture()
        defer { h.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = PackedRingWriter(memory: mem, size: size, at: 0)
        h.startPackedRing(ring: ring, features: Self.features | (inOrder ? FeatureBit.inOrder.mask : 0))
        #expect(h.waitForEvent { $0.kind == .poll }, "a first poll at the ring's base")
        var p = 0, id: UInt16 = 0, flagsSeen = 0, usedSeen = 0
        for _ in 0..<(laps * size / 2) {
            // Two one-descriptor buffers (or one list of two), then the device uses them.
            if let k = headFirstAt, p == k {
                // The head's flags, a poll that reads them, then the rest.
                ring.expose(at: p, count: 2, id: id, headFirst: true, flagsStored: 1)
                #expect(h.waitForEvents { $0.filter { $0.kind == .packedFlags }.count > flagsSeen })
                ring.expose(at: p, count: 2, id: id, headFirst: true)
                usleep(20_000)
                break
            }
            ring.expose(at: p, id: id); ring.expose(at: p + 1, id: id &+ 1)
            flagsSeen += 2
            #expect(h.waitForEvents { $0.filter { $0.kind == .packedFlags }.count >= flagsSeen })
            if inOrder { ring.use(at: p, id: id &+ 1); usedSeen += 1 } else { ring.use(at: p, id: id &+ 1); ring.use(at: p + 1, id: id); usedSeen += 2 }
            #expect(h.waitForEvents { $0.filter { $0.kind == .packedUsedFlags }.count >= usedSeen })
            p += 2; id &+= 2
        }
        usleep(50_000)
        h.fe.close()
        _ = h.finish()
        return (try h.events(), CheckRun.check(path: h.tracePath))
    }

    @Test("a packed ring of 5 (not a power of two), out of order over four laps: followed and judged clean")
    func packedRingOutOfOrderIsFollowedAndClean() throws {
        let (ev, report) = try run(size: 5, laps: 4)
        #expect(ev.contains { $0.kind == .packedDesc } && ev.contains { $0.kind == .packedUsedFlags } && !ev.contains { $0.kind == .ringGap })
        #expect(report.conformant, "\(report.findings.map(\.message)) \(report.notJudged)")
        #expect((report.polled?.exposures ?? 0) >= 8 && (report.polled?.completions ?? 0) >= 8, "\(String(describing: report.polled))")
    }

    @Test("IN_ORDER batches of two: one used descriptor each, skipped by the recorder")
    func packedRingInOrderBatchesAreFollowed() throws {
        let (ev, report) = try run(size: 6, laps: 3, inOrder: true)
        #expect(!ev.contains { $0.kind == .ringGap })
        #expect(report.conformant, "\(report.findings.map(\.message)) \(report.notJudged)")
        #expect(ev.filter { $0.kind == .packedUsedFlags }.count * 2 == ev.filter { $0.kind == .packedFlags }.count)
    }

    @Test("PACKED-CHAIN-HEAD-LAST: a driver that makes a list's first descriptor available first is caught from the recording")
    func headFirstIsCaught() throws {
        let (_, report) = try run(size: 8, laps: 2, headFirstAt: 4)
        #expect(Set(report.findings.map(\.rule)) == [.packedChainHeadLast], "\(report.findings.map(\.message)) \(report.notJudged)")
    }

    /// A ring of 4 at its base: what memory holds when a driver's exposures and the device's use of
    /// them both fall between two polls (written as that end state, so no poll lands in between).
    func overwritten(_ write: (PackedRingWriter, GuestMemory) -> Void, then more: ((PackedRingWriter, GuestMemory) -> Void)? = nil) throws -> (events: [TraceEvent], report: CheckReport) {
        let h = try Capture()
        defer { h.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = PackedRingWriter(memory: mem, size: 4, at: 0)
        h.startPackedRing(ring: ring, features: Self.features)
        #expect(h.waitForEvent { $0.kind == .poll })
        write(ring, mem)
        if let more {
            #expect(h.waitForEvent { $0.kind == .ringGap })
            more(ring, mem)
        }
        // The ring followed on: a list made available at position 2 is listed and its use read.
        usleep(50_000)
        ring.expose(at: 2, id: 7)
        #expect(h.waitForEvents { $0.contains { $0.kind == .packedFlags } })
        ring.use(at: 2, id: 7)
        #expect(h.waitForEvents { $0.contains { $0.kind == .packedUsedFlags && $0.aux == 2 } })
        h.fe.close()
        _ = h.finish()
        return (try h.events(), CheckRun.check(path: h.tracePath))
    }

    @Test("PackedSnapshotGuard.drained: buffers made available and used between two polls are read as used descriptors, the ring followed on; conformant, counted, not judged")
    func drainedBlockIsCountedAndFollowedOn() throws {
        let (ev, report) = try overwritten { ring, mem in
            ring.body(0, addr: mem.guest(0x8000), len: 64, id: 3); ring.use(at: 0, id: 3)
            ring.body(1, addr: mem.guest(0x8100), len: 64, id: 4); ring.use(at: 1, id: 4)
        }
        #expect(!ev.contains { $0.kind == .ringGap })
        #expect(ev.filter { $0.kind == .packedUsedFlags }.count == 3)
        #expect(report.conformant, "\(report.findings.map(\.message)) \(report.notJudged)")
        #expect(report.polled?.unseenExposures == 2 && report.polled?.completions == 3, "\(String(describing: report.polled))")
    }

    @Test("an exposure used before it was read while the ring is not drained is a ring_gap; the ring is followed again once drained")
    func notDrainedIsAGapThenARestart() throws {
        // Slot 0 used, slot 1 still available: which used descriptor ends which buffer is unknown.
        let (ev, report) = try overwritten({ ring, mem in
            // Slot 1 first: until slot 0 changes, nothing is available at the recorder's position.
            ring.expose(at: 1, id: 4)
            ring.body(0, addr: mem.guest(0x8000), len: 64, id: 3); ring.use(at: 0, id: 3)
        }, then: { ring, _ in ring.use(at: 1, id: 4) })
        let gap = try #require(ev.firstIndex { $0.kind == .ringGap })
        #expect(ev[(gap + 1)...].first { $0.vq == 0 }?.kind == .poll, "the restart: a poll listing nothing")
        #expect(report.conformant, "\(report.findings.map(\.message)) \(report.notJudged)")
        #expect(report.polled?.restarts == 1, "\(String(describing: report.polled))")
    }
}
