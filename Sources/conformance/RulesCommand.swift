import ArgumentParser
import Checker
import TraceFormat

struct Rules: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "List the rules: ID, statement, spec reference, the proof behind it, behaviour on sampled traces."
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json, markdown }

    @Option(help: "Output format: text, json or markdown (markdown is Specs/rules.md).")
    var format: Format = .text

    func run() {
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
