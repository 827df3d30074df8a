import VirtioProtocol
import PolledSemantics
import TraceFormat

/// Renders check reports for people (text), for tools (json) and for CI dashboards (junit).
public enum ReportFormat: String, CaseIterable, Sendable {
    case text, json, junit
}

public enum Reporting {
    // MARK: text, like a compiler: file:offset: error: [RULE] message

    public static func text(_ f: Finding, path: String) -> String {
        let at = f.eventIndex.map { "event \($0), byte offset \(f.offset)" } ?? "byte offset \(f.offset)"
        var s = "\(path): \(at): error: [\(f.rule.rawValue)] \(f.message)\n"
        s += "  rule: \(f.rule.rule.statement)\n"
        s += "  spec: \(f.specRef)\n"
        if !f.context.isEmpty {
            s += "  last events on \(f.vq.map { "vq \($0)" } ?? "the device"):\n"
            for c in f.context {
                let mark = c.index == f.eventIndex ? ">" : " "
                s += "   \(mark) #\(c.index) @\(c.offset)  \(c.text)\n"
            }
        }
        return s
    }

    public static func textSummary(_ r: CheckReport, all: Bool) -> String {
        if let e = r.error { return "\(r.path): \(e)\n" }
        if r.conformant { return "\(r.path): conformant (\(r.events) events, profile \(r.profile.map(String.init(describing:)) ?? "?"))\n" + coverage(r) }
        if r.incomplete {
            return "\(r.path): INCOMPLETE: no rule broken in what was judged, but not everything was (\(r.events) events):\n"
                + r.notJudged.map { "  not judged: \($0)\n" }.joined() + coverage(r)
        }
        let rules = Set(r.findings.map(\.rule)).sorted().map(\.rawValue).joined(separator: ", ")
        let hidden = r.totalFindings - r.findings.count
        return "\(r.path): NOT conformant: \(r.totalFindings) finding(s), rules \(rules) (\(r.events) events)"
            + (hidden > 0 && !all ? "; \(hidden) more hidden, use --all\n" : "\n")
    }

    /// What the polled rings of a trace let the checker judge (nothing for exact traces).
    public static func coverage(_ r: CheckReport) -> String {
        guard let c = r.polled else { return "" }
        var s = "  polled rings: \(c.exposures) exposures seen, \(c.chainsJudged) of them read while their content was certain (split: the device owned the chain; packed: beyond the device's reach), judged for the chain rules and used length; \(c.completions) completions seen"
        if c.completionsUndecided > 0 { s += ", \(c.completionsUndecided) left unexplained when observation ended (not judged)" }
        if c.unseenExposures > 0 { s += "; \(c.unseenExposures) packed buffers made available and used between two polls, seen only as used descriptors (counted, not judged)" }
        if c.restarts > 0 { s += "; judging started again \(c.restarts) time(s) after a poll that could not be trusted" }
        if c.restartLists > 0 { s += "; \(c.restartLists) packed buffers in flight at those restarts taken with the ids read (PACKED-BUFFER-ID not judged on them)" }
        s += "\n"
        for n in r.resyncNotes { s += "  not judged: \(n)\n" }
        return s
    }

    // MARK: json

    public static func json(_ reports: [CheckReport]) -> String {
        let files = reports.map { r -> String in
            var fields = [
                "\"path\": \(q(r.path))",
                "\"status\": \(q(r.status))",
                "\"events\": \(r.events)",
                "\"profile\": \(r.profile.map { q($0.description) } ?? "null")",
                "\"total_findings\": \(r.totalFindings)",
            ]
            if let e = r.error {
                fields.append("\"error\": {\"offset\": \(e.offset), \"message\": \(q(e.message))}")
            }
            fields.append("\"not_judged\": [" + r.notJudged.map(q).joined(separator: ", ") + "]")
            if let c = r.polled {
                fields.append("\"polled\": {\"exposures\": \(c.exposures), \"chains_judged\": \(c.chainsJudged), \"completions\": \(c.completions), "
                    + "\"completions_undecided\": \(c.completionsUndecided), \"restarts\": \(c.restarts), \"unseen_exposures\": \(c.unseenExposures), \"restart_lists\": \(c.restartLists), \"restart_notes\": [" + r.resyncNotes.map(q).joined(separator: ", ") + "]}")
            }
            fields.append("\"findings\": [" + r.findings.map(json).joined(separator: ", ") + "]")
            return "{" + fields.joined(separator: ", ") + "}"
        }
        let status = CheckExit.status(reports)
        return "{\"tool\": \"conformance\", \"exit_code\": \(status), \"files\": [" + files.joined(separator: ", ") + "]}\n"
    }

    static func json(_ f: Finding) -> String {
        let ctx = f.context.map { "{\"index\": \($0.index), \"offset\": \($0.offset), \"event\": \(q($0.text))}" }.joined(separator: ", ")
        return "{\"rule\": \(q(f.rule.rawValue)), \"spec\": \(q(f.specRef)), \"statement\": \(q(f.rule.rule.statement)), "
            + "\"event_index\": \(f.eventIndex.map(String.init) ?? "null"), \"offset\": \(f.offset), "
            + "\"vq\": \(f.vq.map(String.init) ?? "null"), \"message\": \(q(f.message)), \"context\": [\(ctx)]}"
    }

    // MARK: junit: one testsuite per file, one testcase per rule

    public static func junit(_ reports: [CheckReport]) -> String {
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"conformance\">\n"
        for r in reports {
            let failedRules = Dictionary(grouping: r.findings, by: \.rule)
            let errors = r.error == nil ? 0 : 1
            let coverage = r.notJudged.isEmpty ? 0 : 1
            s += "  <testsuite name=\(x(r.path)) tests=\(x(String(RuleID.allCases.count + errors + coverage))) failures=\(x(String(failedRules.count + coverage))) errors=\(x(String(errors)))>\n"
            if let e = r.error {
                s += "    <testcase classname=\(x(r.path)) name=\"trace-format\"><error message=\(x(e.description))/></testcase>\n"
            }
            if coverage > 0 {
                // Not judged is not passed: a CI dashboard must not show a trace it never judged as green.
                s += "    <testcase classname=\(x(r.path)) name=\"coverage\"><failure message=\(x("not everything in the trace was judged"))>"
                s += esc(r.notJudged.map { "not judged: \($0)\n" }.joined()) + "</failure></testcase>\n"
            }
            for rule in RuleID.allCases {
                s += "    <testcase classname=\(x(r.path)) name=\(x(rule.rawValue))"
                if let fs = failedRules[rule] {
                    s += "><failure message=\(x(fs[0].message))>"
                    s += esc(fs.map { text($0, path: r.path) }.joined())
                    s += "</failure></testcase>\n"
                } else {
                    s += "/>\n"
                }
            }
            s += "  </testsuite>\n"
        }
        return s + "</testsuites>\n"
    }

    // MARK: escaping

    /// A JSON string literal for `s`.
    public static func q(_ s: String) -> String {
        var o = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": o += "\\\""
            case "\\": o += "\\\\"
            case "\n": o += "\\n"
            case "\t": o += "\\t"
            case "\r": o += "\\r"
            default:
                if u.value < 0x20 { o += unicodeEscape(u.value) } else { o.unicodeScalars.append(u) }
            }
        }
        return o + "\""
    }

    static func esc(_ s: String) -> String {
        var o = ""
        for c in s {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            default: o.append(c)
            }
        }
        return o
    }
    static func x(_ s: String) -> String { "\"" + esc(s) + "\"" }
    /// `s` escaped as XML text (other reports, `drive`'s JUnit, use the same escaping).
    public static func xmlText(_ s: String) -> String { esc(s) }
    /// `s` as a quoted XML attribute value.
    public static func xmlAttribute(_ s: String) -> String { x(s) }
}

/// `\uXXXX` escape for a control character.
func unicodeEscape(_ v: UInt32) -> String {
    let h = String(v, radix: 16)
    return "\\u" + String(repeating: "0", count: max(0, 4 - h.count)) + h
}
