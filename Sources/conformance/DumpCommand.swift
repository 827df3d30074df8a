import ArgumentParser
import Foundation
import TraceFormat

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
        var out = TextForm.render(header: reader.header)
        do {
            while let (e, _) = try reader.next() {
                out += TextForm.render(event: e)
                out += "\n"
                if out.utf8.count > 1 << 16 { print(out, terminator: ""); out = "" }
            }
        } catch let e as TraceError {
            print(out, terminator: "")
            fail("\(file): \(e)")
        }
        print(out, terminator: "")
    }
}

/// Prints to stderr and exits with the input-error status.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    Foundation.exit(ExitStatus.usageOrInput)
}
