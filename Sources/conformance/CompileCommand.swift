import ArgumentParser
import Foundation
import TraceFormat

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compile",
        abstract: "Turn a text trace into a binary trace (.trace).",
        discussion: "Streams: one line in memory at a time. Errors name the line: FILE:LINE: message. Exit 2 on any error, and no output file is left."
    )

    @Argument(help: "Text trace (as printed by `dump`).")
    var file: String

    @Option(name: .shortAndLong, help: "Output binary trace.")
    var output: String

    func run() throws {
        do {
            try TextForm.compile(input: file, output: output)
        } catch let e as TraceError {
            if let line = e.line { fail("\(file):\(line): \(e.message)") }
            fail("\(file): \(e)")
        }
    }
}
