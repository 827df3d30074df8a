import ArgumentParser
import Foundation
import TraceFormat
import TraceTools

struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print a binary trace in its text form (the input of `compile`; the two round-trip byte for byte)."
    )

    @Argument(help: "Binary trace file (.trace).")
    var file: String

    func run() throws {
        let reader: TraceReader
        do { reader = try TraceReader(path: file) } catch let e as TraceError { fail("\(file): \(e)") }
        do {
            try TraceDump.run(reader) { print($0, terminator: "") }
        } catch let e as TraceError {
            fail("\(file): \(e)")
        }
    }
}

/// Prints to stderr and exits with the input-error status.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    Foundation.exit(ExitStatus.usageOrInput)
}
