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
import VirtioProtocol

/// The real pair (DPDK testpmd's virtio-user front-end and vhost back-end) through
/// `record --interpose`, for 1, 2, 4 and 8 queue pairs: traffic flows through the relay, the trace
/// is exact and checks clean, and every queue's completions match both testpmds' statistics.
/// Skipped, with the reason, where dpdk-testpmd is not installed. Run under the shared lock.
@Suite(.serialized) struct InterposeDPDKTests {
    static let seconds = 6.0
    static let ringSize = 1024

    @Test(.enabled(if: DPDKPairTests.testpmd != nil, "dpdk-testpmd not found: install dpdk-dev to run the live-pair tests"),
          .timeLimit(.minutes(1)), arguments: LiveMatrix.cases([1, 2, 4, 8]) { $0 == 2 || $0 == 8 })
    func livePairThroughTheRelayIsExactChecksCleanAndMatchesBothTestpmds(pairs: Int) throws {
        try Self.run(pairs: pairs, devargs: "", name: "\(pairs)")
    }

    /// A front-end variant: pairs and the virtio-user devargs that select it.
    struct Variant: Sendable, CustomStringConvertible {
        var pairs: Int
        var devargs: String
        var description: String { "\(pairs) pairs \(devargs)" }
    }

    /// Packed rings (`packed_vq=1`) through the relay: with virtio-user's default in_order=1 (IN_ORDER
    /// negotiated: the device marks one used descriptor per batch) and with in_order=0.
    @Test(.enabled(if: DPDKPairTests.testpmd != nil, "dpdk-testpmd not found: install dpdk-dev to run the live-pair tests"),
          .timeLimit(.minutes(1)),
          arguments: LiveMatrix.cases([Variant(pairs: 2, devargs: ",packed_vq=1"), Variant(pairs: 2, devargs: ",packed_vq=1,in_order=0"),
                                       Variant(pairs: 1, devargs: ",packed_vq=1"), Variant(pairs: 4, devargs: ",packed_vq=1"),
                                       Variant(pairs: 8, devargs: ",packed_vq=1")]) { $0.pairs == 2 && !$0.devargs.contains("in_order") })
    func livePackedPairThroughTheRelayIsExactChecksCleanAndMatchesBothTestpmds(variant: Variant) throws {
        try Self.run(pairs: variant.pairs, devargs: variant.devargs, name: "p\(variant.pairs)\(variant.devargs.contains("in_order=0") ? "o" : "")", packed: true)
    }

    /// Waits (bounded) until the log at `path` holds `line`.
    static func waitForLine(_ line: String, in path: String, seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if let text = try? String(contentsOfFile: path, encoding: .utf8), text.contains(line) { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return false
    }

    static func run(pairs: Int, devargs: String, name: String, packed: Bool = false) throws {
        let dir = NSTemporaryDirectory() + "rec-ip-\(getpid())-\(name)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var procs: [Child] = []
        let tag = "ip\(getpid())q\(name)"
        defer {
            for p in procs { p.stop() }
            for side in ["be", "fe"] { try? FileManager.default.removeItem(atPath: "/var/run/dpdk/\(tag)\(side)") }
            if ProcessInfo.processInfo.environment["KEEP_DPDK_LOGS"] == nil { try? FileManager.default.removeItem(atPath: dir) }
        }
        let be = try DPDKPairTests.testpmd(["--file-prefix=\(tag)be", "--vdev", "net_vhost0,iface=\(dir)/be.sock,queues=\(pairs)"],
                                           pairs: pairs, log: dir + "/be.log")
        procs.append(be)
        try DPDKPairTests.waitFor(dir + "/be.sock")

        var o = RecordOptions(listenPath: dir + "/fe.sock", connectPath: dir + "/be.sock", outputPath: dir + "/t.trace")
        o.handleSignals = false
        o.progressInterval = 0
        o.duration = 45   // a bound, not the expected end: the front-end's exit ends the capture
        o.acceptTimeout = 20
        o.interpose = true
        let rec = RecorderThread(o, check: pairs == 1)
        try DPDKPairTests.waitFor(o.listenPath)

        let fe = try DPDKPairTests.testpmd(["--single-file-segments", "--file-prefix=\(tag)fe", "--vdev",
                                            "net_virtio_user0,path=\(o.listenPath),queues=\(pairs),queue_size=\(Self.ringSize)\(devargs)"],
                                           pairs: pairs, log: dir + "/fe.log", extra: ["--auto-start", "--tx-first"])
        procs.append(fe)
        // The seconds of traffic count from the front-end's start of forwarding: the back-end's
        // SET_MEM_TABLE (mapping the front-end's memory and the relay's region) took from 4 to
        // over 6 s on a loaded 2-core machine, and a SIGINT before its reply leaves the
        // front-end without a device (its recv fails with EINTR).
        let started = Self.waitForLine("start packet forwarding", in: dir + "/fe.log", seconds: 30)
        Thread.sleep(forTimeInterval: Self.seconds)
        fe.interrupt()
        fe.wait(seconds: 10)
        let r = try #require(rec.result(timeout: 15), "recorder did not end after the front-end left")
        be.interrupt()           // the back-end prints its statistics too
        be.wait(seconds: 10)
        #expect(started, "the front-end did not start forwarding within 30 s")
        #expect(r.record.end == .frontendClosed, "capture ended with \(r.record.end)")
        #expect(r.record.ringProblems.isEmpty, "\(r.record.ringProblems)")
        #expect(r.record.peerErrors.isEmpty && r.record.sessionFailures.isEmpty, "\(r.record.peerErrors) \(r.record.sessionFailures)")
        #expect(r.exitStatus == 0, "record exit \(r.exitStatus)")
        #expect(r.totalFindings == 0, "live check: \(r.findings.map { "\($0.rule): \($0.message)" })")

        let reader = try TraceReader(path: o.outputPath)
        #expect(!reader.header.flags.contains(.sampled), "an interposed trace is exact")
        var kinds = Set<EventKind>(), features: UInt64 = 0
        let all = try TraceReader(path: o.outputPath)
        while let (e, _) = try all.next() {
            kinds.insert(e.kind)
            if e.kind == .setFeatures { features = e.p0 }
        }
        // virtio-user asks for IN_ORDER unless told in_order=0, and the relay carries it.
        #expect((features & FeatureBit.inOrder.mask != 0) == !devargs.contains("in_order=0"), "features 0x\(String(features, radix: 16))")
        #expect((features & FeatureBit.ringPacked.mask != 0) == packed, "features 0x\(String(features, radix: 16))")
        if packed {
            // Its data plane in the packed events.
            #expect(kinds.isSuperset(of: [.packedDesc, .packedFlags, .packedUsed, .packedUsedFlags]), "\(kinds)")
            #expect(!kinds.contains(.availIdx) && !kinds.contains(.usedIdx))
        }
        let report = CheckRun.check(path: o.outputPath)
        #expect(report.error == nil && report.totalFindings == 0 && report.notJudged.isEmpty,
                "\(report.findings.prefix(3).map(\.message)) \(report.notJudged)")
        let s = try TraceStats.of(path: o.outputPath)
        #expect(s.setUpQueues.map(\.vq) == Array(0..<(2 * pairs)), "the vqs set up are listed")

        let feCounts = try DPDKPairTests.forwardStats(String(contentsOfFile: dir + "/fe.log", encoding: .utf8), pairs: pairs)
        let beCounts = try DPDKPairTests.forwardStats(String(contentsOfFile: dir + "/be.log", encoding: .utf8), pairs: pairs)
        for k in 0..<pairs {
            let rx = s.queues[2 * k], tx = s.queues[2 * k + 1]
            #expect(rx.used > 0 && tx.used > 0, "pair \(k) idle: RX used \(rx.used), TX used \(tx.used)")
            // The front-end's TX ring carries what it sent, its RX ring what it received; the
            // back-end received the first and sent the second (up to what was in flight at the end).
            let (feRx, feTx) = feCounts[k], (beRx, beTx) = beCounts[k]
            #expect(DPDKPairTests.close(tx.used, feTx, ring: Self.ringSize), "pair \(k): TX completions \(tx.used) vs front-end TX-packets \(feTx)")
            #expect(DPDKPairTests.close(rx.used, feRx, ring: Self.ringSize), "pair \(k): RX completions \(rx.used) vs front-end RX-packets \(feRx)")
            #expect(DPDKPairTests.close(tx.used, beRx, ring: Self.ringSize), "pair \(k): TX completions \(tx.used) vs back-end RX-packets \(beRx)")
            #expect(DPDKPairTests.close(rx.used, beTx, ring: Self.ringSize), "pair \(k): RX completions \(rx.used) vs back-end TX-packets \(beTx)")
        }
        print("dpdk pair \(pairs)q\(devargs) through --interpose: \(r.record.events) events, per-queue used \(s.setUpQueues.map(\.used)), front-end \(feCounts), back-end \(beCounts)")
    }
}
