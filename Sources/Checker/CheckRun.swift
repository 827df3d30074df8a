import VirtioProtocol
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

    public var conformant: Bool { error == nil && totalFindings == 0 }
}

public enum CheckRun {
    /// - Parameters:
    ///   - all: keep every finding (default: the first per rule).
    ///   - onFinding: called for each kept finding as it is found (for streaming output).
    public static func check(path: String, profile: Profile? = nil, all: Bool = false,
                             onFinding: (Finding) -> Void = { _ in }) -> CheckReport {
        let reader: TraceReader
        do { reader = try TraceReader(path: path) } catch let e as TraceError {
            var r = CheckReport(path: path, profile: profile); r.error = e; return r
        } catch {
            var r = CheckReport(path: path, profile: profile); r.error = TraceError(offset: 0, "\(error)"); return r
        }
        var report = CheckReport(path: path, profile: profile ?? reader.header.profile)
        var checker = Checker(header: reader.header, profile: profile)
        var seenRules = Set<RuleID>()
        func keep(_ fs: [Finding]) {
            for f in fs {
                report.totalFindings += 1
                if all || seenRules.insert(f.rule).inserted {
                    report.findings.append(f)
                    onFinding(f)
                    if !all { checker.suppressed.insert(f.rule) }
                }
            }
        }
        do {
            while let (e, off) = try reader.next() {
                let fs = checker.process(e, index: reader.index - 1, offset: off)
                if !fs.isEmpty { keep(fs) }
                if let f = checker.fatal { throw TraceError(offset: off, f) }
            }
            keep(checker.finish())
        } catch let e as TraceError {
            report.error = e
        } catch {
            report.error = TraceError(offset: reader.offset, "\(error)")
        }
        report.events = reader.index
        report.totalFindings += checker.suppressedCount
        return report
    }
}
