import Checker
import Foundation
@testable import Recorder
import Testing
import TraceFormat
import TraceTools

/// The checked-in exact captures (Traces/real/exact): the DPDK testpmd pair through
/// `record --interpose` (1, 2, 4, 8 pairs). Each is exact (no `sampled` flag), checks clean with
/// everything judged, every vq set up carried traffic, and every fault class planted in it is
/// caught with its rule, so the exact path is covered on real data without DPDK.
@Suite struct InterposedCaptureTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Traces/real/exact").standardized.path
    static let captures = RealCaptureTests.traces(in: dir)

    @Test func thereAreExactCapturesOfTheDPDKPair() {
        let names = Self.captures.map { ($0 as NSString).lastPathComponent }
        for q in [1, 2, 4, 8] { #expect(names.contains("testpmd-vhost-\(q)q-interposed.trace"), "missing in \(Self.dir)") }
    }

    @Test(arguments: captures)
    func exactCaptureChecksCleanAndCarriesTrafficOnEveryVq(path: String) throws {
        let (h, ev) = try RealCaptureTests.load(path)
        #expect(h.profile == .vhostUser && !h.flags.contains(.sampled) && h.layout == .mq)
        #expect(!ev.contains { $0.isSampled || $0.kind == .poll || $0.kind == .ringGap })
        let report = CheckRun.check(path: path)
        #expect(report.conformant, "\(path): \(report.findings.prefix(3).map { "\($0.rule): \($0.message)" }) \(report.notJudged.prefix(2))")
        var s = TraceStats(header: h)
        ev.forEach { s.add($0) }
        for q in s.setUpQueues { #expect(q.exposed > 0 && q.used > 0, "vq \(q.vq) idle in \(path)") }
    }

    @Test(arguments: BugClass.allCases)
    func faultIsCaughtWithItsRuleInEveryExactCapture(fault: BugClass) throws {
        for path in Self.captures {
            let (h, ev) = try RealCaptureTests.load(path)
            let bad: [TraceEvent], change: String
            do { (bad, change) = try Mutator.apply(fault, header: h, events: ev) } catch let e as MutationError {
                // `mutate` edits some classes on polled traces only ("only polled traces are edited
                // for this class"); those are not planted here, every other one must be.
                #expect(Mutator.needs(fault) != nil || "\(e)".contains("only polled traces"), "\(fault.name) on \(path): \(e)")
                continue
            }
            let inOrder = Mutator.negotiated(.inOrder, header: h, events: ev)
            let rules = Set(RealCaptureTests.findings(h, bad).map(\.rule))
            #expect(rules.contains(fault.expectedRule(inOrder: inOrder)), "\(fault.name) on \(path): \(change); checker said \(rules.map(\.rawValue).sorted())")
        }
    }
}
