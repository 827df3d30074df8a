import CSupport
import Foundation
import Glibc
import TestSupport
import Testing
import TraceFormat
import TraceTools

/// A real Linux guest: QEMU (TCG) with a Debian kernel's virtio_net, multi-queue over vhost-user,
/// through `conformance record`, to DPDK testpmd forwarding every packet back on its queue pair
/// (scripts/guest/run.sh). Each case asserts that every enabled queue carried traffic and that
/// per queue the guest's `ethtool -S`, testpmd's forward statistics and the trace's used buffers
/// agree exactly. Skipped only where QEMU is not installed; CI installs it (scripts/setup.sh).
@Suite(.serialized) struct LinuxGuestTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../..").standardized.path
    static let qemu: String? = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        .split(separator: ":").map { "\($0)/qemu-system-x86_64" }
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    struct Variant: Sendable, CustomTestStringConvertible {
        let name: String
        let pairs: Int
        let variants: [String]
        /// `--recorder` of run.sh: plain (the passive recorder) or interpose (the ring relay).
        var recorder = "plain"
        var testDescription: String { name }
        var interposed: Bool { recorder == "interpose" }
        var packed: Bool { variants.contains("packed") }
        var restart: Bool { variants.contains("restart") }
    }

    /// In CI every passive-recorder variant but plain 2 pairs, and 2 pairs through `--interpose`
    /// (`LiveMatrix`; CONFORMANCE_LIVE=full runs all). A guest boot under TCG costs about 35 s, so
    /// CI runs the variants that change independent things (ring features; memory layout and the
    /// channel count) combined, two boots instead of four; the full matrix runs each alone too.
    static let allVariants: [Variant] = [
        Variant(name: "1-pair", pairs: 1, variants: []),
        Variant(name: "2-pairs", pairs: 2, variants: []),
        Variant(name: "4-pairs", pairs: 4, variants: []),
        Variant(name: "event-idx-off", pairs: 2, variants: ["event-idx-off"]),
        Variant(name: "indirect-off", pairs: 2, variants: ["indirect-off"]),
        Variant(name: "channels-1-and-back", pairs: 2, variants: ["channels"]),
        Variant(name: "backend-restart", pairs: 2, variants: ["restart"]),
        Variant(name: "4-GiB-two-regions", pairs: 2, variants: ["mem4g"]),
        Variant(name: "packed", pairs: 2, variants: ["packed"]),
        Variant(name: "event-idx-and-indirect-off", pairs: 2, variants: ["event-idx-off", "indirect-off"]),
        Variant(name: "channels-1-and-back-in-4-GiB", pairs: 2, variants: ["channels", "mem4g"]),
        // Through `record --interpose`: exact traces of the same guest and back-end.
        Variant(name: "interposed-1-pair", pairs: 1, variants: [], recorder: "interpose"),
        Variant(name: "interposed-2-pairs", pairs: 2, variants: [], recorder: "interpose"),
        Variant(name: "interposed-4-pairs", pairs: 4, variants: [], recorder: "interpose"),
        Variant(name: "interposed-packed", pairs: 2, variants: ["packed"], recorder: "interpose"),
        Variant(name: "interposed-packed-4-pairs", pairs: 4, variants: ["packed"], recorder: "interpose"),
        // Packed without indirect descriptors (the guest still puts each packet in one descriptor).
        Variant(name: "interposed-packed-indirect-off", pairs: 2, variants: ["packed", "indirect-off"], recorder: "interpose"),
    ]

    /// LINUX_GUEST_VARIANTS=name,name runs only those (for working on one variant).
    static let variants: [Variant] = {
        guard let only = ProcessInfo.processInfo.environment["LINUX_GUEST_VARIANTS"]?.split(separator: ",").map(String.init) else {
            // 2 pairs plainly is in every 2-pair variant; through --interpose the relayed runs are
            // 2 pairs split and packed.
            let inCombined: Set = ["2-pairs", "event-idx-off", "indirect-off", "channels-1-and-back", "4-GiB-two-regions"]
            return LiveMatrix.cases(allVariants) { $0.interposed ? $0.pairs == 2 && $0.variants.count <= 1 : !inCombined.contains($0.name) }
        }
        return allVariants.filter { only.contains($0.name) }
    }()

    // Virtio feature bits the variants switch (virtio 1.x, "Reserved Feature Bits").
    static let indirectDesc = 28, eventIdx = 29, ringPacked = 34

    @Test(.enabled(if: qemu != nil, "qemu-system-x86_64 not found: install qemu-system-x86 (scripts/setup.sh) to run the Linux-guest captures"),
          .timeLimit(.minutes(4)), arguments: variants)
    func linuxGuestCaptureCarriesTrafficOnEveryQueueAndCountsAgree(v: Variant) throws {
        let out = NSTemporaryDirectory() + "linux-guest-\(getpid())/\(v.name)"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        defer { if ProcessInfo.processInfo.environment["KEEP_GUEST_RUNS"] == nil { try? FileManager.default.removeItem(atPath: out) } }
        let bin = try #require(ConformanceBinary.url, "conformance executable not built").path

        var args = ["--pairs", "\(v.pairs)", "--recorder", v.recorder]
        for x in v.variants { args += ["--variant", x] }
        // Cold: the old testpmd is gone before the new one listens (about 2.4 s); the recorder keeps
        // trying the back-end meanwhile (`record --reconnect`).
        if v.restart { args += ["--restart-mode", "cold"] }
        let started = Date()
        let status = try Self.runScript(args + ["--conformance", bin, out], log: out + "/run.log", seconds: 200)
        let wall = Date().timeIntervalSince(started)
        #expect(status == 0, "run.sh exited \(status): \(Self.tail(out + "/run.log")) | serial: \(Self.tail(out + "/serial.log"))")
        guard status == 0 else { return }

        let s = try Summary(path: out + "/summary.json")
        #expect(s.guestDone)
        // A ring the recorder stopped following has short counts: say so first (it happens when
        // the recorder is starved of CPU for a fifth of a second, e.g. on an overloaded machine).
        // Packed rings: a TX ring whose buffers the device uses before a poll reads them, while the
        // ring is not drained, gets a `ring_gap` until it drains (Specs/model.md, "Drained blocks").
        if !v.packed || v.interposed {
            #expect(s.recorderLostRings.isEmpty, "the recorder fell behind on vq \(s.recorderLostRings): \(Self.tail(out + "/recorder.log", lines: 3))")
        }
        #expect(s.queues.count == v.pairs)
        #expect(s.testpmdRuns == (v.restart ? 2 : 1))

        // The trace, read here rather than through the summary: the header has N pairs, and the
        // summary's per-vq used counts are the trace's.
        let t = try TraceFacts(path: out + "/trace.trace")
        // The recorder's header names 256 queues (all SET_VRING_KICK can address); stats lists the
        // ones the front-end set up.
        #expect(t.stats.setUpQueues.count == 2 * v.pairs, "\(t.stats.setUpQueues.map(\.vq))")
        let stats = t.stats
        // A relayed capture is exact; a passive one polled.
        #expect(t.header.flags.contains(.sampled) != v.interposed, "header flags \(t.header.flags)")

        for q in s.queues {
            let k = q.pair
            // Every enabled queue carried traffic (after a restart: in both back-end runs).
            #expect(q.guestTx > 0 && q.guestRx > 0, "pair \(k) idle in the guest: tx \(q.guestTx) rx \(q.guestRx)")
            for (run, (rx, tx)) in zip(q.testpmdRxByRun, q.testpmdTxByRun).enumerated() {
                #expect(rx > 0 && tx > 0, "pair \(k): testpmd run \(run + 1) forwarded rx \(rx) tx \(tx)")
            }
            // Guest RX = what testpmd sent on that queue; exact: every 60-byte packet takes one
            // buffer, and the guest reads its counters after a second without traffic.
            #expect(q.guestRx == q.testpmdTx, "pair \(k): guest rx \(q.guestRx) vs testpmd TX-packets \(q.testpmdTx)")
            if v.packed && v.interposed {
                // Relayed packed rings are exact: the trace's used descriptors (counted through the
                // packed judge; the summary's per-vq counts read split indices) = testpmd's counts.
                #expect(q.guestTx == q.testpmdRx, "pair \(k): guest tx \(q.guestTx) vs testpmd RX-packets \(q.testpmdRx)")
                let rxUsed = stats.queues[2 * k].used, txUsed = stats.queues[2 * k + 1].used
                #expect(rxUsed == q.testpmdTx && txUsed == q.testpmdRx, "pair \(k): trace RX/TX used \(rxUsed)/\(txUsed) vs testpmd TX/RX \(q.testpmdTx)/\(q.testpmdRx)")
                continue
            }
            if v.packed {
                #expect(q.guestTx == q.testpmdRx, "pair \(k): guest tx \(q.guestTx) vs testpmd RX-packets \(q.testpmdRx)")
                // The trace's used descriptors, counted through the packed judge (the summary's
                // per-vq used counts read split indices), = testpmd's per-queue counts.
                let rxUsed = stats.queues[2 * k].used, txUsed = stats.queues[2 * k + 1].used
                // A Linux guest keeps its packed RX rings full, so a ring lost at the start (the device
                // used buffers before a poll read them) is never found drained and not followed again:
                // the verdict is INCOMPLETE, never a finding (issue 11).
                withKnownIssue("a packed RX ring that never drains is not followed again once lost", isIntermittent: true) {
                    #expect(rxUsed > 0 && txUsed > 0, "pair \(k): trace RX/TX used \(rxUsed)/\(txUsed)")
                }
                withKnownIssue("packed TX buffers used before a poll reads them, on a ring not found drained, are not seen until it drains (ring_gap)", isIntermittent: true) {
                    #expect(rxUsed == q.testpmdTx && txUsed == q.testpmdRx, "pair \(k): trace RX/TX used \(rxUsed)/\(txUsed) vs testpmd TX/RX \(q.testpmdTx)/\(q.testpmdRx)")
                }
                continue
            }
            #expect(q.traceTxUsed == stats.queues[2 * k + 1].used && q.traceRxUsed == stats.queues[2 * k].used)
            // The trace's used buffers = testpmd's per-queue counts, exactly.
            #expect(q.traceRxUsed == q.testpmdTx, "pair \(k): RX vq used \(q.traceRxUsed) vs testpmd TX-packets \(q.testpmdTx)")
            #expect(q.traceTxUsed == q.testpmdRx, "pair \(k): TX vq used \(q.traceTxUsed) vs testpmd RX-packets \(q.testpmdRx)")
            // Guest TX = testpmd RX plus what QEMU itself completed (dropped) while no back-end was
            // connected: the TX index jump across the reconnect, zero without a restart.
            #expect(q.guestTx == q.traceTxUsed + q.traceTxGap, "pair \(k): guest tx \(q.guestTx) vs trace used \(q.traceTxUsed) + gap \(q.traceTxGap)")
            #expect(q.traceRxGap == 0, "pair \(k): RX index jumped by \(q.traceRxGap) between sessions")
            if !v.restart { #expect(q.traceTxGap == 0) }
        }

        // What each variant must have changed.
        let features = t.features
        func bit(_ b: Int) -> Bool { features & (1 << UInt64(b)) != 0 }
        #expect(bit(Self.eventIdx) != v.variants.contains("event-idx-off"), "features 0x\(String(features, radix: 16))")
        #expect(bit(Self.indirectDesc) != v.variants.contains("indirect-off"), "features 0x\(String(features, radix: 16))")
        #expect(bit(Self.ringPacked) == v.packed, "features 0x\(String(features, radix: 16))")
        #expect(s.guestFeatureBit(Self.eventIdx) == bit(Self.eventIdx) && s.guestFeatureBit(Self.ringPacked) == v.packed)
        let regions = t.memRegions
        #expect(regions.allSatisfy { $0 == (v.variants.contains("mem4g") ? 2 : 1) }, "memory regions \(regions)")
        if v.variants.contains("channels") {
            #expect(s.guestEvents.contains("channels 1") && s.guestEvents.last { $0.hasPrefix("channels") } == "channels \(v.pairs)", "\(s.guestEvents)")
            // Once traffic runs on every pair, the guest's combined 1 disables the other pairs'
            // vrings and combined N enables them again: a disable followed by an enable after the
            // first enable. Today's recorder holds those disables for a reply and writes them late.
            let toggles = t.enablesBeyondPair0
            let afterStart = toggles.firstIndex(of: true).map { toggles[$0...] } ?? []
            #expect(afterStart.firstIndex(of: false).map { afterStart[$0...].contains(true) } == true, "vring enables for vq >= 2: \(toggles)")
        }
        if v.restart {
            #expect(s.guestEvents.contains("carrier lost") && s.guestEvents.contains("carrier back"), "\(s.guestEvents)")
            #expect(t.resetOwners >= 1 && t.setOwners == 2, "reset_owner \(t.resetOwners), set_owner \(t.setOwners)")
        }

        // The verdict: clean, everything judged. Packed: never a finding; judged throughout unless a
        // ring got a gap it did not drain from.
        if v.packed && !v.interposed {
            #expect(s.findings == 0 && s.checkStatus != 1 && s.checkStatus != 2, "check exit \(s.checkStatus), \(s.findings) finding(s): \(s.rules)")
            withKnownIssue("a packed ring's gap not followed by a drained restart leaves it INCOMPLETE", isIntermittent: true) {
                #expect(s.checkStatus == 0, "check exit \(s.checkStatus)")
            }
        } else {
            #expect(s.checkStatus == 0 && s.findings == 0, "check exit \(s.checkStatus), \(s.findings) finding(s): \(s.rules)")
        }
        print("linux-guest \(v.name): \(t.events) events (\(s.traceBytes) bytes), per pair [guest tx/rx = testpmd rx/tx = trace TX/RX used (+ TX gap)] "
              + s.queues.map { "\($0.pair): \($0.guestTx)/\($0.guestRx) = \($0.testpmdRx)/\($0.testpmdTx) = \($0.traceTxUsed)/\($0.traceRxUsed) (+\($0.traceTxGap))" }.joined(separator: ", ")
              + "; check exit \(s.checkStatus), \(s.findings) finding(s) \(s.rules); \(String(format: "%.1f", wall)) s")
    }

    // MARK: Linux virtio_net against `conformance serve` (exact traces)

    struct ServeVariant: Sendable, CustomTestStringConvertible {
        let pairs: Int
        let mapping: String
        let workers: Int
        var testDescription: String { "\(pairs) pair(s), \(mapping) W=\(workers)" }
    }

    static let serveVariants: [ServeVariant] = LiveMatrix.cases([
        ServeVariant(pairs: 1, mapping: "seed-rfc2", workers: 1),
        ServeVariant(pairs: 2, mapping: "seed-rfc2", workers: 2),
        ServeVariant(pairs: 4, mapping: "per-pair", workers: 4),
    ]) { $0.pairs == 2 }

    /// QEMU (TCG) with the Linux guest straight to `conformance serve` (loopback, --check): the
    /// first exact traces of Linux virtio_net. Per queue the guest's `ethtool -S`, serve's counts and
    /// the trace's used buffers agree exactly; serve's live verdict and `check` of its file are clean.
    @Test(.enabled(if: qemu != nil, "qemu-system-x86_64 not found: install qemu-system-x86 (scripts/setup.sh) to run the Linux-guest captures"),
          .timeLimit(.minutes(4)), arguments: serveVariants)
    func linuxGuestAgainstServeCountsAgreeAndTheExactTraceChecksClean(v: ServeVariant) throws {
        let out = NSTemporaryDirectory() + "linux-guest-\(getpid())/serve-\(v.pairs)"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        defer { if ProcessInfo.processInfo.environment["KEEP_GUEST_RUNS"] == nil { try? FileManager.default.removeItem(atPath: out) } }
        let bin = try #require(ConformanceBinary.url, "conformance executable not built").path
        let args = ["--backend", "serve", "--pairs", "\(v.pairs)", "--serve-mapping", v.mapping, "--serve-workers", "\(v.workers)", "--conformance", bin, out]
        let started = Date()
        let status = try Self.runScript(args, log: out + "/run.log", seconds: 200)
        let wall = Date().timeIntervalSince(started)
        #expect(status == 0, "run.sh exited \(status): \(Self.tail(out + "/run.log")) | serve: \(Self.tail(out + "/serve.log")) | serial: \(Self.tail(out + "/serial.log"))")
        guard status == 0 else { return }

        let data = try Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))
        let o = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        func n(_ d: [String: Any], _ k: String) -> UInt64? { (d[k] as? NSNumber)?.uint64Value }
        #expect(o["guestDone"] as? Bool == true)
        #expect(n(o, "serveStatus") == 0, "serve exit \(o["serveStatus"] ?? "?"): \(Self.tail(out + "/serve.log", lines: 12))")
        #expect(n(o, "serveFindings") == 0, "serve --check: \(Self.tail(out + "/serve.log", lines: 12))")
        #expect(n(o, "checkStatus") == 0 && n(o, "findings") == 0, "check exit \(o["checkStatus"] ?? "?"), \(o["findings"] ?? "?") finding(s): \(o["rules"] ?? "")")
        let t = try TraceFacts(path: out + "/trace.trace")
        #expect(t.header.profile == .vhostUser && !t.header.flags.contains(.sampled))
        let qs = try #require(o["queues"] as? [[String: Any]])
        #expect(qs.count == v.pairs)
        var line: [String] = []
        for q in qs {
            let k = Int(n(q, "pair") ?? 99)
            let gtx = n(q, "guestTx"), grx = n(q, "guestRx"), stx = n(q, "serveTxUsed"), srx = n(q, "serveRxUsed")
            #expect((gtx ?? 0) > 0 && (grx ?? 0) > 0, "pair \(k) idle in the guest: tx \(gtx ?? 0) rx \(grx ?? 0)")
            // Every 60-byte frame takes one buffer; the guest reads its counters a second after its traffic.
            #expect(gtx == stx && stx == n(q, "traceTxUsed"), "pair \(k): guest tx \(gtx ?? 0), serve TX used \(stx ?? 0), trace \(n(q, "traceTxUsed") ?? 0)")
            #expect(grx == srx && srx == n(q, "traceRxUsed"), "pair \(k): guest rx \(grx ?? 0), serve RX used \(srx ?? 0), trace \(n(q, "traceRxUsed") ?? 0)")
            // Loopback: each frame from TX[k] went to RX[k], or was dropped because RX[k] had no room
            // (a TCG guest refills its RX ring slowly; a device drops then, as testpmd's io forwarding
            // does), or was still queued when RX[k] stopped.
            let drops = n(q, "serveDrops") ?? 0, undelivered = n(q, "serveRxUndelivered") ?? 0
            #expect((stx ?? 0) == (srx ?? 0) + drops + undelivered, "pair \(k): TX \(stx ?? 0) vs RX \(srx ?? 0) + dropped \(drops) + undelivered \(undelivered)")
            line.append("\(k): \(gtx ?? 0)/\(grx ?? 0) (dropped \(drops))")
        }
        print("linux-guest serve \(v): \(t.events) events, per pair guest tx/rx = serve = trace used \(line.joined(separator: ", ")); \(String(format: "%.1f", wall)) s")
    }

    // MARK: the checked-in excerpts (no QEMU needed)

    static let excerptsDir = root + "/Traces/real"
    static func linuxTraces(in d: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: d)) ?? []).filter { $0.hasPrefix("linux-") && $0.hasSuffix(".trace") }.sorted().map { d + "/" + $0 }
    }
    /// Conformant excerpts in Traces/real, incomplete ones (packed) in Traces/incomplete.
    static let excerpts = linuxTraces(in: excerptsDir) + linuxTraces(in: root + "/Traces/incomplete")

    @Test func linuxGuestExcerptsExistForOneTwoAndFourPairs() {
        for n in ["linux-1q.trace", "linux-2q.trace", "linux-4q.trace"] {
            #expect(Self.excerpts.contains(Self.excerptsDir + "/" + n), "\(n) missing in \(Self.excerptsDir) (scripts/guest/excerpts.sh)")
        }
    }

    /// Each excerpt is a recorded (sampled) vhost-user capture of at most 1 MB (10^6 bytes) in which every vq
    /// carried traffic; a packed-ring session is never conformant (nothing of it was judged).
    @Test(arguments: excerpts)
    func linuxGuestExcerptDecodesCarriesTrafficOnEveryVqAndIsJudged(path: String) throws {
        let name = (path as NSString).lastPathComponent
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
        #expect(size <= 1_000_000, "\(name): \(size) bytes")
        let t = try TraceFacts(path: path)
        #expect(t.header.profile == .vhostUser && t.header.flags.contains(.sampled))
        let packed = t.features & (1 << UInt64(Self.ringPacked)) != 0
        if !packed {
            for q in t.stats.setUpQueues { #expect(q.exposed > 0 && q.used > 0, "\(name): vq \(q.vq) idle (exposed \(q.exposed), used \(q.used))") }
        }
        let r = try ConformanceBinary.run(["check", "--format", "json", path])
        let findings = r.out.firstMatch(of: /"total_findings": *([0-9]+)/).map { String($0.1) } ?? "?"
        print("excerpt \(name): \(t.events) events, check exit \(r.status), \(findings) finding(s)")
        if packed {
            #expect(r.status == 3, "\(name): check exit \(r.status) on a packed-ring capture")
        } else {
            #expect(r.status == 0, "\(name): check exit \(r.status), \(findings) finding(s)")
        }
    }

    // MARK: helpers

    /// Runs scripts/guest/run.sh with a deadline; past it, SIGTERM (run.sh stops its processes and
    /// removes sockets and DPDK folders), then SIGKILL. Spawned with an empty signal mask: this
    /// process blocks SIGINT in its threads, and testpmd must see it to print its statistics.
    static func runScript(_ args: [String], log: String, seconds: Double) throws -> Int32 {
        let fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        var cargs = (["/bin/bash", root + "/scripts/guest/run.sh"] + args).map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) } }
        let pid = cs_spawn(&cargs, fd)
        guard pid > 0 else { throw POSIXError(.ENOEXEC) }
        var st: Int32 = 0
        func exited() -> Bool { cs_reap(pid, &st) != 0 }
        let end = Date().addingTimeInterval(seconds)
        var done = exited()
        while !done && Date() < end { Thread.sleep(forTimeInterval: 0.2); done = exited() }
        if !done {
            kill(pid, SIGTERM)
            let grace = Date().addingTimeInterval(30)
            while !exited() && Date() < grace { Thread.sleep(forTimeInterval: 0.2) }
            if !exited() { kill(pid, SIGKILL); while !exited() { Thread.sleep(forTimeInterval: 0.1) } }
            return -1
        }
        return st & 0x7f == 0 ? (st >> 8) & 0xff : 128 + (st & 0x7f)
    }

    static func tail(_ path: String, lines: Int = 8) -> String {
        let s = (try? String(contentsOfFile: path, encoding: .utf8)) ?? "(no \(path))"
        return s.split(separator: "\n").suffix(lines).joined(separator: " / ")
    }
}

/// What the tests need from a trace, read in one streaming pass.
struct TraceFacts {
    let header: TraceHeader
    var stats: TraceStats
    var events = 0
    /// The last SET_FEATURES (the negotiated virtio features).
    var features: UInt64 = 0
    var memRegions: [UInt64] = []
    /// SET_VRING_ENABLE values for the vrings of pairs 1 and up, in trace order.
    var enablesBeyondPair0: [Bool] = []
    var setOwners = 0, resetOwners = 0

    init(path: String) throws {
        let r = try TraceReader(path: path)
        header = r.header
        stats = TraceStats(header: r.header)
        while let (e, _) = try r.next() {
            events += 1
            stats.add(e)
            switch e.kind {
            case .setFeatures: features = e.p0
            case .setMemTable: memRegions.append(e.p0)
            case .setVringEnable where e.vq >= 2 && e.vq != TraceEvent.none: enablesBeyondPair0.append(e.p0 != 0)
            case .setOwner: setOwners += 1
            case .resetOwner: resetOwners += 1
            default: break
            }
        }
    }
}

/// summary.json of a run (scripts/guest/summary.sh).
struct Summary {
    struct Queue {
        let pair: Int
        let guestTx, guestRx, testpmdRx, testpmdTx: UInt64
        let testpmdRxByRun, testpmdTxByRun: [UInt64]
        let traceTxUsed, traceRxUsed, traceTxGap, traceRxGap: UInt64
    }
    let guestDone: Bool
    let guestFeatures: String
    let guestEvents: [String]
    let recorderLostRings: [Int]
    let testpmdRuns: Int
    let traceBytes: UInt64
    let checkStatus: Int
    let findings: UInt64
    let rules: [String]
    let queues: [Queue]

    struct Malformed: Error, CustomStringConvertible {
        let field: String
        var description: String { "summary.json: \(field) missing or not a number" }
    }

    init(path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let o = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw Malformed(field: "(top level)") }
        func n(_ d: [String: Any], _ k: String) throws -> UInt64 {
            guard let x = d[k] as? NSNumber else { throw Malformed(field: k) }
            return x.uint64Value
        }
        func list(_ d: [String: Any], _ k: String) throws -> [UInt64] {
            guard let a = d[k] as? [NSNumber] else { throw Malformed(field: k) }
            return a.map(\.uint64Value)
        }
        guestDone = o["guestDone"] as? Bool ?? false
        guestFeatures = o["guestFeatures"] as? String ?? ""
        guestEvents = o["guestEvents"] as? [String] ?? []
        rules = o["rules"] as? [String] ?? []
        recorderLostRings = (o["recorderLostRings"] as? [NSNumber] ?? []).map(\.intValue)
        testpmdRuns = Int(try n(o, "testpmdRuns"))
        traceBytes = try n(o, "traceBytes")
        checkStatus = Int(try n(o, "checkStatus"))
        findings = try n(o, "findings")
        guard let qs = o["queues"] as? [[String: Any]] else { throw Malformed(field: "queues") }
        queues = try qs.map { q in
            Queue(pair: Int(try n(q, "pair")), guestTx: try n(q, "guestTx"), guestRx: try n(q, "guestRx"),
                  testpmdRx: try n(q, "testpmdRx"), testpmdTx: try n(q, "testpmdTx"),
                  testpmdRxByRun: try list(q, "testpmdRxByRun"), testpmdTxByRun: try list(q, "testpmdTxByRun"),
                  traceTxUsed: try n(q, "traceTxUsed"), traceRxUsed: try n(q, "traceRxUsed"),
                  traceTxGap: try n(q, "traceTxGap"), traceRxGap: try n(q, "traceRxGap"))
        }
    }

    /// The guest's /sys/class/net/eth0/device/features: one character per bit, bit 0 first.
    func guestFeatureBit(_ b: Int) -> Bool {
        let c = Array(guestFeatures)
        return b < c.count && c[b] == "1"
    }
}
