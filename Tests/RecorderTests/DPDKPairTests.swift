import TestSupport
import CSupport
import Checker
import Foundation
import Glibc
import LiveCheck
@testable import Recorder
import TraceTools
import Testing
import TraceFormat

/// The real peers: DPDK testpmd's vhost-user back-end and virtio-user front-end, with the
/// recorder (checking live) in between, for 1, 2, 4 and 8 queue pairs.
/// Skipped, with the reason, where dpdk-testpmd is not installed; CI installs dpdk-dev.
@Suite(.serialized) struct DPDKPairTests {
    static let testpmd: String? = ["/usr/bin/dpdk-testpmd", "/usr/local/bin/dpdk-testpmd"].first { FileManager.default.isExecutableFile(atPath: $0) }
    /// Seconds the front-end runs; DPDK needs about 3 of them to start (mapping 512 MB of memfd).
    static let seconds = 6.0
    /// virtio-user rings of 16384 entries for 1 pair, 8192 for 2, 4096 beyond: a recorder descheduled
    /// for tens of milliseconds (the whole test suite shares 2 cores with two busy-polling testpmds,
    /// and the 1-pair run checks live in a debug build) still finds every entry before the driver
    /// reuses its slot (the lap guard needs fewer than N - 32 new entries between two polls). The
    /// mbuf pool must fill the RX rings: 16384 × 1, 8192 × 2, 4096 × 8 all fit 65536 mbufs.
    static func ringSize(_ pairs: Int) -> Int { pairs == 1 ? 16384 : pairs == 2 ? 8192 : 4096 }

    @Test(.enabled(if: testpmd != nil, "dpdk-testpmd not found: install dpdk-dev to run the live-pair tests"),
          .timeLimit(.minutes(1)), arguments: LiveMatrix.cases([1, 2, 4, 8]) { $0 == 1 || $0 == 8 })
    func livePairThroughTheRecorderChecksCleanAndMatchesTestpmdCounts(pairs: Int) throws {
        let dir = NSTemporaryDirectory() + "rec-dpdk-\(getpid())-\(pairs)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var procs: [Child] = []
        let tag = "rt\(getpid())q\(pairs)"
        defer {
            for p in procs { p.stop() }
            // DPDK leaves a runtime directory per --file-prefix.
            for side in ["be", "fe"] { try? FileManager.default.removeItem(atPath: "/var/run/dpdk/\(tag)\(side)") }
            if ProcessInfo.processInfo.environment["KEEP_DPDK_LOGS"] == nil { try? FileManager.default.removeItem(atPath: dir) }
        }
        let be = try Self.testpmd(["--file-prefix=\(tag)be", "--vdev", "net_vhost0,iface=\(dir)/be.sock,queues=\(pairs)"],
                                  pairs: pairs, log: dir + "/be.log")
        procs.append(be)
        try Self.waitFor(dir + "/be.sock")

        var o = RecordOptions(listenPath: dir + "/fe.sock", connectPath: dir + "/be.sock", outputPath: dir + "/t.trace")
        o.handleSignals = false
        o.progressInterval = 0
        o.duration = 45   // a bound, not the expected end: the front-end's exit ends the capture
        o.acceptTimeout = 20
        let rec = RecorderThread(o, check: pairs == 1)   // live checking once; the others are checked from the file
        try Self.waitFor(o.listenPath)

        let fe = try Self.testpmd(["--single-file-segments", "--file-prefix=\(tag)fe", "--vdev", "net_virtio_user0,path=\(o.listenPath),queues=\(pairs),queue_size=\(Self.ringSize(pairs))"],
                                  pairs: pairs, log: dir + "/fe.log", extra: ["--auto-start", "--tx-first"])
        procs.append(fe)
        Thread.sleep(forTimeInterval: Self.seconds)
        fe.interrupt()           // testpmd prints its statistics and closes the port
        fe.wait(seconds: 10)
        let r = try #require(rec.result(timeout: 15), "recorder did not end after the front-end left")
        #expect(r.record.end == .frontendClosed, "capture ended with \(r.record.end)")
        #expect(r.record.ringProblems.isEmpty, "\(r.record.ringProblems)")
        #expect(r.record.peerErrors.isEmpty && r.record.sessionFailures.isEmpty, "\(r.record.peerErrors) \(r.record.sessionFailures)")

        // The file decodes and checks clean on its own.
        let report = CheckRun.check(path: o.outputPath)
        #expect(report.error == nil, "\(report.error.map { "\($0)" } ?? "")")
        #expect(r.exitStatus != 2 && r.exitStatus != 3, "record exit \(r.exitStatus)")
        // Snapshots (`poll` events) are judged by the checker's polled semantics (the lead's work);
        // a real pair must check clean under it too, so this stays a plain expectation.
        #expect(r.totalFindings == 0, "live check: \(r.findings.map { "\($0.rule): \($0.message)" })")
        #expect(report.conformant, "\(report.findings.prefix(3).map(\.message))")
        let s = try TraceStats.of(path: o.outputPath)
        #expect(s.setUpQueues.map(\.vq) == Array(0..<(2 * pairs)), "the vqs set up are listed")

        let counts = try Self.forwardStats(String(contentsOfFile: dir + "/fe.log", encoding: .utf8), pairs: pairs)
        for k in 0..<pairs {
            let rx = s.queues[2 * k], tx = s.queues[2 * k + 1]
            // Every enabled queue carried traffic.
            #expect(rx.used > 0 && tx.used > 0, "pair \(k) idle: RX used \(rx.used), TX used \(tx.used)")
            // Completions match testpmd's counts up to what was still in a ring when it stopped.
            let (rxPk, txPk) = counts[k]
            #expect(Self.close(tx.used, txPk, ring: Self.ringSize(pairs)), "pair \(k): TX completions \(tx.used) vs testpmd TX-packets \(txPk)")
            #expect(Self.close(rx.used, rxPk, ring: Self.ringSize(pairs)), "pair \(k): RX completions \(rx.used) vs testpmd RX-packets \(rxPk)")
        }
        print("dpdk pair \(pairs)q: \(r.record.events) events, per-queue used \(s.setUpQueues.map(\.used)), testpmd \(counts)")
    }

    /// A packed-ring configuration of the virtio-user front-end (`packed_vq=1`; virtio-user
    /// negotiates IN_ORDER unless told `in_order=0`).
    struct PackedCase: Sendable, CustomTestStringConvertible {
        let pairs: Int
        let devargs: String
        var inOrder: Bool { !devargs.contains("in_order=0") }
        var testDescription: String { "\(pairs) pair(s)\(devargs)" }
    }
    static let packedCases: [PackedCase] = LiveMatrix.cases([
        PackedCase(pairs: 1, devargs: ",in_order=0"), PackedCase(pairs: 2, devargs: ",in_order=0"),
        PackedCase(pairs: 4, devargs: ",in_order=0"), PackedCase(pairs: 8, devargs: ",in_order=0"),
        PackedCase(pairs: 2, devargs: ",in_order=0,mrg_rxbuf=0"), PackedCase(pairs: 2, devargs: ""),
    ]) { $0.pairs == 2 && $0.devargs != ",in_order=0,mrg_rxbuf=0" }

    @Test(.enabled(if: testpmd != nil, "dpdk-testpmd not found: install dpdk-dev to run the live-pair tests"),
          .timeLimit(.minutes(1)), arguments: packedCases)
    func livePackedPairThroughTheRecorderHasNoFindingAndMatchesTestpmdCounts(c: PackedCase) throws {
        let pairs = c.pairs
        let dir = NSTemporaryDirectory() + "rec-dpdk-packed-\(getpid())-\(pairs)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var procs: [Child] = []
        let tag = "rp\(getpid())q\(pairs)"
        defer {
            for p in procs { p.stop() }
            for side in ["be", "fe"] { try? FileManager.default.removeItem(atPath: "/var/run/dpdk/\(tag)\(side)") }
            if ProcessInfo.processInfo.environment["KEEP_DPDK_LOGS"] == nil { try? FileManager.default.removeItem(atPath: dir) }
        }
        let be = try Self.testpmd(["--file-prefix=\(tag)be", "--vdev", "net_vhost0,iface=\(dir)/be.sock,queues=\(pairs)"],
                                  pairs: pairs, log: dir + "/be.log")
        procs.append(be)
        try Self.waitFor(dir + "/be.sock")
        var o = RecordOptions(listenPath: dir + "/fe.sock", connectPath: dir + "/be.sock", outputPath: dir + "/t.trace")
        o.handleSignals = false
        o.progressInterval = 0
        o.duration = 45
        o.acceptTimeout = 20
        let rec = RecorderThread(o)
        try Self.waitFor(o.listenPath)
        let ring = min(Self.ringSize(pairs), 4096)
        let fe = try Self.testpmd(["--single-file-segments", "--file-prefix=\(tag)fe", "--vdev",
                                   "net_virtio_user0,path=\(o.listenPath),queues=\(pairs),queue_size=\(ring),packed_vq=1\(c.devargs)"],
                                  pairs: pairs, log: dir + "/fe.log", extra: ["--auto-start", "--tx-first"])
        procs.append(fe)
        Thread.sleep(forTimeInterval: Self.seconds)
        fe.interrupt()
        fe.wait(seconds: 10)
        let r = try #require(rec.result(timeout: 15), "recorder did not end after the front-end left")
        #expect(r.record.end == .frontendClosed, "capture ended with \(r.record.end)")
        #expect(r.record.peerErrors.isEmpty && r.record.sessionFailures.isEmpty, "\(r.record.peerErrors) \(r.record.sessionFailures)")
        let report = CheckRun.check(path: o.outputPath)
        #expect(report.error == nil, "\(report.error.map { "\($0)" } ?? "")")
        // Zero findings on a real pair, whatever was judged.
        #expect(report.totalFindings == 0, "\(report.findings.prefix(3).map { "\($0.rule): \($0.message)" })")
        let s = try TraceStats.of(path: o.outputPath)
        let counts = try Self.forwardStats(String(contentsOfFile: dir + "/fe.log", encoding: .utf8), pairs: pairs)
        func followedAndCounted() {
            #expect(r.record.ringProblems.isEmpty, "\(r.record.ringProblems)")
            #expect(report.conformant, "\(report.notJudged.prefix(3))")
            for k in 0..<pairs {
                let rx = s.queues[2 * k], tx = s.queues[2 * k + 1]
                let (rxPk, txPk) = counts[k]
                #expect(rx.used > 0 && tx.used > 0, "pair \(k) idle: RX used \(rx.used), TX used \(tx.used)")
                #expect(Self.close(tx.used, txPk, ring: ring), "pair \(k): TX completions \(tx.used) vs testpmd TX-packets \(txPk)")
                #expect(Self.close(rx.used, rxPk, ring: ring), "pair \(k): RX completions \(rx.used) vs testpmd RX-packets \(rxPk)")
            }
        }
        if c.inOrder {
            // With IN_ORDER the device writes one used descriptor per batch (at its first position),
            // so a batch used before a poll read it leaves no position the recorder can prove drained.
            withKnownIssue("packed IN_ORDER TX batches used before a poll reads them end the ring's observation (ring_gap)") { followedAndCounted() }
        } else {
            // Seen in CI (2 pairs, in_order=0): rings lost to laps (ring_gap reason 1) and not found
            // drained again, so counts fall short; the verdict is INCOMPLETE, never a finding. Issue 11.
            withKnownIssue("a packed ring lost to a lap is not always found drained again", isIntermittent: true) { followedAndCounted() }
        }
        print("dpdk packed pair \(c): \(r.record.events) events, per-queue used \(s.setUpQueues.map(\.used)), testpmd \(counts), check \(report.status), \(report.polled.map { "unseen \($0.unseenExposures), restarts \($0.restarts)" } ?? "")")
    }

    static func close(_ a: UInt64, _ b: UInt64, ring: Int) -> Bool {
        let d = a > b ? a - b : b - a
        return d <= UInt64(ring) + max(a, b) / 20
    }

    // MARK: processes

    static func testpmd(_ eal: [String], pairs: Int, log: String, extra: [String] = []) throws -> Child {
        // `timeout` bounds testpmd even if this test process dies; it forwards SIGINT/SIGTERM.
        let args = ["timeout", "-s", "KILL", "90", testpmd!, "-l", "0-1", "--no-pci", "--no-huge", "-m", "512"] + eal
            + ["--", "--rxq=\(pairs)", "--txq=\(pairs)", "--nb-cores=1", "--total-num-mbufs=65536", "--stats-period=100"] + extra
        return try Child(args, log: log)
    }

    static func waitFor(_ path: String) throws {
        for _ in 0..<200 {
            if FileManager.default.fileExists(atPath: path) { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw POSIXError(.ETIMEDOUT)
    }

    /// Per queue pair (RX-packets, TX-packets) from testpmd's final forward statistics. With one
    /// pair testpmd prints only the port totals.
    static func forwardStats(_ log: String, pairs: Int) throws -> [(UInt64, UInt64)] {
        let lines = log.split(separator: "\n").map(String.init)
        func numbers(_ line: String) -> [UInt64] {
            line.split(separator: " ").compactMap { UInt64($0) }
        }
        var out: [(UInt64, UInt64)] = []
        if pairs == 1 {
            guard let i = lines.firstIndex(where: { $0.contains("Forward statistics for port 0") }) else { throw POSIXError(.ENOMSG) }
            let rx = numbers(lines[i + 1]).first ?? 0, tx = numbers(lines[i + 2]).first ?? 0
            return [(rx, tx)]
        }
        for k in 0..<pairs {
            let i = lines.firstIndex { line in
                guard let r = line.range(of: "Forward Stats for RX Port= 0/Queue=") else { return false }
                return line[r.upperBound...].split(separator: "-").first.map { $0.trimmingCharacters(in: .whitespaces) } == "\(k)"
            }
            guard let i else { throw POSIXError(.ENOMSG) }
            let n = numbers(lines[i + 1])
            out.append((n.first ?? 0, n.count > 1 ? n[1] : 0))
        }
        return out
    }
}

/// A child process we started, controlled by its PID only.
final class Child {
    let pid: Int32
    private(set) var exited = false

    init(_ args: [String], log: String) throws {
        let fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(fd) }
        var cargs = args.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) } }
        pid = cs_spawn(&cargs, fd)
        guard pid > 0 else { throw POSIXError(.ENOEXEC) }
    }

    var isRunning: Bool {
        if exited { return false }
        var st: Int32 = 0
        if cs_reap(pid, &st) != 0 { exited = true }
        return !exited
    }

    func interrupt() { if isRunning { kill(pid, SIGINT) } }

    func wait(seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        while isRunning && Date() < end { Thread.sleep(forTimeInterval: 0.05) }
    }

    /// SIGINT (timeout forwards it), then SIGKILL to testpmd (timeout's child) and timeout.
    func stop() {
        guard isRunning else { return }
        interrupt()
        wait(seconds: 5)
        guard isRunning else { return }
        let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8))?
            .split(separator: " ").compactMap { Int32($0) } ?? []
        for c in children { kill(c, SIGKILL) }
        kill(pid, SIGKILL)
        wait(seconds: 2)
    }
}

/// A capture running on its own thread.
final class RecorderThread: @unchecked Sendable {
    private let lock = NSLock()
    private var r: LiveResult?
    private let done = DispatchSemaphore(value: 0)

    init(_ o: RecordOptions, check: Bool = false) {
        Thread.detachNewThread { [self] in
            let res = LiveRecord.run(o, check: check, log: { _ in })
            lock.withLock { r = res }
            done.signal()
        }
    }

    func result(timeout: Double) -> LiveResult? {
        _ = done.wait(timeout: .now() + timeout)
        return lock.withLock { r }
    }
}
