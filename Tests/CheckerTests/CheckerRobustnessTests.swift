import Testing
import Checker
import TraceFormat
import VirtioProtocol
import Simulator

/// Any trace the reader accepts, however nonsensical, is judged — never a crash or a hang.
@Suite struct CheckerRobustnessTests {
    typealias Rng = SplitMix64

    /// A random event valid for the format (field widths, vq range, worker rules), not for the protocol.
    static func randomEvent(_ r: inout Rng, queues: Int) -> TraceEvent {
        let kind = EventKind.allCases[r.below(EventKind.allCases.count)]
        var e = TraceEvent(kind)
        if kind.vqUse == .required || (kind.vqUse == .optional && r.below(2) == 0) { e.vq = UInt16(r.below(queues)) }
        if kind.hasWorker && r.below(4) != 0 { e.worker = UInt16(r.below(4)) }
        for f in kind.fields {
            switch f.slot {
            case .aux: e.aux = UInt16(truncatingIfNeeded: r.value(0xFFFF))
            case .resultAux: e.aux = r.below(4) == 0 ? UInt16(bitPattern: -16) : 0
            case .p0: e.p0 = r.value(f.mask)
            case .p1: e.p1 = r.value(f.mask)
            case .p2: e.p2 = r.value(f.mask)
            case .descLen: e.p1 |= r.value(0xFFFF_FFFF)
            case .descFlags: e.p1 |= r.value(0x7) << 32
            case .descNext: e.p1 |= r.value(0xF) << 48
            case .descId: e.p1 |= r.value(0xF) << 32
            case .packedFlagsP0: e.p0 |= r.packedFlags()
            case .packedFlagsP1: e.p1 |= r.packedFlags() << 48
            }
        }
        if r.below(8) == 0 { e.flags = .sampled }
        return e
    }

    @Test("random format-valid events never trap the checker", arguments: 0..<12)
    func randomEventsNeverTrap(_ seed: Int) {
        var r = Rng(seed: UInt64(seed) &* 7919)
        let profile = Profile.allCases[seed % Profile.allCases.count]
        let queues = 1 + r.below(9)
        let sizes = (0..<queues).map { _ in [0, 1, 2, 4, 8, 6, 32768, 65535][r.below(8)] }.map(UInt16.init)
        let flags: TraceHeader.Flags = [[], [.preset], [.sampled], [.preset, .sampled]][seed % 4]
        let header = TraceHeader(profile: profile, layout: QueueLayout.allCases[r.below(2)], flags: flags,
                                 features: r.next(), workers: UInt16(r.below(5)), queueSizes: sizes)
        // 10,000 events a seed keeps this short in a debug build; the libFuzzer targets (scripts/fuzz.sh) go deeper.
        var c = Checker(header: header)
        var findings = 0
        for i in 0..<10_000 {
            findings += c.process(Self.randomEvent(&r, queues: queues), index: UInt64(i), offset: UInt64(40 * i)).count
        }
        findings += c.finish().count
        #expect(c.eventsSeen == 10_000)
        #expect(findings > 0, "random traffic is not conformant; a checker that finds nothing is suspect")
    }
}

extension SplitMix64 {
    /// Packed descriptor flags: mostly meaningful AVAIL/USED combinations, with NEXT/WRITE/INDIRECT.
    mutating func packedFlags() -> UInt64 {
        if below(8) == 0 { return next() & 0xFFFF }
        return [0, 0x80, 0x8000, 0x8080][below(4)] | UInt64(below(8))
    }

    /// Small values most of the time (to hit real states), any value sometimes.
    mutating func value(_ mask: UInt64) -> UInt64 {
        switch below(4) {
        case 0: return next() & mask
        case 1: return UInt64(below(4)) & mask
        default: return UInt64(below(40)) & mask
        }
    }
}

/// A tiny header can declare enormous rings; the checker must refuse, not allocate.
@Suite struct CheckerBudgetTests {
    @Test("rings beyond the slot budget stop the run as an input error instead of exhausting memory")
    func ringBudget() {
        let queues = Checker.slotBudget / 32768 + 8
        let header = TraceHeader(profile: .vhostUser, flags: [.preset], queueSizes: Array(repeating: 32768, count: queues))
        var c = Checker(header: header)
        for q in 0..<queues { _ = c.process(.availIdx(vq: UInt16(q), idx: 0), index: UInt64(q), offset: UInt64(q * 40)) }
        #expect(c.fatal != nil)
    }

    @Test("declared but idle rings cost nothing: 32,748 queues of size 32768 with traffic on one")
    func idleRingsAreFree() {
        let header = TraceHeader(profile: .vhostUser, flags: [.preset], queueSizes: Array(repeating: 32768, count: TraceHeader.maxQueueCount))
        var c = Checker(header: header)
        _ = c.process(.availIdx(vq: 7, idx: 0), index: 0, offset: 0)
        #expect(c.fatal == nil)
    }
}
