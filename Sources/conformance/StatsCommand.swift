import ArgumentParser
import Foundation
import TraceTools
import TraceFormat

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show how a trace's load spreads over virtqueues and workers.",
        discussion: """
        Per virtqueue: role, events, buffers made available (avail.idx advances) and used \
        (used.idx advances), kicks and interrupts per used buffer. Per worker: events, buffers used, \
        service passes and the vqs served. Plus the wall-clock span of the timestamps. Recorded \
        (sampled) traces name no workers and carry no kicks or interrupts unless relayed.

        Exit status: 0, or 2 for an unreadable or malformed trace.
        """
    )

    @Argument(help: "Binary trace file (.trace).")
    var file: String

    @Option(help: "Output format: text or json.")
    var format: StatsFormat = .text

    func run() throws {
        do {
            let s = try TraceStats.of(path: file)
            print(format == .json ? s.json() : s.text(), terminator: "")
        } catch let e as TraceError {
            FileHandleOut.stderr("\(file): \(e)\n")
            throw ExitCode(ExitStatus.usageOrInput)
        }
    }
}

enum StatsFormat: String, ExpressibleByArgument, CaseIterable { case text, json }
