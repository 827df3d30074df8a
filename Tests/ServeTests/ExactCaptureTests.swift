import Checker
import Foundation
import Testing
import TraceFormat
import TraceTools

/// The checked-in exact captures (Traces/exact, written by `conformance serve` with real front-ends):
/// exact vhost-user traces (no `sampled` flag) that check clean, with traffic on every vring, the
/// workers declared and every vring served only by the worker its declaration names.
@Suite struct ExactCaptureTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Traces/exact").standardized.path
    static let captures: [String] = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
        .filter { $0.hasSuffix(".trace") }.sorted()

    @Test func thereAreExactCapturesOfDPDKAndOfLinux() {
        #expect(Self.captures.contains { $0.hasPrefix("dpdk-") } && Self.captures.contains { $0.hasPrefix("linux-") }, "\(Self.captures) in \(Self.dir)")
    }

    @Test(arguments: captures)
    func exactCaptureChecksCleanWithTrafficOnEveryVringAndItsDeclaredWorkers(name: String) throws {
        let path = Self.dir + "/" + name
        let r = try TraceReader(path: path)
        #expect(r.header.profile == .vhostUser && !r.header.flags.contains(.sampled))
        var stats = TraceStats(header: r.header)
        var declared: [UInt16: UInt16] = [:]
        var served: [UInt16: Set<UInt16>] = [:]
        while let (e, _) = try r.next() {
            stats.add(e)
            switch e.kind {
            case .attachVringWorker: declared[e.vq] = UInt16(truncatingIfNeeded: e.p0)
            case .serviceBegin: served[e.vq, default: []].insert(e.worker)
            default: break
            }
        }
        let report = CheckRun.check(path: path)
        #expect(report.conformant, "\(name): \(report.findings.prefix(3).map { "\($0.rule): \($0.message)" }) \(report.notJudged)")
        let queues = stats.setUpQueues
        #expect(!queues.isEmpty)
        for q in queues {
            #expect(q.used > 0, "\(name): vq \(q.vq) idle")
            let vq = UInt16(q.vq)
            #expect(declared[vq] != nil, "\(name): vq \(vq) has no declared worker")
            #expect(served[vq].map { $0 == [declared[vq]!] } ?? false, "\(name): vq \(vq) served by \(served[vq].map { $0.sorted() } ?? []) , declared \(declared[vq].map(String.init) ?? "none")")
        }
    }
}
