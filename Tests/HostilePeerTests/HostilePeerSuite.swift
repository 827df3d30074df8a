import Foundation
import Glibc
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
    /// writes every class's outcome (for Specs/security.md's before/after table) instead of asserting.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["HOSTILE_SURVEY"] != nil))
    func survey() throws {
        let env = ProcessInfo.processInfo.environment
        let bin = try #require(env["HOSTILE_BINARY"] ?? Self.binary)
        let t = RecorderUnderTest(binary: bin, legacy: env["HOSTILE_LEGACY"] != nil)
        var out = ""
        for a in AttackCatalogue.all {
            let o = t.run(a)
            let line = "\(a.name)\t\(a.category.rawValue)\t\(a.side == .frontEnd ? "front-end" : "back-end")\t\(o)\t\(String(format: "%.1f", o.seconds))\n"
            out += line
            FileHandle.standardError.write(Data(line.utf8))
        }
        try out.write(toFile: env["HOSTILE_SURVEY"]!, atomically: true, encoding: .utf8)
    }
}
