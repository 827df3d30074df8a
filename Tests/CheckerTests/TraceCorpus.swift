import Foundation
import Checker
import TraceFormat
import VirtioProtocol

/// The bundled traces under `Traces/`, located from this source file so tests run from any directory.
enum TraceCorpus {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Traces")

    static func files(_ dir: String, suffix: String) -> [URL] {
        let d = root.appendingPathComponent(dir)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: d.path)) ?? []
        return names.filter { $0.hasSuffix(suffix) }.sorted().map { d.appendingPathComponent($0) }
    }

    /// Runs the checker over a parsed text trace and returns every finding.
    static func check(header: TraceHeader, events: [TraceEvent], profile: Profile? = nil) -> [Finding] {
        judge(header: header, events: events, profile: profile).findings
    }

    /// Every finding, and what the trace did not let the checker judge.
    static func judge(header: TraceHeader, events: [TraceEvent], profile: Profile? = nil) -> (findings: [Finding], notJudged: [String]) {
        var c = Checker(header: header, profile: profile)
        var out: [Finding] = []
        var offset = UInt64(header.encodedSize)
        for (i, e) in events.enumerated() {
            out += c.process(e, index: UInt64(i), offset: offset)
            offset += UInt64(TraceEvent.size)
        }
        out += c.finish()
        return (out, c.notJudged)
    }

    static func checkText(_ url: URL) throws -> [Finding] { try judgeText(url).findings }

    static func judgeText(_ url: URL) throws -> (findings: [Finding], notJudged: [String]) {
        let (h, ev) = try TextForm.parse(String(contentsOf: url, encoding: .utf8))
        return judge(header: h, events: ev)
    }

    /// Rule a bad trace is named after: `<RULE-ID>.trace` or `<RULE-ID>--<case>.trace`.
    static func expectedRule(_ url: URL) -> RuleID? {
        let base = url.lastPathComponent.components(separatedBy: ".")[0]
        return RuleID(rawValue: base.components(separatedBy: "--")[0])
    }
}
