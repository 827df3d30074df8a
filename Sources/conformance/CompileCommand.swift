import ArgumentParser
import Foundation
import TraceFormat

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compile",
        abstract: "Turn a text trace into a binary trace (.trace).",
        discussion: "Errors name the line: FILE:LINE: message. Exit 2 on any error."
    )

    @Argument(help: "Text trace (as printed by `dump`).")
    var file: String

    @Option(name: .shortAndLong, help: "Output binary trace.")
    var output: String

    func run() throws {
        let text: String
        do { text = try String(contentsOfFile: file, encoding: .utf8) } catch { fail("\(file): cannot read: \(error.localizedDescription)") }
        do {
            let (h, events) = try TextForm.parse(text)
            let w = try TraceWriter(path: output, header: h)
            for e in events { w.write(e) }
            w.close()
        } catch let e as TraceError {
            if let line = e.line { fail("\(file):\(line): \(e.message)") }
            fail("\(output): \(e)")
        }
    }
}
