import VirtioProtocol
import PolledSemantics
import TraceFormat

/// Checks one trace file end to end, streaming.
public struct CheckReport: Sendable {
    public let path: String
    public let profile: Profile?
    public var events: UInt64 = 0
    /// Findings kept (first per rule, or all).
    public var findings: [Finding] = []
    /// Total findings, including those not kept.
    public var totalFindings: Int = 0
    /// Set when the file could not be read or is malformed.
    public var error: TraceError?
    /// What could not be judged (rings the recorder lost, formats not modelled).
    public var notJudged: [String] = []
    /// For traces with polled rings: how much of what the recorder saw could be judged.
    public var polled: PolledCoverage?
    /// Polls whose entries were not judged, judging starting again after them (first few).
    public var resyncNotes: [String] = []

    /// No finding, and everything in the trace was judged.
    public var conformant: Bool { error == nil && totalFindings == 0 && notJudged.isEmpty }
    /// No finding, but part of the trace was not judged: never a pass.
    public var incomplete: Bool { error == nil && totalFindings == 0 && !notJudged.isEmpty }

    /// The verdict as one word, as JSON and JUnit report it.
    public var status: String {
        if error != nil { return "error" }
        if totalFindings > 0 { return "violation" }
        return notJudged.isEmpty ? "conformant" : "incomplete"
    }
}

/// The exit statuses `check` (and every command that judges traces) uses; stable, for CI gates.
public enum CheckExit {
    public static let conformant: Int32 = 0
    public static let violation: Int32 = 1
    public static let usageOrInput: Int32 = 2
    /// No rule broken, but something was not judged (a ring not followed or lost, a format not modelled).
    public static let incomplete: Int32 = 3

    /// The status for a set of reports: an unreadable trace outranks a violation, which outranks an
    /// incomplete judgement.
    public static func status(_ reports: [CheckReport]) -> Int32 {
        if reports.contains(where: { $0.error != nil }) { return usageOrInput }
        if reports.contains(where: { $0.totalFindings > 0 }) { return violation }
        if reports.contains(where: \.incomplete) { return incomplete }
        return conformant
    }
}

public enum CheckRun {
    /// - Parameters:
    ///   - all: report every finding (default: the first per rule).
    ///   - retainAll: with `all`, also keep every finding in the report (json and junit need them;
    ///     text output streams them through `onFinding`, so memory stays flat). Default: `all`.
    ///   - onFinding: called for each reported finding as it is found (for streaming output).
    public static func check(path: String, profile: Profile? = nil, all: Bool = false, retainAll: Bool? = nil,
                             onFinding: (Finding) -> Void = { _ in }) -> CheckReport {
        let reader: TraceReader
        do { reader = try TraceReader(path: path) } catch let e as TraceError {
            var r = CheckReport(path: path, profile: profile); r.error = e; return r
        } catch {
            var r = CheckReport(path: path, profile: profile); r.error = TraceError(offset: 0, "\(error)"); return r
        }
        return check(reader: reader, path: path, profile: profile, all: all, retainAll: retainAll, onFinding: onFinding)
    }

    /// `check(path:)` on up to `jobs` cores: the trace split by vq where the rules allow
    /// (`SplitRun`), the same report either way.
    public static func check(path: String, profile: Profile? = nil, all: Bool = false, retainAll: Bool? = nil, jobs: Int,
                             onFinding: (Finding) -> Void = { _ in }) -> CheckReport {
        SplitRun.check(open: { try TraceReader(path: path) }, path: path, profile: profile, all: all, retainAll: retainAll,
                       jobs: jobs, onFinding: onFinding)
    }

    /// Checks what `reader` reads; `path` only names it in the report.
    public static func check(reader: TraceReader, path: String, profile: Profile? = nil, all: Bool = false, retainAll: Bool? = nil,
                             onFinding: (Finding) -> Void = { _ in }) -> CheckReport {
        let retain = retainAll ?? all
        var report = CheckReport(path: path, profile: profile ?? reader.header.profile)
        if let p = profile, !p.allows(reader.header.layout) {
            report.error = TraceError(offset: 13, "--profile \(p) does not fit the trace's layout \(reader.header.layout) (its queues come in RX/TX pairs)")
            return report
        }
        var checker = Checker(header: reader.header, profile: profile)
        var seenRules = Set<RuleID>()
        // Whether the rule's further findings are only to be counted.
        func keep(_ f: Finding) -> Bool {
            report.totalFindings += 1
            let first = seenRules.insert(f.rule).inserted
            guard all || first else { return false }
            if first || retain { report.findings.append(f) }
            onFinding(f)
            return !all
        }
        func keep(_ fs: [Finding]) {
            for f in fs where keep(f) { checker.suppressed.insert(f.rule) }
        }
        do {
            if let (f, off) = try checker.run(reader, found: keep) { throw TraceError(offset: off, f) }
            keep(checker.finish())
        } catch let e as TraceError {
            report.error = e
        } catch {
            report.error = TraceError(offset: reader.offset, "\(error)")
        }
        report.events = reader.index
        report.totalFindings += checker.suppressedCount
        report.notJudged = checker.notJudged
        report.resyncNotes = checker.resyncNotes
        let c = checker.polledCoverage
        if c.exposures + c.completions > 0 { report.polled = c }
        return report
    }
}

extension Checker {
    /// Feeds every event `reader` reads, in order. `found` is told each finding as it is made and
    /// answers whether the rule's further findings are only to be counted (`suppressed`). Returns
    /// the fatal message and the offset of the event it stopped at, if the run stopped at one.
    /// The loop lives here, in a method of the checker, so that the checker is not a variable
    /// captured by a closure: that made every event pay dynamic exclusivity checks.
    public mutating func run(_ reader: TraceReader, found: (Finding) -> Bool) throws -> (String, UInt64)? {
        try run(reader) { f, _ in found(f) }
    }

    /// `run`, telling with each finding where it falls in the serial run's order when this checker
    /// judges a `share` of a split run (nil otherwise).
    mutating func run(_ reader: TraceReader, ordered found: (Finding, OrderKey?) -> Bool) throws -> (String, UInt64)? {
        var stop: (String, UInt64)?
        var fs: [Finding] = []
        try reader.forEach { e, index, off in
            process(e, index: index, offset: off, into: &fs)
            if !fs.isEmpty {
                let keyed = share != nil
                for (n, f) in fs.enumerated() where found(f, keyed ? orderKeys[n] : nil) { suppressed.insert(f.rule) }
                fs.removeAll(keepingCapacity: true)
                orderKeys.removeAll(keepingCapacity: true)
            }
            if let f = fatal { stop = (f, off); return false }
            return true
        }
        return stop
    }
}
