import ArgumentParser
import Foundation
import TraceTools
import TraceFormat

struct Mutate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mutate",
        abstract: "Plant a named bug class in a trace (to show the checker catches it).",
        discussion: """
        The fault is applied once, at the first place in the trace that suits it (after traffic \
        started, for data-plane faults); the change is described on stderr. \
        `conformance mutate --list-faults` prints the class names, one a line; add --verbose for \
        each class's description and the rule `check` must report.

        Exit status: 0 written, 2 usage error, unreadable trace, or no place for that fault in it.
        """
    )

    @Argument(help: "Binary trace to mutate.")
    var file: String?

    @Option(help: "Bug class to plant (see --list-faults).")
    var fault: String?

    @Option(name: [.short, .customLong("output")], help: "Where to write the mutated trace.")
    var output: String?

    @Flag(name: .customLong("list-faults"), help: "Print the fault class names, one a line.")
    var listFaults = false

    @Flag(help: "With --list-faults: also print the expected rule and a description.")
    var verbose = false

    func validate() throws {
        if listFaults { return }
        guard file != nil else { throw ValidationError("give a trace: conformance mutate trace.trace --fault CLASS -o bad.trace") }
        guard let fault else { throw ValidationError("give --fault CLASS (conformance mutate --list-faults lists them)") }
        guard BugClass(rawValue: fault) != nil else {
            throw ValidationError("unknown fault '\(fault)'; one of: \(BugClass.allCases.map(\.name).joined(separator: ", "))")
        }
        guard output != nil else { throw ValidationError("give -o bad.trace") }
    }

    func run() throws {
        if listFaults {
            for f in BugClass.allCases {
                var rule = f.expectedRule(inOrder: false) == f.expectedRule(inOrder: true) ? f.expectedRule().rawValue
                    : "\(f.expectedRule(inOrder: false).rawValue) (with IN_ORDER: \(f.expectedRule(inOrder: true).rawValue))"
                if !f.packed && f.expectedRule(packed: true) != f.expectedRule() { rule += " (packed rings: \(f.expectedRule(packed: true).rawValue))" }
                print(verbose ? "\(f.name)\t\(rule)\t\(f.summary)" + (Mutator.needs(f).map { " (needs \($0))" } ?? "") : f.name)
            }
            return
        }
        do {
            let change = try Mutator.apply(BugClass(rawValue: fault!)!, input: file!, output: output!)
            FileHandleOut.stderr("mutate: \(change)\n")
        } catch {
            FileHandleOut.stderr("mutate: \(error)\n")
            throw ExitCode(ExitStatus.usageOrInput)
        }
    }
}
