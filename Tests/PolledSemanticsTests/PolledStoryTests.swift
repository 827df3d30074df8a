import PolledSemantics
import Testing
import VirtioProtocol
import VirtqueueModel

/// Polled observations of one ring, written as the story of what each poll read.
struct PollScript {
    var ring: PolledRing
    var findings: [String] = []
    var ref: UInt64 = 0
    init(size: UInt32, inOrder: Bool = false, indirect: Bool = false, zeroUsedRing: Bool = true) {
        ring = PolledRing(size: size, base: 0, indirectAllowed: indirect, eventIdx: false, inOrder: inOrder)
        if zeroUsedRing { for s in 0..<UInt16(size) { _ = ring.observe(.usedSlot(slot: s, id: 0, len: 0), ref: 0) } }
    }
    /// One poll: the chains read for the new avail positions (head, descriptors as read), the new
    /// used elements (id, len), and the two indices.
    mutating func poll(avail: UInt16, used: UInt16, exposed: [(UInt16, [(UInt16, Descriptor)])] = [], completed: [(UInt32, UInt32)] = [],
                       firstAvail: UInt16? = nil, firstUsed: UInt16? = nil) {
        var pos = firstAvail ?? (avail &- UInt16(exposed.count))
        for (head, reads) in exposed {
            for (i, d) in reads { _ = ring.observe(.descriptor(DescriptorRead(.table(i), d)), ref: ref) }
            _ = ring.observe(.availEntry(pos: pos, head: head), ref: ref)
            pos &+= 1; ref += 1
        }
        var upos = firstUsed ?? (used &- UInt16(completed.count))
        for (id, len) in completed {
            _ = ring.observe(.usedEntry(pos: upos, id: id, len: len), ref: ref)
            upos &+= 1; ref += 1
        }
        let o = ring.observe(.poll(avail: avail, used: used), ref: ref)!
        ref += 1
        findings += o.violations.map { "\($0.violation.rule.rawValue): \($0.violation.message)" }
        if let a = o.anomaly { findings.append("anomaly: \(a)") }
    }
    var rules: [RuleID] { findings.compactMap { RuleID(rawValue: String($0.prefix { $0 != ":" })) } }
}

let plain = Descriptor(addr: 0x1000, len: 64)
let rxBuffer = Descriptor(addr: 0x2000, len: 1500, flags: .write)

@Suite struct PolledStoryTests {
    @Test("IN_ORDER: two buffers with the same head cannot be used as one batch, so a stale element before them is the device's error")
    func inOrderBatchCannotHoldOneHeadTwice() {
        var s = PollScript(size: 4, inOrder: true)
        s.poll(avail: 1, used: 0, exposed: [(1, [(1, plain)])])
        s.poll(avail: 2, used: 2, exposed: [(1, [(1, plain)])], completed: [(0, 0), (1, 0)])
        #expect(s.rules.first == .vqUsedId, "\(s.findings)")
    }
}


/// The cases the Linux guest and the hostile-guest suite showed, one story each.
@Suite struct PolledLinuxStories {
    @Test("Linux TX: one head exposed and completed five times between two polls is legal fast reuse")
    func fastReuseWithinOnePoll() {
        var s = PollScript(size: 256)
        s.poll(avail: 0, used: 0)
        s.poll(avail: 5, used: 5, exposed: Array(repeating: (0, [(0, plain)]), count: 5), completed: Array(repeating: (0, 0), count: 5))
        #expect(s.findings.isEmpty, "\(s.findings)")
        #expect(s.ring.coverage.chainsJudged == 0, "every exposure completed in the poll that saw it: its chain was read after it may have been reused")
    }

    @Test("a head re-exposed within a poll with a looping chain, completed only a poll later, is judged: VQ-CHAIN-LOOP")
    func reusedHeadWithLoopCompletedLater() {
        var s = PollScript(size: 256)
        let loop = Descriptor(addr: 0x1000, len: 64, flags: .next, next: 0)
        // Both positions' chains are read after avail.idx: both show the descriptor as it is now.
        s.poll(avail: 2, used: 1, exposed: [(0, [(0, loop)]), (0, [(0, loop)])], completed: [(0, 0)])
        s.poll(avail: 2, used: 2, completed: [(0, 0)])
        #expect(s.rules == [.vqChainLoop], "\(s.findings)")
    }

    @Test("a looping chain the device completed in the same poll is not judged (it may have been rewritten), and says so in the coverage")
    func loopCompletedWithinThePollIsNotJudged() {
        var s = PollScript(size: 256)
        let loop = Descriptor(addr: 0x1000, len: 64, flags: .next, next: 0)
        s.poll(avail: 1, used: 1, exposed: [(0, [(0, loop)])], completed: [(0, 0)])
        #expect(s.findings.isEmpty)
        #expect(s.ring.coverage.exposures == 1 && s.ring.coverage.chainsJudged == 0)
    }

    @Test("used.idx published over a slot that still holds the last lap's element: VQ-USED-IDX")
    func usedIndexOverAStaleSlot() {
        var s = PollScript(size: 2)
        s.poll(avail: 2, used: 2, exposed: [(0, [(0, plain)]), (1, [(1, plain)])], completed: [(0, 0), (1, 0)])
        s.poll(avail: 3, used: 2, exposed: [(1, [(1, plain)])])
        // The device publishes position 2 without writing it: slot 0 still holds (0, 0), and head 0
        // is not in flight.
        s.poll(avail: 3, used: 3, completed: [(0, 0)])
        s.poll(avail: 3, used: 3)
        #expect(s.rules == [.vqUsedIdx], "\(s.findings)")
    }

    @Test("IN_ORDER: two adjacent used ids swapped are caught where the element must have been written: VQ-USED-ID")
    func inOrderSwap() {
        var s = PollScript(size: 8, inOrder: true)
        s.poll(avail: 2, used: 0, exposed: [(0, [(0, plain)]), (1, [(1, plain)])])
        s.poll(avail: 2, used: 2, completed: [(1, 0), (0, 0)])
        #expect(s.rules.first == .vqUsedId, "\(s.findings)")
    }

    @Test("avail.idx read a queue size plus one ahead of used.idx: VQ-INFLIGHT")
    func availAheadOfUsed() {
        var s = PollScript(size: 2)
        s.poll(avail: 2, used: 0, exposed: [(0, [(0, plain)]), (1, [(1, plain)])])
        s.poll(avail: 3, used: 0, exposed: [(0, [(0, plain)])])
        #expect(s.rules.contains(.vqInflight), "\(s.findings)")
    }

    @Test("a descriptor of a chain still in flight reads differently in a later poll: VQ-DRIVER-OWNERSHIP")
    func descriptorChangedInFlight() {
        var s = PollScript(size: 256)
        let chained = Descriptor(addr: 0x1000, len: 64, flags: .next, next: 1)
        s.poll(avail: 1, used: 0, exposed: [(0, [(0, chained), (1, plain)])])
        // A new chain walks into descriptor 1, which now says something else.
        s.poll(avail: 2, used: 0, exposed: [(2, [(2, Descriptor(addr: 0x3000, len: 8, flags: .next, next: 1)), (1, Descriptor(addr: 0x9000, len: 8))])])
        #expect(s.rules.contains(.vqDriverOwnership), "\(s.findings)")
    }

    @Test("a completion seen one poll before the exposure it completes is legal (exposed after avail.idx was read)")
    func completionBeforeItsExposureIsSeen() {
        var s = PollScript(size: 256)
        s.poll(avail: 0, used: 1, completed: [(7, 0)])
        s.poll(avail: 1, used: 1, exposed: [(7, [(7, plain)])])
        #expect(s.findings.isEmpty, "\(s.findings)")
    }

    @Test("a double completion no exposure in its window explains: VQ-USED-ID")
    func doubleCompletionIsDecided() {
        var s = PollScript(size: 256)
        s.poll(avail: 1, used: 1, exposed: [(3, [(3, plain)])], completed: [(3, 0)])
        s.poll(avail: 1, used: 2, completed: [(3, 0)])
        s.poll(avail: 1, used: 2)
        #expect(s.rules == [.vqUsedId], "\(s.findings)")
    }

    @Test("a used length beyond the chain's writable bytes, completed a poll after the chain was read: VQ-USED-LEN")
    func usedLenJudgedWhenTheChainWasOwned() {
        var s = PollScript(size: 256)
        s.poll(avail: 1, used: 0, exposed: [(4, [(4, rxBuffer)])])
        s.poll(avail: 1, used: 1, completed: [(4, 1501)])
        #expect(s.rules == [.vqUsedLen], "\(s.findings)")
    }
}
