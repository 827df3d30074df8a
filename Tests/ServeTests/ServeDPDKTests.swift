import TestSupport
import Checker
import Foundation
import Glibc
import Serve
import Testing
import TraceFormat
import TraceTools

/// A real front-end: DPDK testpmd's virtio-user (io forwarding, --tx-first) against `serve`, for
/// 1, 2, 4 and 8 queue pairs on each of the mappings: traffic flows both ways, serve's per-queue
/// counts equal testpmd's, and the exact trace checks clean, live and from the file. Skipped, with
/// the reason, where dpdk-testpmd is not installed (CI installs dpdk-dev).
@Suite(.serialized) struct ServeDPDKTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let pairs: Int
        let mapping: ServeMapping
        let workers: Int
        var testDescription: String { "\(pairs) pair(s), \(mapping) W=\(workers)" }
    }

    static let cases: [Case] = LiveMatrix.cases([
        Case(pairs: 1, mapping: .seedRFC2, workers: 1),
        Case(pairs: 2, mapping: .seedRFC2, workers: 2),
        // Asked for 4, rev2 runs 2 (its SET_OWNER clamp): 8 vrings, q on worker q mod 2.
        Case(pairs: 4, mapping: .seedRFC2, workers: 4),
        Case(pairs: 4, mapping: .perPair, workers: 4),
        Case(pairs: 8, mapping: .seedRFC1, workers: 3),
    ]) { $0.pairs == 8 || ($0.pairs == 4 && $0.mapping == .seedRFC2) }
    static let seconds = 5.0

    @Test(.enabled(if: Live.testpmd != nil, "dpdk-testpmd not found: install dpdk-dev to run the live tests"),
          .timeLimit(.minutes(1)), arguments: cases)
    func virtioUserTrafficFlowsBothWaysCountsMatchTestpmdAndTheExactTraceChecksClean(c: Case) throws {
        let dir = NSTemporaryDirectory() + "serve-dpdk-\(getpid())-\(c.pairs)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let prefix = "sv\(getpid())q\(c.pairs)"
        var procs: [LiveProcess] = []
        defer {
            for p in procs { p.stop() }
            Live.removeDPDKRuntime(prefix)
            if ProcessInfo.processInfo.environment["KEEP_SERVE_LOGS"] == nil { try? FileManager.default.removeItem(atPath: dir) }
        }
        let sock = dir + "/s.sock", trace = dir + "/t.trace", summary = dir + "/summary.json"
        let serve = try Live.serve(["--socket", sock, "--queues", "\(c.pairs)", "--workers", "\(c.workers)", "--mapping", c.mapping.rawValue,
                                    "--trace", trace, "--check", "--sessions", "1", "--duration", "50", "--summary-json", summary],
                                   log: dir + "/serve.log", limit: 60)
        procs.append(serve)
        try Live.waitFor(sock)
        let fe = try Live.virtioUser(socket: sock, pairs: c.pairs, prefix: prefix, log: dir + "/fe.log")
        procs.append(fe)
        Live.forward(fe, seconds: Self.seconds)
        #expect(fe.wait(seconds: 15), "testpmd did not quit")
        #expect(serve.wait(seconds: 15), "serve did not end after the front-end left")
        let log = (try? String(contentsOfFile: dir + "/serve.log", encoding: .utf8)) ?? ""
        #expect(serve.exitCode == 0, "serve exit \(serve.exitCode.map(String.init) ?? "?"): \(log.suffix(1500))")

        let s = try ServeSummary(path: summary)
        #expect(s.totalFindings == 0, "live check: \(s.rules)")
        let report = CheckRun.check(path: trace)
        #expect(report.conformant, "\(report.error.map { "\($0)" } ?? "") \(report.findings.prefix(3).map { "\($0.rule): \($0.message)" }) \(report.notJudged)")

        let counts = try Live.forwardStats(String(contentsOfFile: dir + "/fe.log", encoding: .utf8), pairs: c.pairs)
        let stats = try TraceStats.of(path: trace)
        for k in 0..<c.pairs {
            let rx = s.vqs[2 * k], tx = s.vqs[2 * k + 1]
            #expect(tx.buffers > 0 && rx.buffers > 0, "pair \(k) idle: TX \(tx.buffers), RX \(rx.buffers)")
            // What testpmd put on TX[k] is what serve consumed there, exactly.
            #expect(tx.buffers == counts[k].tx, "pair \(k): serve TX used \(tx.buffers) vs testpmd TX-packets \(counts[k].tx)")
            // Loopback without loss: every frame from TX[k] was delivered on RX[k], but those still
            // queued for RX[k] when testpmd stopped reading it and the port closed.
            #expect(rx.packets + rx.undelivered == tx.packets && rx.drops == 0 && tx.drops == 0,
                    "pair \(k): TX \(tx.packets) frames, RX \(rx.packets) delivered + \(rx.undelivered) undelivered, drops \(tx.drops)/\(rx.drops)")
            // testpmd read all of them but what was in its RX ring when it stopped forwarding: at
            // most a ring's worth (virtio-user's default 256 entries).
            #expect(counts[k].rx <= rx.buffers && rx.buffers - counts[k].rx <= 256, "pair \(k): serve RX used \(rx.buffers) vs testpmd RX-packets \(counts[k].rx)")
            // The trace says what serve counted.
            #expect(stats.queues[2 * k].used == rx.buffers && stats.queues[2 * k + 1].used == tx.buffers)
        }
        // Each worker served exactly the vrings its mapping gives it.
        let w = c.mapping.workers(requested: c.workers, pairs: c.pairs)
        #expect(s.workers.count == w)
        for v in s.vqs where v.buffers > 0 { #expect(v.worker == c.mapping.worker(of: v.vq, workers: w)) }
        for (id, st) in stats.workers { #expect(st.queues.allSatisfy { c.mapping.worker(of: $0, workers: w) == id }, "worker \(id) served \(st.queues.sorted())") }
        print("serve dpdk \(c): \(s.events) events, per-queue used \(s.vqs.map(\.buffers)), testpmd \(counts.map { "\($0.rx)/\($0.tx)" })")
    }
}
