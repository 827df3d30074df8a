import ArgumentParser
import Checker
import Drive
import Foundation

struct DriveCmd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drive",
        abstract: "Drive a vhost-user back-end through the scenario catalogue and judge what it does.",
        discussion: """
        A vhost-user front-end: it creates guest memory (sealed memfds), negotiates, sets up queue \
        pairs and runs scenarios (valid boundaries and hostile inputs). Each run writes an exact trace \
        (the driver's actions as done, the device's as the driver read them) that the model judges: \
        the back-end against the device rules, plus what the scenario itself checks. Verdicts: PASS, \
        FAIL (rule, spec reference, event), REJECTED (the back-end refused input the spec lets it \
        refuse), WEDGED (no progress within the bound), CRASHED (connection gone, not served again), \
        SKIPPED (a feature is not offered), ERROR (drive itself failed).

        Without --scenario every scenario runs once, with the features of its matrix on where \
        offered; --all runs every on/off combination of each scenario's matrix.

        Exit status: 0 every run passed (PASS or REJECTED; SKIPPED runs aside), 1 a run FAILED, \
        WEDGED or CRASHED, 2 usage error or drive's own failure (ERROR), 3 nothing was judged \
        (every run SKIPPED).
        """
    )

    @Option(help: "The back-end's vhost-user socket (drive connects to it).")
    var connect: String?

    @Option(help: "Run only this scenario (see --list).")
    var scenario: String?

    @Flag(help: "Every scenario in every variant of its feature matrix.")
    var all = false

    @Option(help: "Queue pairs the multi-queue scenarios use (at most what GET_QUEUE_NUM reports).")
    var pairs = 1

    @Option(help: "Output format: text, json or junit.")
    var format: ReportFormatOption = .text

    @Option(name: .shortAndLong, help: "Directory for the traces (one per run) and report.json / report.junit.xml.")
    var output: String?

    @Option(help: "Seconds the back-end has to use buffers it must use (else WEDGED).")
    var progressTimeout = 5.0

    @Option(help: "Seconds a reply may take.")
    var replyTimeout = 5.0

    @Flag(help: "List the scenarios and exit.")
    var list = false

    @Flag(help: "Print Specs/scenarios.md (generated from the catalogue) and exit.")
    var catalogue = false

    func run() throws {
        if catalogue { print(ScenarioDocs.markdown(), terminator: ""); return }
        if list {
            for s in Catalogue.all { print("\(s.name.padding(toLength: 24, withPad: " ", startingAt: 0))  \(s.kind.rawValue)") }
            return
        }
        guard let connect else { throw ValidationError("--connect SOCKET is required (or --list / --catalogue)") }
        guard pairs >= 1 && pairs <= 128 else { throw ValidationError("--pairs must be between 1 and 128") }
        if scenario != nil && all { throw ValidationError("--scenario and --all exclude each other") }
        var o = DriveOptions(socket: connect)
        o.pairs = pairs
        o.progressTimeout = progressTimeout
        o.replyTimeout = replyTimeout
        if let output {
            do { try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true) } catch {
                FileHandleOut.stderr("drive: cannot create \(output): \(error)\n")
                throw ExitCode(ExitStatus.usageOrInput)
            }
            o.outputDir = output
        }
        let plan: [(Scenario, Variant)]
        do { plan = try Suite.plan(scenario: scenario, matrix: all) } catch {
            FileHandleOut.stderr("drive: \(error)\n")
            throw ExitCode(ExitStatus.usageOrInput)
        }
        if let why = Suite.reachable(o) {
            FileHandleOut.stderr("drive: \(why)\n")
            throw ExitCode(ExitStatus.usageOrInput)
        }
        let fmt = format
        let outcomes = Suite.run(plan, options: o) { out in
            if fmt == .text { FileHandle.standardOutput.write(Data(DriveReport.line(out).utf8)) }
            else { FileHandleOut.stderr(DriveReport.line(out)) }
        }
        switch fmt {
        case .text: print(DriveReport.summary(outcomes), terminator: "")
        case .json: print(DriveReport.json(outcomes), terminator: "")
        case .junit: print(DriveReport.junit(outcomes), terminator: "")
        }
        if let output {
            try? DriveReport.json(outcomes).write(toFile: output + "/report.json", atomically: true, encoding: .utf8)
            try? DriveReport.junit(outcomes).write(toFile: output + "/report.junit.xml", atomically: true, encoding: .utf8)
        }
        throw ExitCode(Suite.exitStatus(outcomes))
    }
}
