import Foundation
import Glibc
import Checker
import HostilePeers
import Testing
import TestSupport
import TraceFormat

/// The hostile-peer suite (issue 9, "Make it stay fixed"): a front-end and a back-end of our own
/// misbehave on purpose against `conformance record`, run as a CI job runs it. For every class:
/// no signal, no hang beyond the deadline plus a small grace, the exit status and message the
/// class calls for, a trace that `check` reads (0, 1 or 3, never 2), and nothing forwarded that
/// the other peer did not send. The front-end attacks are meant to run unchanged against `serve`.
@Suite(.serialized) struct HostilePeerSuite {
    static let binary = ConformanceBinary.url?.path
    static let target = binary.map { RecorderUnderTest(binary: $0) }

    @Test func catalogueHasAtLeast65ClassesWithUniqueNamesAndCoversEveryCategory() {
        let all = AttackCatalogue.all
        #expect(all.count >= 65, "\(all.count) classes")
        #expect(Set(all.map(\.name)).count == all.count, "names are unique")
        #expect(Set(all.map(\.category)) == Set(Attack.Category.allCases))
        #expect(all.contains { $0.side == .backEnd } && all.contains { $0.side == .frontEnd })
    }

    @Test(.timeLimit(.minutes(1)), arguments: AttackCatalogue.all)
    func recorderMeetsTheAttackWithoutCrashHangOrGarbage(attack: Attack) throws {
        let target = try #require(Self.target, "conformance executable not built")
        let o = target.run(attack)
        #expect(o.signal == nil, "\(attack.name): \(o)")
        #expect(!o.hung, "\(attack.name): \(o)")
        #expect(o.seconds <= attack.duration + target.grace, "\(attack.name) took \(o.seconds) s")
        #expect(o.exitStatus.map { attack.expect.exit.contains($0) } == true, "\(attack.name): \(o); stderr: \(o.stderr.suffix(600))")
        if let m = attack.expect.message { #expect(o.stderr.contains(m), "\(attack.name): stderr lacks “\(m)”: \(o.stderr.suffix(600))") }
        #expect(o.checkStatus.map { attack.expect.check.contains($0) } == true, "\(attack.name): \(o)")
        if let g = attack.expect.gap { #expect(o.gaps.contains(g.rawValue), "\(attack.name): no ring_gap reason=\(g.rawValue): \(o)") }
        #expect(o.forwardedOnlySent, "\(attack.name): \(o.forwardingProblem ?? "")")
    }

    /// `HOSTILE_SURVEY=out.tsv [HOSTILE_BINARY=old/conformance HOSTILE_LEGACY=1] swift test --filter survey`
    /// writes every class's outcome (for Specs/security.md's before/after table) instead of asserting;
/// `HOSTILE_ONLY=a,b` runs only those classes, `HOSTILE_KEEP=dir` keeps each one's trace and log there.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["HOSTILE_SURVEY"] != nil))
    func survey() throws {
        let env = ProcessInfo.processInfo.environment
        let bin = try #require(env["HOSTILE_BINARY"] ?? Self.binary)
        let t = RecorderUnderTest(binary: bin, legacy: env["HOSTILE_LEGACY"] != nil)
        var out = ""
        let only = env["HOSTILE_ONLY"].map { Set($0.split(separator: ",").map(String.init)) }
        for a in AttackCatalogue.all where only?.contains(a.name) ?? true {
            let o = t.run(a)
            let line = "\(a.name)\t\(a.category.rawValue)\t\(a.side == .frontEnd ? "front-end" : "back-end")\t\(o)\t\(String(format: "%.1f", o.seconds))\n"
            out += line
            FileHandle.standardError.write(Data(line.utf8))
        }
        try out.write(toFile: env["HOSTILE_SURVEY"]!, atomically: true, encoding: .utf8)
    }
}

/// "No fd or memory growth over repetitions": every front-end class that needs no special recorder
/// option, twice over, as sessions of one `--reconnect` recorder; its open fds must be the same
/// after both passes and its resident memory must not grow by more than a few MiB.
@Suite(.serialized) struct HostilePeerRepetitionTests {
    @Test(.timeLimit(.minutes(5)))
    func repeatedHostileSessionsLeaveNoFdsAndNoMemoryBehind() throws {
        let bin = try #require(ConformanceBinary.url?.path, "conformance executable not built")
        let attacks = AttackCatalogue.all.filter { $0.side == .frontEnd && $0.args.isEmpty && $0.connects && $0.sigtermAfter == nil }
        let r = try #require(LongRunningRecorder(binary: bin, seconds: 280))
        defer { r.cleanup() }
        var samples: [(fds: Int, rss: Int)] = []
        for _ in 0..<3 {
            for a in attacks { r.session(a) }
            usleep(200_000)
            samples.append((r.proc.childFdCount ?? -1, r.proc.childRSSKiB ?? -1))
        }
        let end = r.stop()
        print("hostile repetitions: \(attacks.count) classes × 3 passes; open fds after each pass \(samples.map(\.fds)), RSS KiB \(samples.map(\.rss))")
        guard case .exited(let code) = end else { Issue.record("recorder ended \(end); log: \(r.log.suffix(800))"); return }
        #expect(code == 2, "sessions broke the framing on purpose: exit 2 (\(code))")
        #expect(samples.allSatisfy { $0.fds > 0 && $0.rss > 0 })
        #expect(samples[1].fds == samples[0].fds && samples[2].fds == samples[0].fds, "open fds \(samples.map(\.fds))")
        #expect(samples[2].rss - samples[1].rss < 4096, "RSS KiB \(samples.map(\.rss))")
        let report = CheckRun.check(path: r.tracePath)
        #expect(report.error == nil, "\(report.error.map { "\($0)" } ?? "")")
    }
}

/// `Specs/security.md` lists exactly the classes of the catalogue, with their count.
@Suite struct HostilePeerDocsTests {
    static let doc = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Specs/security.md").standardized.path

    @Test func securityMdListsEveryClassOfTheCatalogueOnceWithItsCount() throws {
        let text = try String(contentsOfFile: Self.doc, encoding: .utf8)
        // The rows of the "Hostile peers" section only (other sections have tables of their own).
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let start = lines.firstIndex { $0.hasPrefix("## Hostile peers") } ?? lines.endIndex
        let end = lines[start...].dropFirst().firstIndex { $0.hasPrefix("## ") } ?? lines.endIndex
        let rows = lines[start..<end].filter { $0.hasPrefix("| `") }.map { $0.split(separator: "`")[1] }.map(String.init)
        let names = AttackCatalogue.all.map(\.name)
        #expect(rows == names, "rows missing: \(Set(names).subtracting(rows).sorted()); extra: \(Set(rows).subtracting(names).sorted())")
        #expect(text.contains("**Classes tested: \(names.count)**"))
        let fe = AttackCatalogue.all.filter { $0.side == .frontEnd }.count
        #expect(text.contains("\(fe) by the front-end, \(names.count - fe) by the back-end"))
        let repeated = AttackCatalogue.all.filter { $0.side == .frontEnd && $0.args.isEmpty && $0.connects && $0.sigtermAfter == nil }.count
        #expect(text.contains("runs the \(repeated) front-end classes"))
        for c in Attack.Category.allCases {
            let n = AttackCatalogue.all.filter { $0.category == c }.count
            #expect(text.contains("\(n) \(c.rawValue)"), "count of \(c.rawValue) (\(n))")
        }
    }
}

/// The same classes against `record --interpose` (the ring relay): whatever the peers do, no
/// signal, no hang beyond the deadline plus the grace, a defined exit status and a trace `check`
/// reads (never exit 2). The exact statuses and messages are the passive recorder's business
/// above; the relay rewrites messages by design, so byte equality is not asked here.
@Suite(.serialized) struct HostilePeerInterposeTests {
    static let target: RecorderUnderTest? = ConformanceBinary.url.map {
        var t = RecorderUnderTest(binary: $0.path)
        t.baseArgs += ["--interpose"]
        return t
    }
    static let attacks = AttackCatalogue.all.filter { !$0.args.contains("--relay-notifications") } + AttackCatalogue.packedRings

    @Test(.timeLimit(.minutes(1)), arguments: attacks)
    func relayMeetsTheAttackWithoutCrashHangOrGarbage(attack: Attack) throws {
        let target = try #require(Self.target, "conformance executable not built")
        let o = target.run(attack)
        #expect(o.signal == nil, "\(attack.name): \(o)")
        #expect(!o.hung, "\(attack.name): \(o)")
        #expect(o.seconds <= attack.duration + target.grace, "\(attack.name) took \(o.seconds) s")
        #expect(o.exitStatus.map { [0, 1, 2, 3].contains($0) } == true, "\(attack.name): \(o); stderr: \(o.stderr.suffix(600))")
        #expect(o.checkStatus.map { [0, 1, 3].contains($0) } == true, "\(attack.name): \(o)")
    }
}
