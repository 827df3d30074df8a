import Checker
import Drive
import Foundation
import Testing
import VirtioProtocol
import TestSupport

/// `conformance drive --all` against DPDK testpmd's vhost PMD (scripts/drive-dpdk.sh: bounded,
/// stopped by PID, socket and /var/run/dpdk/<prefix> removed), with 1, 2 and 4 queue pairs. Every
/// verdict must be the one the README's "DPDK 22.11 under `drive`" table records, every trace of a
/// valid scenario must check with zero findings, and the JUnit report must hold one testcase per run.
/// Run under the shared lock: `flock /tmp/conformance-live.lock swift test --filter DPDKDriveTests`.
@Suite(.serialized) struct DPDKDriveTests {
    static let testpmd: String? = ["/usr/bin/dpdk-testpmd", "/usr/local/bin/dpdk-testpmd"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// DPDK 22.11's verdicts that are not PASS, with the check that fails (README table).
    static let known: [String: (Verdict, String?)] = [
        // vhost-user.rst "Ring states": a ring starts on its first kick. testpmd polls as soon as
        // the ring is set up and enabled.
        "ring-starts-on-kick": (.fail, DriveCheck.startsOnKick.id),
        // vhost-user.rst "Ring states": a started, disabled TX ring is still processed (packets
        // discarded); testpmd stops polling a disabled queue.
        "disabled-tx-drained": (.fail, RuleID.vhostUserDisabledTxDrain.rawValue),
        // testpmd's vhost PMD does not offer INFLIGHT_SHMFD.
        "inflight-fd-flood": (.skipped, nil),
    ]

    /// Runs that check received packets with MRG_RXBUF off.
    static func receivesWithoutMergeable(_ name: String, variant: String) -> Bool {
        name == "rx-single-buffer" || name == "single-queue" || (name == "traffic" && variant.contains("-mrg_rxbuf"))
    }

    @Test(.enabled(if: testpmd != nil, "dpdk-testpmd not found: install dpdk-dev to run drive against it"),
          .timeLimit(.minutes(4)), arguments: LiveMatrix.cases([1, 2, 4]) { $0 == 2 })
    func driveAllAgainstTestpmdGivesTheRecordedVerdictsAndCleanTraces(pairs: Int) throws {
        let built = try #require(ConformanceBinary.url, "conformance executable not built")
        let dir = NSTemporaryDirectory() + "drive-dpdk-\(getpid())-\(pairs)"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { if ProcessInfo.processInfo.environment["KEEP_DRIVE_TRACES"] == nil { try? FileManager.default.removeItem(atPath: dir) } }
        // A copy: a build running beside the test (other work on the machine) cannot swap it mid-run.
        let bin = URL(fileURLWithPath: dir + "/conformance")
        try FileManager.default.copyItem(at: built, to: bin)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [Self.root.path + "/scripts/drive-dpdk.sh", String(pairs), dir, "--all", "--format", "junit", "--progress-timeout", "3"]
        p.environment = ProcessInfo.processInfo.environment.merging(["CONFORMANCE": bin.path, "LIMIT": "200"]) { $1 }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let junit = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        // The known DPDK deviations make it a violation: exit 1, never 0, 2 or 3.
        #expect(p.terminationStatus == CheckExit.violation, "exit \(p.terminationStatus)\n\(junit.suffix(2000))")

        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/report.json"))
        let report = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let runs = try #require(report["runs"] as? [[String: Any]])
        let plan = try Suite.plan(scenario: nil, matrix: true)
        #expect(runs.count == plan.count)
        #expect(junit.components(separatedBy: "<testcase ").count - 1 == plan.count, "one JUnit testcase per run")
        #expect(report["exit"] as? Int == Int(CheckExit.violation))

        for r in runs {
            let name = r["scenario"] as? String ?? "?", kind = r["kind"] as? String ?? ""
            let verdict = Verdict(rawValue: r["verdict"] as? String ?? "") ?? .error
            let ids = Set((r["evidence"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
            let line = "\(name) \(r["variant"] as? String ?? ""): \(verdict.rawValue) \(r["reason"] as? String ?? "")"
            if Self.receivesWithoutMergeable(name, variant: r["variant"] as? String ?? "") {
                // virtio net "Processing of Incoming Packets": without MRG_RXBUF num_buffers must
                // be 1; DPDK writes it only when MRG_RXBUF is negotiated (copy_mbuf_to_desc), so
                // every run that receives packets without MRG_RXBUF fails with exactly that.
                #expect(verdict == .fail && ids == [RuleID.netRxNumBuffers.rawValue], "\(line)")
            } else if let (v, id) = Self.known[name] {
                #expect(verdict == v, "\(line)")
                if let id { #expect(ids == [id], "\(line)") }
            } else if name == "mq-pairs" && pairs == 1 {
                #expect(verdict == .skipped, "\(line)")
            } else if kind == Scenario.Kind.boundary.rawValue {
                #expect(verdict == .pass, "\(line)")
            } else {
                // Hostile input: refused or used, never a crash, a wedge, or a rule broken.
                #expect(verdict == .pass || verdict == .rejected, "\(line)")
            }
            // What drive saw as the driver checks clean on every valid scenario DPDK passes (zero
            // findings), and a failed one's trace shows exactly the rules its verdict names.
            if kind == Scenario.Kind.boundary.rawValue, verdict == .pass || verdict == .fail, let t = r["trace"] as? String {
                let c = CheckRun.check(path: t)
                #expect(c.error == nil && !c.incomplete, "\(t): \(c.error.map { "\($0)" } ?? "incomplete")")
                let traceRules = Set(c.findings.map(\.rule.rawValue))
                #expect(traceRules == (verdict == .pass ? [] : ids.filter { !$0.hasPrefix("DRIVE-") }), "\(t): \(c.findings.prefix(3).map(\.message))")
            }
        }
    }
}
