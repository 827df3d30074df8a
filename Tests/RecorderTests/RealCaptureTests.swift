import Checker
import Foundation
@testable import Recorder
import TraceTools
import Testing
import TraceFormat
import VirtioProtocol

/// The checked-in real captures (Traces/real): DPDK testpmd pairs and a Linux guest behind QEMU,
/// recorded with `poll` snapshots, plus the older captures in Traces/real/legacy (the recorder's
/// earlier format, index observations without snapshots). Each checks clean — a packed-ring session,
/// which the recorder does not follow, is in Traces/incomplete and checks as incomplete — and every fault class planted in the
/// current captures is caught with its rule, so real data is covered even without DPDK or QEMU.
@Suite struct RealCaptureTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Traces/real").standardized.path
    static func traces(in d: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: d)) ?? []).filter { $0.hasSuffix(".trace") }.sorted().map { d + "/" + $0 }
    }
    static let captures = traces(in: dir)
    static let legacy = traces(in: dir + "/legacy")
    /// The captures mutated for every fault class here: every DPDK pair count, and the Linux guest
    /// with and without EVENT_IDX and INDIRECT_DESC (the driver shapes that change what a fault
    /// needs) and with 4 pairs (QEMU re-enables rings as the guest sets its queue count). All of
    /// them, the other Linux excerpts included: `scripts/mutate-recall.sh`.
    static let mutated = captures.filter {
        let n = ($0 as NSString).lastPathComponent
        return n.hasPrefix("testpmd-") || ["linux-1q.trace", "linux-4q.trace", "linux-2q-event-idx-off.trace", "linux-2q-indirect-off.trace"].contains(n)
    }

    static func load(_ path: String) throws -> (TraceHeader, [TraceEvent]) {
        let r = try TraceReader(path: path)
        var ev: [TraceEvent] = []
        while let (e, _) = try r.next() { ev.append(e) }
        return (r.header, ev)
    }

    static func findings(_ header: TraceHeader, _ events: [TraceEvent]) -> [Finding] {
        var c = Checker(header: header)
        var out: [Finding] = []
        for (i, e) in events.enumerated() {
            out += c.process(e, index: UInt64(i), offset: UInt64(header.encodedSize + i * TraceEvent.size))
        }
        return out + c.finish()
    }

    @Test func thereAreRealCapturesOfDPDKAndOfALinuxGuest() {
        let names = Self.captures.map { ($0 as NSString).lastPathComponent }
        for n in ["testpmd-vhost-1q", "testpmd-vhost-2q", "testpmd-vhost-4q", "testpmd-vhost-8q", "linux-1q", "linux-2q", "linux-4q"] {
            #expect(names.contains(n + ".trace"), "\(n).trace missing in \(Self.dir)")
        }
        #expect(Self.mutated.count == 8)
        #expect(Self.legacy.count >= 4, "expected older-format captures in \(Self.dir)/legacy")
    }

    @Test(arguments: captures + legacy)
    func realCaptureIsSampledVhostUserAndChecksClean(path: String) throws {
        let (h, ev) = try Self.load(path)
        #expect(h.profile == .vhostUser && h.flags.contains(.sampled) && h.layout == .mq)
        let report = CheckRun.check(path: path)
        #expect(report.conformant, "\(path): \(report.findings.prefix(3).map { "\($0.rule): \($0.message)" }) \(report.notJudged.prefix(2))")
        // Every vq set up carried traffic in both directions of ownership.
        var s = TraceStats(header: h)
        ev.forEach { s.add($0) }
        for q in s.setUpQueues { #expect(q.exposed > 0 && q.used > 0, "vq \(q.vq) idle in \(path)") }
    }

    /// Real captures of rings the recorder does not follow (packed) are in Traces/incomplete: they
    /// break no rule and are never conformant.
    /// (The captures are the binary traces there without a `.trace.txt` source.)
    static let unfollowed = traces(in: dir + "/../incomplete").filter { !FileManager.default.fileExists(atPath: $0 + ".txt") }

    @Test(arguments: unfollowed)
    func realCaptureOfARingFormatNotFollowedIsIncomplete(path: String) throws {
        let (h, ev) = try Self.load(path)
        #expect(Mutator.negotiated(.ringPacked, header: h, events: ev))
        let report = CheckRun.check(path: path)
        #expect(report.incomplete, "\(path): \(report.status)")
    }

    @Test(arguments: BugClass.allCases)
    func faultIsCaughtWithItsRuleInEveryRealCapture(fault: BugClass) throws {
        var planted = 0
        for path in Self.mutated {
            let (h, ev) = try Self.load(path)
            let bad: [TraceEvent], change: String
            do { (bad, change) = try Mutator.apply(fault, header: h, events: ev) } catch let e as MutationError {
                // Only the classes that need a property some drivers lack may find no place.
                #expect(Mutator.needs(fault) != nil, "\(fault.name) on \(path): \(e)")
                continue
            }
            planted += 1
            let inOrder = Mutator.negotiated(.inOrder, header: h, events: ev)
            let rules = Set(Self.findings(h, bad).map(\.rule))
            #expect(rules.contains(fault.expectedRule(inOrder: inOrder)), "\(fault.name) on \(path): \(change); checker said \(rules.map(\.rawValue).sorted())")
        }
        if Mutator.needs(fault) == nil { #expect(planted == Self.mutated.count) }
    }

    @Test func faultNamesAreUniqueKebabCaseWords() {
        let names = BugClass.allCases.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(names.allSatisfy { $0.allSatisfy { $0.isLowercase || $0 == "-" } })
    }

    @Test func statsCountBuffersPerQueueFromIndexAdvances() {
        let h = TraceHeader(profile: .vhostUser, flags: .sampled, queueSizes: [8, 8])
        var s = TraceStats(header: h)
        let events: [TraceEvent] = [
            .availIdx(vq: 1, idx: 3, t: 1_000_000_000), .usedIdx(vq: 1, idx: 2, t: 1_500_000_000),
            .simple(.kick, vq: 1), .usedIdx(vq: 1, idx: 3), .availIdx(vq: 0, idx: 65535), .availIdx(vq: 0, idx: 1, t: 3_000_000_000),
        ]
        events.forEach { s.add($0) }
        #expect(s.queues[1].exposed == 3 && s.queues[1].used == 3 && s.queues[1].kicks == 1)
        #expect(s.queues[0].exposed == 65535 + 2)  // free-running index wraps at 2^16
        #expect(s.spanSeconds == 2.0)
        #expect(s.json().contains("\"vq\":1,\"role\":\"TX[0]\""))
    }

    @Test func statsCountSnapshotsFromPollIndicesAndListOnlyTheQueuesSetUp() {
        let h = TraceHeader(profile: .vhostUser, flags: .sampled, queueSizes: Array(repeating: 0, count: 256))
        var s = TraceStats(header: h)
        let poll = { (vq: UInt16, a: UInt16, u: UInt16) in TraceEvent(.poll, vq: vq, p0: UInt64(a), p1: UInt64(u), flags: .sampled) }
        let events: [TraceEvent] = [
            .control(.setVringBase, vq: 3, value: 10), poll(3, 13, 10), poll(3, 20, 18),
            TraceEvent(.ringGap, vq: 3, p0: 1, flags: .sampled), poll(3, 100, 90), poll(3, 101, 95),
            .control(.setVringNum, vq: 5, value: 8),
        ]
        events.forEach { s.add($0) }
        #expect(s.queues[3].exposed == 10 + 1 && s.queues[3].used == 8 + 5, "nothing counted across the gap")
        #expect(s.setUpQueues.map(\.vq) == [3, 5])
        #expect(s.text().split(separator: "\n").filter { $0.first?.isNumber == true }.count == 2)
    }
}
