import Testing
import Checker
import Simulator
import TraceFormat
import VirtioProtocol

/// Long seeded schedules of a conformant driver and device, for every profile and queue shape,
/// check clean; each injected bug class is caught with exactly its rule.
@Suite struct RandomizedScheduleTests {
    static func run(_ c: ScheduleConfig, events: UInt64) -> (findings: [Finding], emitted: UInt64, injected: Bool) {
        var gen = ScheduleGenerator(config: c) { _ in }
        var checker = Checker(header: gen.header)
        var findings: [Finding] = []
        var index: UInt64 = 0
        var offset = UInt64(gen.header.encodedSize)
        gen = ScheduleGenerator(config: c) { e in
            findings += checker.process(e, index: index, offset: offset)
            index += 1
            offset += UInt64(TraceEvent.size)
        }
        gen.run(events: events)
        return (findings + checker.finish(), gen.emitted, gen.faultInjected)
    }

    static let shapes: [ScheduleConfig] = {
        var out: [ScheduleConfig] = []
        var seed: UInt64 = 1
        for p in Profile.allCases {
            for (pairs, n, start) in [(1, 4, UInt16(65530)), (2, 8, 0), (4, 256, 65000), (8, 2, 65535), (3, 1, 7)] as [(Int, UInt32, UInt16)] {
                seed += 1
                out.append(ScheduleConfig(profile: p, pairs: pairs, queueSize: n, indirect: seed % 2 == 0, eventIdx: seed % 3 == 0,
                                          startIndex: start, activePairs: p == .linuxUpstream && pairs > 2 ? pairs - 1 : nil, seed: seed))
            }
        }
        out.append(ScheduleConfig(profile: .vhostUser, pairs: 2, queueSize: 32768, indirect: true, eventIdx: true, startIndex: 65535, seed: 99))
        return out
    }()

    /// Packed rings: sizes that are and are not powers of two, both starting wrap counters, in any
    /// order and IN_ORDER, with indirect tables and event suppression.
    static let packedShapes: [ScheduleConfig] = {
        var out: [ScheduleConfig] = []
        var seed: UInt64 = 100
        for (pairs, n, start) in [(1, 1, UInt16(0)), (2, 3, 1), (1, 5, 4), (4, 256, 255), (2, 1000, 7), (1, 32768, 32767)] as [(Int, UInt32, UInt16)] {
            for inOrder in [false, true] {
                seed += 1
                out.append(ScheduleConfig(profile: seed % 3 == 0 ? .linuxUpstream : .vhostUser, pairs: pairs, queueSize: n, indirect: seed % 2 == 0,
                                          eventIdx: seed % 4 < 2, startIndex: start, seed: seed, packed: true, inOrder: inOrder))
            }
        }
        return out
    }()

    @Test("conformant packed schedules check clean", arguments: packedShapes)
    func conformantPackedScheduleChecksClean(_ c: ScheduleConfig) {
        let r = Self.run(c, events: 40_000)
        #expect(r.emitted >= 40_000)
        #expect(r.findings.isEmpty, "\(c): \(r.findings.prefix(3).map { "\($0.rule.rawValue) @\($0.eventIndex.map(String.init) ?? "end"): \($0.message)" })")
    }

    @Test("conformant schedules check clean", arguments: shapes)
    func conformantScheduleChecksClean(_ c: ScheduleConfig) {
        let r = Self.run(c, events: 40_000)
        #expect(r.emitted >= 40_000)
        #expect(r.findings.isEmpty, "\(c): \(r.findings.prefix(3).map { "\($0.rule.rawValue) @\($0.eventIndex.map(String.init) ?? "end"): \($0.message)" })")
    }

    @Test("each injected fault is caught with exactly its rule", arguments: Fault.allCases)
    func injectedFaultIsCaught(_ f: Fault) {
        for seed: UInt64 in 1...6 {
            let c = f.schedule(seed: seed)
            let r = Self.run(c, events: 5_000)
            #expect(r.injected, "\(c): no moment to inject the fault")
            #expect(Set(r.findings.map(\.rule)) == [f.rule], "\(c): \(r.findings.prefix(4).map { "\($0.rule.rawValue) @\($0.eventIndex.map(String.init) ?? "end"): \($0.message)" })")
        }
    }
}

extension ScheduleConfig: CustomTestStringConvertible {
    public var testDescription: String { description }
}
