import ArgumentParser
import Checker
import VirtioProtocol
import TraceFormat

struct Rules: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "List the rules: ID, statement, spec reference, the proof behind it, behaviour on sampled traces, the requirements each checks.",
        discussion: "--requirements prints the requirements table (Specs/requirements.md); --coverage measures how many fully observable requirements a rule covers, per section."
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json, markdown }

    @Option(help: "Output format: text, json or markdown (markdown is Specs/rules.md).")
    var format: Format = .text

    @Flag(help: "Print the requirements table (markdown: Specs/requirements.md) instead of the rules.")
    var requirements = false

    @Flag(help: "Print the requirements coverage per section: fully observable requirements covered by a rule.")
    var coverage = false

    @Option(name: .customLong("coverage-rules"), help: ArgumentHelp("With --coverage: count only these rules (comma-separated IDs), e.g. an older catalogue's.", visibility: .hidden))
    var coverageRules: String?

    func validate() throws {
        if let list = coverageRules {
            let bad = list.split(separator: ",").map(String.init).filter { RuleID(rawValue: $0) == nil }
            if !bad.isEmpty { throw ValidationError("unknown rule IDs: \(bad.joined(separator: ", "))") }
        }
    }

    func run() {
        if coverage {
            let rules = coverageRules.map { Set($0.split(separator: ",").compactMap { RuleID(rawValue: String($0)) }) } ?? Set(RuleID.allCases)
            print(RequirementTable.coverageText(rules: rules), terminator: ""); return
        }
        if requirements { print(RequirementTable.markdown(), terminator: ""); return }
        switch format {
        case .text: print(RuleTable.text(), terminator: "")
        case .json: print(RuleTable.json(), terminator: "")
        case .markdown: print(RuleTable.markdown(), terminator: "")
        }
    }
}

/// Prints the event table of Specs/trace-format.md (hidden: for maintainers regenerating the doc).
struct EventTable: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "event-table", abstract: "Print the trace format's event table (markdown).", shouldDisplay: false)
    func run() { print(FormatTable.markdown(), terminator: "") }
}
