import Foundation
import Testing
import Checker
import VirtioProtocol

/// The requirements table is one definition (`Requirements.swift`), rendered as `Specs/requirements.md`,
/// and it keeps the promises the issue asked for: every rule checks a named requirement, every fully
/// observable requirement is covered or says why not, packed rows are never counted as covered.
@Suite struct RequirementsTests {
    static let specs = TraceCorpus.root.deletingLastPathComponent().appendingPathComponent("Specs")

    @Test("Specs/requirements.md is the requirements table, rendered")
    func requirementsMarkdownIsGenerated() throws {
        let md = try String(contentsOf: Self.specs.appendingPathComponent("requirements.md"), encoding: .utf8)
        #expect(md == RequirementTable.markdown(), "regenerate with: conformance rules --requirements > Specs/requirements.md")
    }

    @Test("requirement IDs are unique and grouped by prefix")
    func idsAreUnique() {
        let ids = Requirement.all.map(\.id)
        #expect(Set(ids).count == ids.count, "duplicate IDs: \(Dictionary(grouping: ids, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted())")
        let prefix: [RequirementGroup: String] = [.split: "SPLIT-", .packed: "PACKED-", .features: "FEAT-", .net: "NET-",
                                                  .vhostUser: "VU-", .kernel: "KV-", .seed: "SEED-"]
        for r in Requirement.all { #expect(r.id.hasPrefix(prefix[r.group]!), "\(r.id) is in \(r.group.rawValue)") }
    }

    @Test("every rule names the requirements it checks")
    func everyRuleChecksARequirement() {
        let orphans = RuleID.allCases.filter { RequirementTable.ids(for: $0).isEmpty }
        #expect(orphans.isEmpty, "rules without a requirement: \(orphans.map(\.rawValue))")
    }

    @Test("every fully observable requirement is covered by a rule or says why not")
    func fullyObservableRowsAreCoveredOrReasoned() {
        let total = RequirementTable.coverage().last!
        #expect(total.unexplained.isEmpty, "without rule or reason: \(total.unexplained)")
        for r in Requirement.all where r.observable != .yes {
            #expect(r.observable.why?.isEmpty == false, "\(r.id) is \(r.observable.word) without saying why")
        }
        for r in Requirement.all where r.unruled != nil {
            #expect(r.rules.isEmpty, "\(r.id) has rules and a reason for having none")
        }
    }

    @Test("packed rows are observable but never counted as covered")
    func packedRowsArePending() {
        let packed = Requirement.all.filter { $0.group == .packed && $0.observable == .yes }
        #expect(!packed.isEmpty)
        #expect(packed.allSatisfy { $0.packedPending && !$0.covered })
        let c = RequirementTable.coverage().first { $0.group == .packed }!
        #expect(c.covered == 0 && c.packedPending == c.observable)
    }

    @Test("coverage counts only the rules it is given")
    func coverageDependsOnTheRules() {
        let all = RequirementTable.coverage().last!
        let none = RequirementTable.coverage(rules: []).last!
        #expect(none.covered == 0)
        #expect(all.covered > none.covered)
        #expect(all.covered + all.reasoned == all.observable)
    }

    @Test("conformance rules lists each rule's requirements")
    func rulesTextShowsRequirements() {
        let text = RuleTable.text()
        for rule in RuleID.allCases {
            let block = text.components(separatedBy: "\n\n").first { $0.hasPrefix(rule.rawValue + "\n") }
            #expect(block?.contains("requirements: " + RequirementTable.ids(for: rule).joined(separator: ", ")) == true, "\(rule.rawValue)")
        }
    }

    @Test("the README states the coverage the table measures")
    func readmeStatesCoverage() throws {
        let readme = try String(contentsOf: Self.specs.deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
        let t = RequirementTable.coverage().last!
        let p = RequirementTable.coverage().first { $0.group == .packed }!
        #expect(readme.contains("\(t.covered) of \(t.observable) fully observable requirements"), "README must state: \(t.covered) of \(t.observable) fully observable requirements")
        #expect(readme.contains("packed \(p.covered) of \(p.observable)"), "README must state: packed \(p.covered) of \(p.observable)")
    }
}
