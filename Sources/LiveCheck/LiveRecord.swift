import Checker
import Recorder
import TraceFormat

/// A capture, optionally checked while it is recorded, and its exit status.
public struct LiveResult: Sendable {
    public var record: RecordResult
    public var checked: Bool
    public var findings: [Finding] = []
    public var totalFindings = 0
    public var notJudged: [String] = []
    public var checkerFailure: String?

    /// `CheckExit` codes: 2 when no valid trace was written, the capture could not be set up, a
    /// session failed (a peer broke the framing or stalled) or the checker refused the trace; 1 when
    /// a rule was broken; 3 when a ring was not followed or had a gap (or a message could not be
    /// recorded) and nothing else is wrong; 0 only for a valid trace with every ring followed and,
    /// when checked, conformant.
    public var exitStatus: Int32 {
        let r = record
        if r.traceFailure != nil || checkerFailure != nil { return CheckExit.usageOrInput }
        if case .setupFailed = r.end { return CheckExit.usageOrInput }
        if totalFindings > 0 { return CheckExit.violation }
        if case .failed = r.end { return CheckExit.usageOrInput }
        if !r.sessionFailures.isEmpty { return CheckExit.usageOrInput }
        if r.incomplete || !notJudged.isEmpty { return CheckExit.incomplete }
        return CheckExit.conformant
    }
}

public enum LiveRecord {
    /// Records into `options.outputPath`; with `check`, every written event is judged as well.
    public static func run(_ options: RecordOptions, check: Bool = false, stopOnViolation: Bool = false,
                           log: @escaping (String) -> Void, onFinding: @escaping (Finding) -> Void = { _ in }) -> LiveResult {
        let file = TraceFileSink(path: options.outputPath)
        guard check else {
            return LiveResult(record: Recorder(options: options, sink: file, log: log).run(), checked: false)
        }
        let sink = CheckingSink(writingTo: file, stopOnViolation: stopOnViolation, onFinding: onFinding)
        let r = Recorder(options: options, sink: sink, log: log).run()
        return LiveResult(record: r, checked: true, findings: sink.findings, totalFindings: sink.totalFindings,
                          notJudged: sink.notJudged, checkerFailure: sink.fatal)
    }
}
