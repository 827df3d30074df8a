import Foundation
import Testing
import Checker
import Simulator
import TraceFormat
import TraceTools
import VirtioProtocol

/// One trace checked on several cores, split by vq (`SplitRun`, Specs/performance.md "Splitting one
/// trace across cores by vq"): the report is the serial run's, finding for finding, on every bundled,
/// real and regression trace, on generated traces with every injected fault, and on every mutation
/// of the real captures.
@Suite struct SplitRunTests {
    /// The serial report and the split one, as JSON: `--all` on `jobs[0]` shares, first-per-rule on the last of `jobs`.
    static func compare(_ bytes: [UInt8], name: String, jobs: [Int] = [2]) -> (split: Bool, differences: [String]) {
        var out: [String] = []
        let split = (try? TraceReader(bytes: bytes)).map { if case .success = SplitPlan.make($0, jobs: 2) { true } else { false } } ?? false
        for all in [false, true] {
            let serial = (try? TraceReader(bytes: bytes)).map { CheckRun.check(reader: $0, path: name, all: all) }
            let want = serial.map { Reporting.json([$0]) } ?? "unreadable"
            // `--all` differs from first-per-rule in the merge only: each mode takes one share count.
            for jobs in [all ? jobs[0] : jobs[jobs.count - 1]] {
                let r = SplitRun.check(open: { try TraceReader(bytes: bytes) }, path: name, all: all, jobs: jobs)
                let got = Reporting.json([r])
                if got != want { out.append("\(name) all=\(all) jobs=\(jobs):\n  serial: \(want.prefix(600))\n  split:  \(got.prefix(600))") }
            }
        }
        return (split, out)
    }

    static func bundled() -> [URL] {
        let repo = TraceCorpus.root.deletingLastPathComponent()
        let dirs = ["Traces"] + ((try? FileManager.default.contentsOfDirectory(atPath: TraceCorpus.root.path)) ?? []).map { "Traces/" + $0 }
            + ["Traces/real/exact", "Traces/real/legacy", "Tests/Regressions/traces"]
        return dirs.flatMap { d -> [URL] in
            let u = repo.appendingPathComponent(d)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: u.path)) ?? []
            return names.filter { $0.hasSuffix(".trace") }.sorted().map { u.appendingPathComponent($0) }
        }
    }

    @Test("a split run reports what the serial run does, on every bundled, real and regression trace")
    func bundledTracesSplitAsSerial() throws {
        let files = Self.bundled()
        #expect(files.count > 150)
        for f in files {
            let bytes = [UInt8](try Data(contentsOf: f))
            let r = Self.compare(bytes, name: f.lastPathComponent, jobs: [2, 3])
            #expect(r.differences.isEmpty, "\(r.differences.joined(separator: "\n"))")
            // Not vacuous: the real captures (DPDK and the Linux guest, polled and interposed) are split.
            let real = f.deletingLastPathComponent().lastPathComponent
            if real == "real" || f.deletingLastPathComponent().deletingLastPathComponent().lastPathComponent == "real" && real == "exact" {
                #expect(r.split, "\(f.lastPathComponent) was checked in one piece")
            }
        }
    }

    /// A generated schedule as trace bytes.
    static func generate(_ c: ScheduleConfig, events: UInt64, edit: (inout [TraceEvent]) -> Void = { _ in }) -> [UInt8] {
        var out: [TraceEvent] = []
        var gen = ScheduleGenerator(config: c) { out.append($0) }
        gen.run(events: events)
        edit(&out)
        return TraceBytes.encode(header: gen.header, events: out)
    }

    @Test("a split run reports what the serial run does, on generated traces with each injected fault", arguments: Fault.allCases)
    func injectedFaultSplitsAsSerial(_ f: Fault) {
        for seed: UInt64 in 1...2 {
            let r = Self.compare(Self.generate(f.schedule(seed: seed), events: 3_000), name: "\(f)-\(seed)")
            #expect(r.split)
            #expect(r.differences.isEmpty, "\(r.differences.joined(separator: "\n"))")
        }
    }

    @Test("a split run reports what the serial run does, on conformant schedules of every profile")
    func conformantSchedulesSplitAsSerial() {
        for (i, p) in Profile.allCases.enumerated() {
            for packed in [false, true] {
                let c = ScheduleConfig(profile: p, pairs: 3, queueSize: packed ? 250 : 256, indirect: i % 2 == 0, eventIdx: i % 3 == 0,
                                       startIndex: 65000, seed: UInt64(40 + i), packed: packed)
                let r = Self.compare(Self.generate(c, events: 5_000), name: "\(p)-packed=\(packed)")
                #expect(r.split)
                #expect(r.differences.isEmpty, "\(r.differences.joined(separator: "\n"))")
            }
        }
    }

    @Test("a split run reports what the serial run does, on every mutation of the real captures")
    func mutatedCapturesSplitAsSerial() throws {
        let repo = TraceCorpus.root
        // The DPDK captures, polled and interposed (the Linux guest's are four times longer: the
        // bundled-trace test covers them).
        let sources = ["real/testpmd-vhost-2q.trace", "real/exact/testpmd-vhost-2q-interposed.trace"]
        var mutated = 0
        for s in sources {
            let (h, located) = try TraceBytes.decode([UInt8](try Data(contentsOf: repo.appendingPathComponent(s))))
            for fault in BugClass.allCases {
                guard let m = try? Mutator.apply(fault, header: h, events: located.map(\.event)) else { continue }
                mutated += 1
                let r = Self.compare(TraceBytes.encode(header: h, events: m.events), name: "\(s)+\(fault.rawValue)")
                #expect(r.differences.isEmpty, "\(r.differences.joined(separator: "\n"))")
            }
        }
        #expect(mutated > 15)
    }

    // MARK: the plan

    @Test("every busy vq is judged by exactly one share, and one share reports what concerns no vq")
    func planPartitionsTheBusyVqs() throws {
        let c = ScheduleConfig(profile: .linuxUpstream, pairs: 4, queueSize: 64, startIndex: 0, seed: 3)
        let bytes = Self.generate(c, events: 10_000)
        for jobs in 2...5 {
            guard case .success(let plan) = SplitPlan.make(try TraceReader(bytes: bytes), jobs: jobs) else {
                Issue.record("not split"); continue
            }
            #expect(plan.shares.count == min(jobs, 8))
            #expect(plan.shares.filter(\.deviceWide).count == 1)
            for q in 0..<8 { #expect(plan.shares.filter { $0.owns[q] }.count == 1, "vq \(q)") }
        }
        guard case .failure(.oneVq) = SplitPlan.make(try TraceReader(bytes: bytes), jobs: 1) else { Issue.record("one core split"); return }
    }

    @Test("traces whose rules couple the vqs are checked in one piece: dirty logging, old-style polls")
    func planKeepsCoupledTracesWhole() throws {
        let header = TraceHeader(profile: .vhostUser, queueSizes: [8, 8])
        var e = TraceEvent(.setLogBase)
        e.vq = TraceEvent.none
        let logged = TraceBytes.encode(header: header, events: [e, TraceEvent(.kick, vq: 0), TraceEvent(.kick, vq: 1)])
        #expect(SplitPlan.make(try TraceReader(bytes: logged), jobs: 2).failure == .dirtyLog)
        let legacy = try [UInt8](Data(contentsOf: TraceCorpus.root.appendingPathComponent("real/legacy").appendingPathComponent(
            FileManager.default.contentsOfDirectory(atPath: TraceCorpus.root.appendingPathComponent("real/legacy").path).sorted().first { $0.hasSuffix(".trace") }!)))
        #expect(SplitPlan.make(try TraceReader(bytes: legacy), jobs: 2).failure == .legacyPolls)
    }

    @Test("a share that meets a coupling after the plan's sample stops, and the trace is checked in one piece")
    func couplingAfterTheSampleFallsBackToSerial() throws {
        let c = ScheduleConfig(profile: .vhostUser, pairs: 2, queueSize: 16, startIndex: 0, seed: 9)
        let bytes = Self.generate(c, events: 3_000) { $0.insert(TraceEvent(.setLogBase), at: 2_000) }
        let open: @Sendable () throws -> TraceReader = { try TraceReader(bytes: bytes) }
        guard case .success(let plan) = SplitPlan.make(try open(), jobs: 2, sample: 1_000) else { Issue.record("not split"); return }
        #expect(SplitRun.check(open: open, path: "t", plan: plan) == nil)
        #expect(SplitPlan.make(try open(), jobs: 2).failure == .dirtyLog)
        let serial = CheckRun.check(reader: try open(), path: "t", all: true)
        #expect(Reporting.json([SplitRun.check(open: open, path: "t", all: true, jobs: 2)]) == Reporting.json([serial]))
    }

    @Test("the comparison is not vacuous: shares that both report device-wide findings give another report")
    func brokenShareIsCaught() throws {
        // SET_OWNER twice is a device-wide finding (no vq): reported by both shares, it would count twice.
        let c = ScheduleConfig(profile: .linuxUpstream, pairs: 2, queueSize: 16, startIndex: 0, seed: 5)
        let bytes = Self.generate(c, events: 2_000) { $0.append(TraceEvent(.setOwner)) }
        let serial = CheckRun.check(reader: try TraceReader(bytes: bytes), path: "t")
        #expect(serial.findings.map(\.rule) == [.vhostOwnerTwice])
        guard case .success(let plan) = SplitPlan.make(try TraceReader(bytes: bytes), jobs: 2) else { Issue.record("not split"); return }
        let open: @Sendable () throws -> TraceReader = { try TraceReader(bytes: bytes) }
        let good = try #require(SplitRun.check(open: open, path: "t", plan: plan))
        #expect(Reporting.json([good]) == Reporting.json([serial]))
        let broken = SplitPlan(shares: plan.shares.map { Checker.Share(owns: $0.owns, deviceWide: true) })
        let bad = try #require(SplitRun.check(open: open, path: "t", plan: broken))
        #expect(bad.totalFindings == 2 * serial.totalFindings)
        #expect(Reporting.json([bad]) != Reporting.json([serial]))
    }
}

extension Result {
    var failure: Failure? { if case .failure(let f) = self { return f } else { return nil } }
}

