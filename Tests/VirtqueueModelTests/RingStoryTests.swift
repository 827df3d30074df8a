import Testing
import VirtioProtocol
import VirtqueueModel
import Simulator

@Suite struct RingCursorTests {
    @Test("in-flight is modular: avail 2, used 65534 means 4 in flight")
    func modularInFlight() {
        let c = RingCursor(size: 4, avail: 2, next: 65535, used: 65534)
        #expect(c.inFlight == 4 && c.consumed == 1 && c.invariantHolds)
    }

    @Test("VQ-INFLIGHT guard: a full ring refuses one more publish", arguments: [1, 2, 256, 32768] as [UInt32])
    func fullRing(_ n: UInt32) {
        var c = RingCursor(size: n, start: 65530)
        c = c.applying(.publish(UInt16(truncatingIfNeeded: n)))!
        #expect(c.inFlight == n)
        #expect(c.applying(.publish(1)) == nil)
    }

    @Test("VQ-AVAIL-READ guard: the device cannot read past avail")
    func noReadPastAvail() {
        #expect(RingCursor(size: 8).applying(.consume) == nil)
    }

    @Test("random guarded steps from near 65535 keep the invariant", arguments: [1, 4, 256, 32768] as [UInt32])
    func randomWalkKeepsInvariant(_ n: UInt32) {
        var rng = SplitMix(seed: UInt64(n))
        var c = RingCursor(size: n, start: 65500)
        for _ in 0..<20_000 {
            let step: RingCursor.Step
            switch rng.next() % 3 {
            case 0: step = .publish(UInt16(rng.next() % UInt64(min(n, 64) + 1)))
            case 1: step = .consume
            default: step = .complete(UInt16(rng.next() % 8))
            }
            if let s = c.applying(step) { c = s }
            #expect(c.invariantHolds)
        }
    }
}

@Suite struct ChainWalkerTests {
    func table(_ ds: [Descriptor], size: Int = 8) -> [Descriptor] { ds + Array(repeating: .zero, count: size - ds.count) }

    func walk(_ head: UInt16, _ t: [Descriptor], indirectAllowed: Bool, indirect: [Descriptor]?) -> Chain {
        var seen = Array(repeating: UInt32(0), count: t.count)
        return ChainWalker.walk(head: head, table: t, indirectAllowed: indirectAllowed, seen: &seen, stamp: 1) { _ in indirect }
    }

    @Test("a readable header then writable buffers: writable bytes add up")
    func writableBytes() {
        let t = table([Descriptor(len: 16, flags: .next, next: 1), Descriptor(len: 512, flags: [.next, .write], next: 2), Descriptor(len: 1, flags: .write)])
        let c = walk(0, t, indirectAllowed: false, indirect: nil)
        #expect(c.violations.isEmpty && c.descriptors == [0, 1, 2] && c.writableBytes == 513)
    }

    @Test("VQ-CHAIN-LOOP: a self loop is found at the first revisit, not after N steps")
    func selfLoop() {
        let t = table([Descriptor(len: 1, flags: .next, next: 0)])
        #expect(walk(0, t, indirectAllowed: false, indirect: nil).violations.map(\.rule) == [.vqChainLoop])
    }

    @Test("VQ-INDIRECT-*: flags and length of the indirect descriptor are all checked")
    func indirectMisuse() {
        let bad = table([Descriptor(len: 20, flags: [.indirect, .next], next: 1)])
        let rules = Set(walk(0, bad, indirectAllowed: false, indirect: []).violations.map(\.rule))
        #expect(rules == [.vqIndirectFeature, .vqIndirectNext, .vqIndirectLen])
    }

    @Test("an indirect table that was never described leaves the writable length unknown")
    func unknownIndirect() {
        let t = table([Descriptor(len: 32, flags: .indirect)])
        let c = walk(0, t, indirectAllowed: true, indirect: nil)
        #expect(c.violations.isEmpty && c.writableBytes == nil)
    }
}

@Suite struct OwnershipStoryTests {
    @Test("a descriptor is the driver's, then the device's from publish, then returned at used.idx")
    func ownershipStory() {
        var q = SplitVirtqueue(size: 4)
        #expect(q.writeDescriptor(0, Descriptor(len: 64, flags: .write)).isEmpty)
        #expect(q.owner[0] == .driver)
        #expect(q.writeAvailEntry(pos: 0, head: 0).isEmpty)
        #expect(q.publishAvail(1).violations.isEmpty && q.owner[0] == .device)
        #expect(q.writeDescriptor(0, Descriptor(len: 1)).map(\.rule) == [.vqDriverOwnership])
        #expect(q.deviceRead(pos: 0, head: 0).isEmpty)
        #expect(q.writeUsed(pos: 0, id: 0, len: 64).isEmpty)
        #expect(q.owner[0] == .device, "still the device's until used.idx is published")
        #expect(q.publishUsed(1).isEmpty && q.owner[0] == .used)
        #expect(q.writeDescriptor(0, Descriptor(len: 64)).isEmpty, "the driver reclaims it")
    }
}

typealias SplitMix = SplitMix64

@Suite struct NotificationTests {
    @Test("need_event: true exactly when the event index lies in [old, new) modulo 2^16")
    func needEventWindow() {
        #expect(SplitRing.needEvent(event: 0, new: 1, old: 0))
        #expect(!SplitRing.needEvent(event: 1, new: 1, old: 0))
        #expect(SplitRing.needEvent(event: 65535, new: 2, old: 65534), "window wraps")
        #expect(!SplitRing.needEvent(event: 5, new: 5, old: 5), "empty window")
        var rng = SplitMix(seed: 42)
        for _ in 0..<100_000 {
            let e = UInt16(truncatingIfNeeded: rng.next()), o = UInt16(truncatingIfNeeded: rng.next())
            let n = o &+ UInt16(truncatingIfNeeded: rng.next() % 300)
            #expect(SplitRing.needEvent(event: e, new: n, old: o) == (e &- o < n &- o))
        }
    }

    @Test("VQ-INTERRUPT-MISSED setup: with EVENT_IDX only crossing used_event owes an interrupt")
    func eventIdxObligation() {
        var q = SplitVirtqueue(size: 8, eventIdx: true)
        q.setUsedEvent(2)
        for i: UInt16 in 0..<4 {
            _ = q.writeDescriptor(i, Descriptor(len: 8, flags: .write))
            _ = q.writeAvailEntry(pos: i, head: i)
        }
        _ = q.publishAvail(4)
        for i: UInt16 in 0..<2 { _ = q.writeUsed(pos: i, id: UInt32(i), len: 0) }
        _ = q.publishUsed(2)
        #expect(q.interruptOwed == nil, "used_event 2 not yet passed")
        _ = q.writeUsed(pos: 2, id: 2, len: 0)
        _ = q.publishUsed(3)
        #expect(q.interruptOwed == 3)
        q.interrupt()
        #expect(q.interruptOwed == nil)
    }

    @Test("NO_NOTIFY and avail_event decide whether the driver must kick")
    func kickSide() {
        var q = SplitVirtqueue(size: 8)
        #expect(q.kickRequired(old: 0, new: 1))
        q.setUsedFlags(SplitRing.usedFlagNoNotify)
        #expect(!q.kickRequired(old: 0, new: 1))
        var e = SplitVirtqueue(size: 8, eventIdx: true)
        e.setAvailEvent(3)
        #expect(!e.kickRequired(old: 0, new: 3) && e.kickRequired(old: 0, new: 4))
    }
}

@Suite struct InOrderStoryTests {
    @Test("IN_ORDER: one used element retires the whole batch before it")
    func batchRetirement() {
        var q = SplitVirtqueue(size: 8, inOrder: true)
        for i: UInt16 in 0..<3 {
            _ = q.writeDescriptor(i, Descriptor(len: 64))
            _ = q.writeAvailEntry(pos: i, head: i)
        }
        #expect(q.publishAvail(3).violations.isEmpty)
        #expect(q.writeUsed(pos: 2, id: 2, len: 0).isEmpty)
        #expect(q.publishUsed(3).isEmpty)
        #expect(q.owner[0] == .used && q.owner[1] == .used && q.owner[2] == .used)
    }
}

/// `ChainWalker.buffers` finds a looping chain by a cycle check instead of walking to N steps.
/// Exhaustively on every table of up to 5 descriptors (each ending, or NEXT to any index or one
/// past the table) and every head, it gives the answer of the plain walk bounded by N steps.
@Suite struct ChainBuffersLoopTests {
    /// The walk as it was: at most N steps, false when the chain has not ended by then.
    static func boundedWalk(head: Int, _ t: [Descriptor]) -> [UInt64]? {
        var out: [UInt64] = [], i = head, steps = 0
        while true {
            guard i < t.count, steps < t.count else { return nil }
            steps += 1
            out.append(t[i].addr)
            guard t[i].flags.contains(.next) else { return out }
            i = Int(t[i].next)
        }
    }

    @Test("every table of 1 to 5 descriptors, every head: the same buffers, or the same refusal", arguments: 1...5)
    func sameAnswersAsTheBoundedWalk(_ n: Int) {
        let choices = n + 2   // 0: ends; k >= 1: NEXT to k - 1 (k - 1 == n: outside the table)
        var combos = 1
        for _ in 0..<n { combos *= choices }
        var loops = 0
        for code in 0..<combos {
            var c = code
            let table: [Descriptor] = (0..<n).map { k in
                let v = c % choices; c /= choices
                return Descriptor(addr: UInt64(k), len: 64, flags: v == 0 ? [] : .next, next: UInt16(max(0, v - 1)))
            }
            for head in 0..<n {
                let want = Self.boundedWalk(head: head, table)
                let got = ChainWalker.buffers(head: UInt16(head), table: table) { _ in nil }
                if want == nil { loops += 1 }
                #expect(got?.buffers.map(\.addr) == want, "table \(table.map { $0.flags.contains(.next) ? Int($0.next) : -1 }) head \(head)")
            }
        }
        #expect(loops > 0)
    }
}
