import Checker
import Foundation
@testable import Recorder
import Testing
import TraceFormat
import TraceTools

/// The checked-in exact captures (Traces/real/exact): the DPDK testpmd pair through
/// `record --interpose` (1, 2, 4, 8 pairs, and 2 pairs with packed rings, with and without IN_ORDER) and the Linux guest behind
/// QEMU with packed rings (`packed=on`, 2 pairs) through it. Each is exact (no `sampled` flag), checks clean with
/// everything judged, every vq set up carried traffic, and every fault class planted in it is
/// caught with its rule, so the exact path is covered on real data without DPDK.
@Suite struct InterposedCaptureTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Traces/real/exact").standardized.path
    static let captures = RealCaptureTests.traces(in: dir)

    @Test func thereAreExactCapturesOfTheDPDKPair() {
        let names = Self.captures.map { ($0 as NSString).lastPathComponent }
        for q in [1, 2, 4, 8] { #expect(names.contains("testpmd-vhost-\(q)q-interposed.trace"), "missing in \(Self.dir)") }
        for n in Self.packedCaptures { #expect(names.contains(n), "\(n) missing in \(Self.dir)") }
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
        // A packed capture's data plane is in the packed events only.
        if Mutator.negotiated(.ringPacked, header: h, events: ev) {
            #expect(!ev.contains { [.desc, .availEntry, .availIdx, .usedEntry, .usedIdx].contains($0.kind) })
            #expect(ev.contains { $0.kind == .packedUsed } && ev.contains { $0.kind == .packedFlags })
        }
    }

    static let packedCaptures = ["testpmd-vhost-2q-packed-interposed.trace", "testpmd-vhost-2q-packed-in-order-interposed.trace",
                                 "linux-2q-packed-interposed.trace"]

    /// Every packed class `mutate` has is planted in each exact packed capture and caught with its
    /// rule, but the three whose place real vhost-user captures do not have: lists of two or more
    /// descriptors (DPDK's and this guest's are one each), the device's reads (`packed_read`: the
    /// relay sees only what the device wrote) and service passes (an owed interrupt is judged at
    /// the device's `service_end`). (The split classes on them: the test below.)
    @Test(arguments: packedCaptures)
    func everyPackedFaultWithAPlaceIsPlantedAndCaughtInTheExactPackedCapture(name: String) throws {
        let (h, ev) = try RealCaptureTests.load(Self.dir + "/" + name)
        let inOrder = Mutator.negotiated(.inOrder, header: h, events: ev)
        var missing: [String] = []
        for fault in BugClass.allCases where fault.packed {
            guard let (bad, change) = try? Mutator.apply(fault, header: h, events: ev) else { missing.append(fault.name); continue }
            let rules = Set(RealCaptureTests.findings(h, bad).map(\.rule))
            #expect(rules.contains(fault.expectedRule(inOrder: inOrder, packed: true)), "\(fault.name) on \(name): \(change); checker said \(rules.map(\.rawValue).sorted())")
        }
        #expect(missing == ["packed-head-first", "packed-read-out-of-order", "packed-interrupt-dropped"], "\(missing)")
    }

    @Test(arguments: BugClass.allCases)
    func faultIsCaughtWithItsRuleInEveryExactCapture(fault: BugClass) throws {
        for path in Self.captures {
            // Packed classes on packed captures: the test above.
            if fault.packed && Self.packedCaptures.contains((path as NSString).lastPathComponent) { continue }
            let (h, ev) = try RealCaptureTests.load(path)
            let bad: [TraceEvent], change: String
            do { (bad, change) = try Mutator.apply(fault, header: h, events: ev) } catch let e as MutationError {
                // `mutate` edits some classes on polled traces only ("only polled traces are edited
                // for this class"); those are not planted here, every other one must be.
                // On the packed capture the split-ring classes find no split data.
                #expect(Mutator.needs(fault) != nil || "\(e)".contains("only polled traces") || "\(e)".contains("rings are packed"), "\(fault.name) on \(path): \(e)")
                continue
            }
            let inOrder = Mutator.negotiated(.inOrder, header: h, events: ev), packed = Mutator.negotiated(.ringPacked, header: h, events: ev)
            let rules = Set(RealCaptureTests.findings(h, bad).map(\.rule))
            #expect(rules.contains(fault.expectedRule(inOrder: inOrder, packed: packed)), "\(fault.name) on \(path): \(change); checker said \(rules.map(\.rawValue).sorted())")
        }
    }
}
