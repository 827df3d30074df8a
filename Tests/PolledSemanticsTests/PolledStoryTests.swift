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

