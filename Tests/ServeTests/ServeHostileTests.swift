import Checker
import Foundation
import Glibc
import HostilePeers
import Testing
import TestSupport

/// The hostile-peer suite's front-end classes against `serve` (issue 12: "Run the hostile-peer
/// suite against serve as well"): no signal, no hang beyond the deadline plus a small grace, a
/// `CheckExit` status, a trace `check` reads, and the verdict serve gave live is the one `check`
/// gives on its file. Where the recorder may not say 0 (nothing judged, framing broken), serve may
/// not either; where the front-end broke the framing or stalled, serve says 2 as the recorder does.
@Suite(.serialized) struct ServeHostileTests {
    static let binary = ConformanceBinary.url?.path
    static let attacks = AttackCatalogue.all.filter(ServeUnderTest.applies)
    /// Classes whose harm is in memory only the device writes and never reads: the recorder polls
    /// used.idx and must give up; the device keeps its own index and overwrites the driver's.
    static let unseenByTheDevice: Set = ["used-idx-jumps-beyond-the-queue-size"]

    @Test(.timeLimit(.minutes(1)), arguments: attacks)
    func serveMeetsTheHostileFrontEndWithoutCrashHangOrGarbage(attack: Attack) throws {
        let target = ServeUnderTest(binary: try #require(Self.binary, "conformance executable not built"))
        let o = target.run(attack)
        #expect(o.signal == nil, "\(attack.name): \(o)")
        #expect(!o.hung, "\(attack.name): \(o); stderr: \(o.stderr.suffix(600))")
        #expect(o.seconds <= attack.duration + target.grace, "\(attack.name) took \(o.seconds) s")
        let exit = try #require(o.exitStatus, "\(attack.name): \(o)")
        #expect([0, 1, 2, 3].contains(exit), "\(attack.name): \(o)")
        if !attack.expect.exit.contains(0) && !Self.unseenByTheDevice.contains(attack.name) { #expect(exit != 0, "\(attack.name): serve said conformant where the recorder may not: \(o); stderr: \(o.stderr.suffix(600))") }
        if attack.expect.exit == [2] { #expect(exit == 2, "\(attack.name): \(o); stderr: \(o.stderr.suffix(600))") }
        if attack.connects {
            let check = try #require(o.checkStatus, "\(attack.name): \(o)")
            #expect([0, 1, 3].contains(check), "\(attack.name): \(o)")
            // Live and from the file: the same rules broken or not.
            if exit != 2 { #expect((exit == 1) == (check == 1), "\(attack.name): serve exit \(exit), check of its trace \(check); stderr: \(o.stderr.suffix(600))") }
        }
    }

    /// A faulty front-end is reported by `serve --check` with the rule it broke (live, exit 1, and
    /// the same rule from the file). The bugs `mutate` knows, made by a driver on a running ring.
    static let faulty: [(attack: String, rule: String)] = [
        ("head-out-of-range", "VQ-DESC-INDEX"),
        ("avail-idx-jumps-beyond-the-queue-size", "VQ-INFLIGHT"),
        ("looping-chain-walked-from-every-slot", "VQ-CHAIN-LOOP"),
        ("nested-indirect-tables", "VQ-INDIRECT-NESTED"),
    ]

    @Test(.timeLimit(.minutes(1)), arguments: faulty.map(\.attack))
    func faultyFrontEndIsReportedByServeCheckWithTheRuleItBroke(name: String) throws {
        let target = ServeUnderTest(binary: try #require(Self.binary, "conformance executable not built"))
        let attack = try #require(AttackCatalogue.all.first { $0.name == name })
        let rule = Self.faulty.first { $0.attack == name }!.rule
        let o = target.run(attack)
        #expect(o.exitStatus == 1, "\(name): \(o); stderr: \(o.stderr.suffix(600))")
        #expect(o.stderr.contains(rule), "\(name): serve did not name \(rule) live: \(o.stderr.suffix(600))")
        #expect(o.rules.contains(rule), "\(name): check of serve's trace found \(o.rules.sorted())")
    }
}
