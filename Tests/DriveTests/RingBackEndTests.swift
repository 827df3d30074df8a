import Checker
import Drive
import Foundation
import HostilePeers
import Testing
import VirtioProtocol

/// `drive` against the small ring-processing back-end of the tests: conformant, every scenario
/// passes (or is refused as the spec allows); with each fault switch, the scenarios that exercise
/// what the fault breaks fail with exactly that rule or check.
@Suite(.serialized) struct RingBackEndTests {
    static func options(_ path: String, pairs: Int = 2) -> DriveOptions {
        var o = DriveOptions(socket: path)
        o.pairs = pairs
        o.progressTimeout = 2
        o.replyTimeout = 2
        o.interruptGrace = 0.5
        o.regionSize = 8 << 20
        return o
    }

    static func socket(_ tag: String) -> String {
        NSTemporaryDirectory() + "drive-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(tag).sock"
    }

    /// Runs `names` (all scenarios when nil) against a back-end with `faults`.
    static func run(_ names: [String]?, faults: Set<RingBackEnd.Fault> = [], pairs: Int = 2, configure: (RingBackEnd) -> Void = { _ in }) throws -> [ScenarioOutcome] {
        let path = socket(faults.map(\.rawValue).sorted().joined(separator: "-").isEmpty ? "ok" : faults.map(\.rawValue).sorted().joined(separator: "-"))
        let be = try RingBackEnd(path: path, faults: faults)
        configure(be)
        defer { be.stop() }
        let plan = Catalogue.all.filter { names?.contains($0.name) ?? true }.map { ($0, $0.defaultVariant) }
        return Suite.run(plan, options: options(path, pairs: pairs))
    }

    @Test func everyScenarioPassesOrIsRefusedAgainstAConformantBackEnd() throws {
        let os = try Self.run(nil)
        let text = DriveReport.text(os)
        #expect(os.count == Catalogue.all.count)
        for o in os {
            #expect([.pass, .rejected, .skipped].contains(o.verdict), "\(DriveReport.line(o))\n\(text)")
            // Only the scenarios that need what the back-end does not offer are skipped.
            if o.verdict == .skipped { #expect(["bogus-log-base", "inflight-fd-flood"].contains(o.scenario), "\(DriveReport.line(o))") }
            if o.kind == .boundary { #expect(o.verdict == .pass, "\(DriveReport.line(o))") }
        }
        #expect(Suite.exitStatus(os) == CheckExit.conformant)
    }

    /// Each fault, the scenario that catches it, and the rule or check (or verdict) it must be failed with.
    static let catches: [(RingBackEnd.Fault, String, String)] = [
        (.wrongUsedID, "traffic", RuleID.vqUsedId.rawValue),
        (.usedLenTooLong, "rx-single-buffer", RuleID.vqUsedLen.rawValue),
        (.noInterrupts, "no-interrupt", RuleID.vqInterruptMissed.rawValue),
        (.noInterrupts, "event-idx-wrap", RuleID.vqInterruptMissed.rawValue),
        (.writesReadableBuffers, "chain-of-n", DriveCheck.writes.id),
        (.ignoresKick, "ring-starts-on-kick", DriveCheck.startsOnKick.id),
        (.numBuffersUnset, "rx-single-buffer", RuleID.netRxNumBuffers.rawValue),
        (.numBuffersOneTooMany, "rx-mergeable", RuleID.netRxNumBuffers.rawValue),
        (.processesStoppedRing, "stop-and-resume", RuleID.vhostRingStopped.rawValue),
        (.bogusVringBase, "stop-and-resume", RuleID.vhostVringBaseRange.rawValue),
        (.ignoresDisabledTX, "disabled-tx-drained", RuleID.vhostUserDisabledTxDrain.rawValue),
        (.receivesOnDisabledRX, "mq-enable-disable", RuleID.netRxqInactive.rawValue),
        (.consumesPastAvail, "indirect-single", RuleID.vqUsedId.rawValue),
        (.followsAnyChain, "desc-next-out-of-range", DriveCheck.writes.id),
        (.followsAnyChain, "desc-loop", DriveCheck.writes.id),
        (.followsAnyChain, "indirect-with-next", DriveCheck.writes.id),
        (.followsAnyChain, "indirect-nested", DriveCheck.writes.id),
        (.followsAnyChain, "indirect-len-not-16", DriveCheck.writes.id),
        (.diesOnHostileInput, "desc-next-out-of-range", "CRASHED"),
        (.diesOnHostileInput, "addr-outside-memory", "CRASHED"),
        (.diesOnHostileInput, "avail-jump", "CRASHED"),
        (.diesOnHostileInput, "vring-index-out-of-range", "CRASHED"),
        (.diesOnHostileInput, "unknown-request", "CRASHED"),
        (.hangsOnHostileInput, "desc-loop", "WEDGED"),
        (.hangsOnHostileInput, "vring-index-out-of-range", "WEDGED"),
    ]

    @Test(arguments: 0..<catches.count)
    func aBrokenBackEndIsFailedWithExactlyTheRuleItBreaks(case k: Int) throws {
        let (fault, scenario, expected) = Self.catches[k]
        let os = try Self.run([scenario], faults: [fault])
        let o = try #require(os.first)
        let line = DriveReport.line(o)
        if let v = Verdict(rawValue: expected) {
            #expect(o.verdict == v, "\(fault) on \(scenario): \(line)")
        } else {
            #expect(o.verdict == .fail, "\(fault) on \(scenario): \(line)")
            #expect(Set(o.evidence.map(\.id)) == [expected], "\(fault) on \(scenario): \(line)")
        }
        #expect(Suite.exitStatus(os) == CheckExit.violation)
    }
}
