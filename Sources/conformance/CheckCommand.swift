import ArgumentParser
import Checker
import VirtioProtocol
import Foundation
import Recorder

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Replay traces through the reference model and report every broken rule.",
        discussion: """
        Each finding names the rule ID, its spec reference, the event index and byte offset where \
        it happened, a plain explanation, and the last events on that virtqueue. By default the first \
        finding of each rule is shown; --all shows every one.

        Exit status: 0 every trace conformant, 1 at least one rule broken, 2 usage error or an \
        unreadable or malformed trace (the message names the byte offset), 3 no rule broken but \
        something was not judged (a ring the recorder lost or did not follow, a ring format the model \
        does not cover): a gate must not pass on a trace that was not judged.
        """
    )

    @Argument(help: "Binary trace files (.trace) to check.")
    var files: [String] = []

    @Option(help: "Output format: text, json or junit.")
    var format: ReportFormatOption = .text

    @Flag(help: "Report every finding, not only the first of each rule.")
    var all = false

    @Option(help: "Cores to use (default: every core). Files are checked side by side; with fewer files than cores a trace is split by vq where the rules allow (the same report). 1: one file after another, each in one piece.")
    var jobs: Int?

    @Option(help: "Check against this profile instead of the one in the trace header.")
    var profile: ProfileOption?

    @Option(help: "Check a live vhost-user pair instead of files: the socket to create for the front-end (with --connect). Same as `record --check`.")
    var live: String?

    @Option(help: "With --live: the back-end's socket (already listening).")
    var connect: String?

    @Option(name: .shortAndLong, help: "With --live: where to keep the recorded trace (default: a temporary file).")
    var output: String?

    @Option(help: "With --live: stop after this many seconds.")
    var duration: Double?

    @Flag(name: .customLong("stop-on-violation"), help: "With --live: end at the first finding.")
    var stopOnViolation = false

    func validate() throws {
        if live != nil || connect != nil {
            guard live != nil, connect != nil else { throw ValidationError("--live and --connect go together: conformance check --live A.sock --connect B.sock") }
            guard files.isEmpty else { throw ValidationError("give either trace files or --live, not both") }
            return
        }
        if files.isEmpty { throw ValidationError("give at least one trace file, e.g. conformance check Traces/good/*.trace") }
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
    }

    func run() throws {
        if let live, let connect {
            var o = RecordOptions(listenPath: live, connectPath: connect,
                                  outputPath: output ?? NSTemporaryDirectory() + "conformance-live-\(getpid()).trace")
            o.duration = duration
            throw ExitCode(Record.runLive(o, check: true, stopOnViolation: stopOnViolation))
        }
        let reports = format == .text && all ? checkStreaming() : checkInParallel()
        switch format {
        case .json: print(Reporting.json(reports), terminator: "")
        case .junit: print(Reporting.junit(reports), terminator: "")
        case .text: break
        }
        let status = CheckExit.status(reports)
        if status != CheckExit.conformant { throw ExitCode(status) }
    }
}

extension Check {
    /// `--all` in text form: one file after another, each finding printed as it is found, so that
    /// memory stays flat however many findings a trace has.
    func checkStreaming() -> [CheckReport] {
        files.map { path in
            let r = CheckRun.check(path: path, profile: profile?.value, all: true, retainAll: false) { f in
                print(Reporting.text(f, path: path), terminator: "")
            }
            printSummary(r)
            return r
        }
    }

    /// Every file on a core of its own (as many at once as `--jobs`), each report printed
    /// in argument order as soon as the ones before it are: the same output and exit status as one
    /// file after another. A file's findings (the first of each rule) are kept until it is printed.
    func checkInParallel() -> [CheckReport] {
        let results = Results(count: files.count)
        let files = files, profile = profile?.value, all = all, text = format == .text
        let cores = jobs ?? ProcessInfo.processInfo.activeProcessorCount
        // Cores the files leave idle go to splitting each trace.
        let perFile = max(1, cores / files.count)
        let slots = DispatchSemaphore(value: cores)
        DispatchQueue.global().async {
            DispatchQueue.concurrentPerform(iterations: files.count) { i in
                slots.wait()
                defer { slots.signal() }
                var out = ""
                let r = CheckRun.check(path: files[i], profile: profile, all: all, retainAll: all, jobs: perFile) { f in
                    if text { out += Reporting.text(f, path: files[i]) }
                }
                results.put(i, r, out)
            }
        }
        return (0..<files.count).map { i in
            let (r, out) = results.take(i)
            if format == .text {
                print(out, terminator: "")
                printSummary(r)
            }
            return r
        }
    }

    func printSummary(_ r: CheckReport) {
        let line = Reporting.textSummary(r, all: all)
        if r.error != nil { FileHandleOut.stderr(line) } else { print(line, terminator: "") }
    }
}

/// The reports of `check FILE...` as the workers finish them, handed out in order.
private final class Results: @unchecked Sendable {
    private let lock = NSCondition()
    private var slots: [(CheckReport, String)?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func put(_ i: Int, _ r: CheckReport, _ text: String) {
        lock.lock(); slots[i] = (r, text); lock.broadcast(); lock.unlock()
    }
    /// Waits for report `i`, and lets go of its text.
    func take(_ i: Int) -> (CheckReport, String) {
        lock.lock(); defer { lock.unlock() }
        while slots[i] == nil { lock.wait() }
        let v = slots[i]!
        slots[i] = nil
        return v
    }
}

enum ReportFormatOption: String, ExpressibleByArgument, CaseIterable {
    case text, json, junit
}

struct ProfileOption: ExpressibleByArgument {
    let value: Profile
    init?(argument: String) {
        guard let p = Profile(name: argument) else { return nil }
        value = p
    }
    static var allValueStrings: [String] { Profile.allCases.map(\.description) }
}

enum FileHandleOut {
    static func stderr(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }
}
