import CSupport
import Foundation
import Glibc
import HostilePeers
import LiveCheck
@testable import Recorder
import Testing
import TraceFormat
import VhostUser
import VirtioProtocol

/// The recorder's side of `Specs/trace-format.md` "Sampled traces": per poll the avail side, the
/// used side, then `poll avail=A used=U`; the lap guard; starting observations; quiet polls.
@Suite struct SnapshotTests {
    static func kinds(_ ev: [TraceEvent]) -> [EventKind] { ev.map(\.kind) }
    /// The ring's observations, without the used_slot events every start writes first.
    static func data(_ ev: [TraceEvent]) -> [TraceEvent] { ev.filter { $0.kind.plane != .control && $0.kind != .usedSlot } }
    static func poll(_ e: TraceEvent) -> (UInt16, UInt16)? {
        e.kind == .poll ? (UInt16(truncatingIfNeeded: e.p0), UInt16(truncatingIfNeeded: e.p1)) : nil
    }

    @Test func startingObservationAtTheBaseReadsEveryBufferInFlightFromTheBase() throws {
        let h = try Capture()
        defer { h.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: 16, at: 0)
        // Before the kick: buffers at positions 10, 11, 12 (base 10), none used yet.
        for k in 0..<3 {
            ring.simpleBuffer(k, bufferOffset: 0x8000 + 0x100 * k)
            ring.availSlot(pos: UInt16(10 + k), head: UInt16(k))
        }
        ring.availIdx(13); ring.usedIdx(10)
        h.startRing(ring: ring, base: 10)
        #expect(h.waitForEvent { $0.kind == .poll })
        h.fe.close()
        _ = h.finish()
        let all = try h.events(vq: 0)
        // What the used ring held, slot by slot, before anything else of the ring.
        #expect(all.filter { $0.kind.plane != .control }.prefix(16).allSatisfy { $0.kind == .usedSlot })
        #expect(all.filter { $0.kind == .usedSlot }.map(\.p0) == (0..<16).map(UInt64.init))
        let d = Self.data(all)
        // The snapshot from (base, base), then its quiet close.
        #expect(Self.kinds(d) == [.desc, .availEntry, .desc, .availEntry, .desc, .availEntry, .poll, .poll])
        #expect(d.filter { $0.kind == .availEntry }.map(\.p0) == [10, 11, 12])
        #expect(Self.poll(d[6])! == (13, 10))
    }

    @Test func startingObservationAwayFromTheBaseIsTheIndicesAlone() throws {
        let h = try Capture()
        defer { h.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: 16, at: 0)
        for k in 0..<3 { ring.simpleBuffer(k, bufferOffset: 0x8000); ring.availSlot(pos: UInt16(10 + k), head: UInt16(k)) }
        ring.availIdx(13); ring.usedIdx(11)   // one already used: the heads in flight are unknown
        h.startRing(ring: ring, base: 10)
        #expect(h.waitForEvent { $0.kind == .poll })
        h.fe.close()
        _ = h.finish()
        let d = Self.data(try h.events(vq: 0))
        #expect(Self.kinds(d) == [.poll])
        #expect(Self.poll(d[0])! == (13, 11))
    }

    @Test func lapGuardTurnsAPollWhoseEntriesMayHaveBeenOverwrittenIntoAGap() throws {
        let h = try Capture { $0.writeAhead = 4 }
        defer { h.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: 8, at: 0)
        for k in 0..<8 { ring.simpleBuffer(k, bufferOffset: 0x8000) }
        h.startRing(ring: ring)
        #expect(h.waitForEvent { $0.kind == .poll })
        // 5 exposed at once, and the device already used the first: 5 + W(4) > 8 with used.idx past
        // position 0, so the driver could have rewritten slot 0 for position 8 before it was read.
        for k in 0..<5 { ring.availSlot(pos: UInt16(k), head: UInt16(k)) }
        ring.complete(id: 0, len: 0, at: 0)
        ring.availIdx(5)
        #expect(h.waitForEvent { $0.kind == .ringGap })
        usleep(50_000)
        h.fe.close()
        let r = try #require(h.finish())
        let d = Self.data(try h.events(vq: 0))
        #expect(Self.kinds(d) == [.poll, .ringGap, .poll], "\(Self.kinds(d))")
        #expect(d[1].p0 == UInt64(RingGapReason.lap.rawValue))
        #expect(Self.poll(d[2])! == (5, 1), "the starting observation after the gap")
        #expect(r.exitStatus == 3, "a gap makes the trace incomplete")
        #expect(r.record.ringProblems.contains { $0.contains("reason=1") })
    }

    @Test func aQuietPollIsWrittenOnceAfterNewsThenNoMore() throws {
        let h = try Capture()
        defer { h.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: 8, at: 0)
        ring.simpleBuffer(0, bufferOffset: 0x8000)
        h.startRing(ring: ring)
        #expect(h.waitForEvent { $0.kind == .poll })
        ring.expose(head: 0, at: 0)
        usleep(300_000)
        h.fe.close()
        _ = h.finish()
        let d = Self.data(try h.events(vq: 0))
        #expect(Self.kinds(d) == [.poll, .desc, .availEntry, .poll, .poll])
        #expect(Self.poll(d[3])! == (1, 0) && Self.poll(d[4])! == (1, 0))
    }

    @Test func getVringBasePollsTheRingOnceMoreBeforeItsReplyIsWritten() throws {
        let h = try Capture { $0.pollIntervalMicros = 200_000 }   // slow polls: the reply's poll is the one that sees it
        defer { h.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: 8, at: 0)
        ring.simpleBuffer(0, bufferOffset: 0x8000, write: true)
        h.startRing(ring: ring)
        #expect(h.waitForEvent { $0.kind == .poll })
        ring.expose(head: 0, at: 0)
        ring.complete(id: 0, len: 10, at: 0)
        h.forward(Message(.getVringBase, payload: VringState(index: 0, num: 0)))
        h.reply(Message(.getVringBase, flags: [.version1, .reply], payload: VringState(index: 0, num: 1)))
        usleep(100_000)
        h.fe.close()
        _ = h.finish()
        let ev = try h.events(vq: 0)
        let stop = try #require(ev.firstIndex { $0.kind == .getVringBase })
        #expect(ev[..<stop].contains { $0.kind == .usedEntry }, "the completion before the stop")
        #expect(!ev[(stop + 1)...].contains { $0.kind.plane != .control }, "nothing polled after the stop")
    }
}
