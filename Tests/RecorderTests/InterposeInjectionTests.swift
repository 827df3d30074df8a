import Checker
import Foundation
import Glibc
import HostilePeers
import LiveCheck
@testable import Recorder
import Testing
import TraceFormat
import VirtioProtocol

/// Known driver violations (`RingInjection.all`, one per ring rule a driver can break) injected by a
/// hostile front-end into dpdk-testpmd's vhost back-end, once through `record --interpose` and once
/// through the passive recorder: through the relay every one is reported with its rule; the
/// passive recorder's recall on the same injections is printed beside it. Skipped without
/// dpdk-testpmd. Run under the shared lock.
@Suite(.serialized) struct InterposeInjectionTests {
    @Test(.enabled(if: DPDKPairTests.testpmd != nil, "dpdk-testpmd not found: install dpdk-dev to run the live-pair tests"),
          .timeLimit(.minutes(5)))
    func everyInjectedDriverViolationIsReportedWithItsRuleThroughTheRelay() throws {
        try injectEach("driver violations", tag: "inj", RingInjection.all.map { inj in
            Injection(name: inj.name, rule: inj.rule) { inj.run(socket: $0).0 }
        })
    }

    /// The same with packed rings (`PackedRingInjection.all`): through the relay every one is
    /// reported with its rule (the passive recorder's recall printed beside it).
    @Test(.enabled(if: DPDKPairTests.testpmd != nil, "dpdk-testpmd not found: install dpdk-dev to run the live-pair tests"),
          .timeLimit(.minutes(5)))
    func everyInjectedPackedDriverViolationIsReportedWithItsRuleThroughTheRelay() throws {
        try injectEach("packed driver violations", tag: "pinj", PackedRingInjection.all.map { inj in
            Injection(name: inj.name, rule: inj.rule) { inj.run(socket: $0) }
        })
    }

    /// One violation a hostile front-end commits: `run` drives it through the socket given and
    /// says whether testpmd served the warm-up packet first.
    struct Injection {
        let name: String
        let rule: RuleID
        let run: (String) -> Bool
    }

    /// Runs every injection against one dpdk-testpmd back-end, through the relay and through the
    /// passive recorder; the relay must report each with its rule and follow every ring.
    private func injectEach(_ what: String, tag prefix: String, _ injections: [Injection]) throws {
        let dir = NSTemporaryDirectory() + "rec-\(prefix)-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let tag = "\(prefix)\(getpid())"
        var procs: [Child] = []
        defer {
            for p in procs { p.stop() }
            try? FileManager.default.removeItem(atPath: "/var/run/dpdk/\(tag)be")
            if ProcessInfo.processInfo.environment["KEEP_DPDK_LOGS"] == nil { try? FileManager.default.removeItem(atPath: dir) }
        }
        let be = try DPDKPairTests.testpmd(["--file-prefix=\(tag)be", "--vdev", "net_vhost0,iface=\(dir)/be.sock,queues=1"],
                                           pairs: 1, log: dir + "/be.log")
        procs.append(be)
        try DPDKPairTests.waitFor(dir + "/be.sock")

        var caught: [Bool: [String]] = [true: [], false: []]
        var lines: [String] = []
        for inj in injections {
            var row = "\(inj.name) (\(inj.rule.rawValue)):"
            for interpose in [true, false] {
                let name = "\(inj.name)-\(interpose ? "interposed" : "passive")"
                var o = RecordOptions(listenPath: "\(dir)/\(name).sock", connectPath: dir + "/be.sock", outputPath: "\(dir)/\(name).trace")
                o.handleSignals = false
                o.progressInterval = 0
                o.duration = 20
                o.acceptTimeout = 10
                o.interpose = interpose
                let rec = RecorderThread(o)
                try DPDKPairTests.waitFor(o.listenPath)
                let served = inj.run(o.listenPath)
                let r = rec.result(timeout: 15)
                #expect(served, "\(name): testpmd did not serve the warm-up packet")
                #expect(r != nil, "\(name): the recorder did not end")
                let report = CheckRun.check(path: o.outputPath)
                let rules = Set(report.findings.map(\.rule))
                if rules.contains(inj.rule) { caught[interpose]!.append(inj.name) }
                if interpose {
                    #expect(rules.contains(inj.rule), "\(name): reported \(rules.map(\.rawValue).sorted()), not \(inj.rule.rawValue)")
                    #expect(r.map { !$0.record.incomplete } == true, "\(name): \(r?.record.ringProblems ?? [])")
                }
                row += " \(interpose ? "interposed" : "passive") \(rules.contains(inj.rule) ? "caught" : "missed") \(rules.map(\.rawValue).sorted())"
                unlink(o.listenPath)
            }
            lines.append(row)
        }
        let n = injections.count
        print("injected \(what) against dpdk-testpmd:\n" + lines.joined(separator: "\n"))
        print("recall (\(what)): through --interpose \(caught[true]!.count)/\(n), passive recorder \(caught[false]!.count)/\(n)")
    }
}
