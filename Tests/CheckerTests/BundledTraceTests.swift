import Foundation
import Testing
import Checker
import TraceFormat
import VirtioProtocol

/// Every bundled trace tells one story: good ones are conformant, each bad one breaks exactly the
/// rule it is named after.
@Suite struct BundledTraceTests {
    @Test("every good trace is conformant", arguments: TraceCorpus.files("good", suffix: ".trace.txt"))
    func goodTraceIsConformant(_ url: URL) throws {
        let findings = try TraceCorpus.checkText(url)
        #expect(findings.isEmpty, "\(url.lastPathComponent): \(findings.map { "\($0.rule.rawValue) @\($0.eventIndex.map(String.init) ?? "end"): \($0.message)" })")
    }

    @Test("every bad trace breaks exactly the rule it is named after", arguments: TraceCorpus.files("bad", suffix: ".trace.txt"))
    func badTraceBreaksItsRule(_ url: URL) throws {
        let rule = try #require(TraceCorpus.expectedRule(url), "\(url.lastPathComponent) is not named after a rule ID")
        let findings = try TraceCorpus.checkText(url)
        #expect(!findings.isEmpty, "\(url.lastPathComponent): no finding")
        #expect(Set(findings.map(\.rule)) == [rule], "\(url.lastPathComponent): \(findings.map { "\($0.rule.rawValue) @\($0.eventIndex.map(String.init) ?? "end"): \($0.message)" })")
    }

    @Test("every rule has at least one bad trace and the good corpus is not empty")
    func everyRuleHasABadTrace() {
        let covered = Set(TraceCorpus.files("bad", suffix: ".trace.txt").compactMap(TraceCorpus.expectedRule))
        let missing = RuleID.allCases.filter { !covered.contains($0) }
        #expect(missing.isEmpty, "rules without a failing trace: \(missing.map(\.rawValue))")
        #expect(TraceCorpus.files("good", suffix: ".trace.txt").count >= 10)
    }
}
