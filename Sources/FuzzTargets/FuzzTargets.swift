import Foundation
import VirtioProtocol
import TraceFormat
import Checker
import TraceTools

/// What the fuzzer drives: every path from bytes to a verdict, each with the properties that must
/// hold for any input. A broken property traps (`violated`), so libFuzzer saves the input, and a
/// regression replay of it (`conformance-fuzz TARGET FILE`) exits on a signal.
/// A clean error for a malformed input is not a failure: only traps, hangs, leaks and broken
/// properties are.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// The binary reader, streaming (`TraceReader`) and whole (`TraceBytes.decode`): same events, same error.
    case reader
    /// The checker under the header's profile and under every `--profile` override.
    case check
    /// Check with every finding kept, rendered as text, json (parsed back) and junit (parsed as XML).
    case report
    /// Text form: parse, encode, decode, render, parse again: the same trace each time.
    case text
    /// Binary form: decode, render, parse, encode: the same bytes.
    case roundtrip
    /// `conformance dump`.
    case dump
    /// `conformance stats`, text and json (parsed back).
    case stats
    /// `conformance mutate`, every bug class: the mutated trace decodes and is checked.
    case mutate

    /// Whether the inputs are text traces (seeded from `.trace.txt`) rather than binary ones.
    public var takesText: Bool { self == .text }

    public func run(_ bytes: [UInt8]) {
        switch self {
        case .reader: FuzzChecks.reader(bytes)
        case .check: FuzzChecks.check(bytes)
        case .report: FuzzChecks.report(bytes)
        case .text: FuzzChecks.text(bytes)
        case .roundtrip: FuzzChecks.roundtrip(bytes)
        case .dump: FuzzChecks.dump(bytes)
        case .stats: FuzzChecks.stats(bytes)
        case .mutate: FuzzChecks.mutate(bytes)
        }
    }
}

/// A property every input must have did not hold.
func violated(_ what: String) -> Never {
    fatalError("fuzz property violated: \(what)")
}

enum FuzzChecks {
    static let path = "fuzz-input.trace"

    /// Every event and the error (if any) as the streaming reader sees them.
    static func stream(_ bytes: [UInt8]) -> (header: TraceHeader?, events: [(TraceEvent, UInt64)], error: TraceError?) {
        let r: TraceReader
        do { r = try TraceReader(bytes: bytes) } catch let e as TraceError { return (nil, [], e) } catch { violated("reader threw a non-TraceError: \(error)") }
        var events: [(TraceEvent, UInt64)] = []
        do {
            while let (e, off) = try r.next() { events.append((e, off)) }
        } catch let e as TraceError {
            return (r.header, events, e)
        } catch { violated("reader threw a non-TraceError: \(error)") }
        return (r.header, events, nil)
    }

    static func reader(_ bytes: [UInt8]) {
        let s = stream(bytes)
        let whole: (TraceHeader?, [(TraceEvent, UInt64)], TraceError?)
        do {
            let (h, ev) = try TraceBytes.decode(bytes)
            whole = (h, ev.map { ($0.event, $0.offset) }, nil)
        } catch let e as TraceError {
            whole = (nil, [], e)
        } catch { violated("TraceBytes.decode threw a non-TraceError: \(error)") }
        // The whole-trace decoder stops at the first error without returning the events before it.
        if let e = s.error {
            guard let w = whole.2 else { violated("reader refused (\(e)) what TraceBytes.decode accepted") }
            guard w == e else { violated("reader and TraceBytes.decode disagree: \(e) vs \(w)") }
        } else {
            guard whole.2 == nil else { violated("TraceBytes.decode refused (\(whole.2!)) what the reader accepted") }
            guard whole.0 == s.header else { violated("headers differ") }
            guard whole.1.count == s.events.count, zip(whole.1, s.events).allSatisfy({ $0.0 == $1.0 && $0.1 == $1.1 }) else {
                violated("events differ")
            }
        }
        if let h = s.header {
            for (i, (_, off)) in s.events.enumerated() where off != UInt64(h.encodedSize + i * TraceEvent.size) {
                violated("event \(i) at offset \(off)")
            }
        }
    }

    /// Properties of any report, whatever the input.
    static func judge(_ r: CheckReport, eventsRead: Int, header: TraceHeader?, all: Bool) {
        let status = CheckExit.status([r])
        guard (0...3).contains(status) else { violated("exit status \(status)") }
        guard (status == CheckExit.conformant) == r.conformant else { violated("status \(status) but conformant=\(r.conformant)") }
        if status == CheckExit.conformant && (!r.notJudged.isEmpty || r.totalFindings != 0) { violated("exit 0 with something not judged or found") }
        guard r.findings.count <= r.totalFindings else { violated("\(r.findings.count) findings kept of \(r.totalFindings)") }
        if !all && Set(r.findings.map(\.rule)).count != r.findings.count { violated("more than one finding kept for a rule without --all") }
        guard r.notJudged.count <= Checker.notJudgedListed + 1 else { violated("\(r.notJudged.count) not-judged notes") }
        if let h = header {
            let end = UInt64(h.encodedSize + eventsRead * TraceEvent.size)
            for f in r.findings {
                if let i = f.eventIndex {
                    guard i < UInt64(eventsRead), f.offset == UInt64(h.encodedSize) + i * UInt64(TraceEvent.size) else {
                        violated("finding at event \(i), offset \(f.offset), of \(eventsRead) events")
                    }
                } else if f.offset > end {
                    violated("end-of-trace finding at offset \(f.offset) past the end \(end)")
                }
                guard f.context.count <= Checker.contextDepth else { violated("context of \(f.context.count) events") }
            }
        }
    }

    static func check(_ bytes: [UInt8]) {
        let s = stream(bytes)
        for profile in [nil] + Profile.allCases.map(Optional.some) {
            guard let r = try? TraceReader(bytes: bytes) else { return }
            let report = CheckRun.check(reader: r, path: path, profile: profile)
            if let e = s.error, report.error == nil { violated("checker accepted a trace the reader refuses: \(e)") }
            judge(report, eventsRead: Int(report.events), header: s.header, all: false)
        }
    }

    static func report(_ bytes: [UInt8]) {
        guard let r = try? TraceReader(bytes: bytes) else { return }
        let header = r.header
        var streamed = 0
        let report = CheckRun.check(reader: r, path: path, all: true) { _ in streamed += 1 }
        judge(report, eventsRead: Int(report.events), header: header, all: true)
        guard streamed == report.findings.count else { violated("\(streamed) findings streamed, \(report.findings.count) kept") }
        var text = ""
        for f in report.findings { text += Reporting.text(f, path: path) }
        text += Reporting.textSummary(report, all: true)
        guard !text.isEmpty else { violated("empty text report") }
        let json = Reporting.json([report])
        guard let obj = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { violated("json report does not parse: \(json.prefix(300))") }
        guard obj["exit_code"] as? Int == Int(CheckExit.status([report])) else { violated("json exit_code") }
        guard let files = obj["files"] as? [[String: Any]], files.count == 1,
              (files[0]["findings"] as? [Any])?.count == report.findings.count else { violated("json findings") }
        let junit = Reporting.junit([report])
        guard XMLCheck.wellFormed(junit) else { violated("junit report is not well-formed XML: \(junit.prefix(300))") }
    }

    static func text(_ bytes: [UInt8]) {
        let source = String(decoding: bytes, as: UTF8.self)
        let h: TraceHeader, ev: [TraceEvent]
        do { (h, ev) = try TextForm.parse(source) } catch let e as TraceError {
            guard e.line != nil else { violated("text error without a line: \(e)") }
            return
        } catch { violated("TextForm.parse threw a non-TraceError: \(error)") }
        let bin = TraceBytes.encode(header: h, events: ev)
        let (h2, ev2): (TraceHeader, [(event: TraceEvent, offset: UInt64)])
        do { (h2, ev2) = try TraceBytes.decode(bin) } catch { violated("the text form accepted what the binary form refuses: \(error)") }
        guard h2 == h, ev2.map(\.event) == ev else { violated("encode/decode changed the trace") }
        let rendered = TextForm.render(header: h2, events: ev2.map(\.event))
        let (h3, ev3): (TraceHeader, [TraceEvent])
        do { (h3, ev3) = try TextForm.parse(rendered) } catch { violated("rendered text does not parse: \(error)") }
        guard h3 == h, ev3 == ev else { violated("render/parse changed the trace") }
    }

    static func roundtrip(_ bytes: [UInt8]) {
        guard let (h, ev) = try? TraceBytes.decode(bytes) else { return }
        let text = TextForm.render(header: h, events: ev.map(\.event))
        let (h2, ev2): (TraceHeader, [TraceEvent])
        do { (h2, ev2) = try TextForm.parse(text) } catch { violated("dump of a valid trace does not compile: \(error)") }
        guard TraceBytes.encode(header: h2, events: ev2) == bytes else { violated("binary -> text -> binary changed the bytes") }
    }

    static func dump(_ bytes: [UInt8]) {
        guard let r = try? TraceReader(bytes: bytes) else { return }
        var out = ""
        do { try TraceDump.run(r) { out += $0 } } catch is TraceError {} catch { violated("dump threw a non-TraceError: \(error)") }
        guard out.hasPrefix(TextForm.magicLine) else { violated("dump output lacks the magic line") }
    }

    static func stats(_ bytes: [UInt8]) {
        guard let r = try? TraceReader(bytes: bytes) else { return }
        var s = TraceStats(header: r.header)
        while let (e, _) = try? r.next() { s.add(e) }
        guard !s.text().isEmpty else { violated("empty stats") }
        let json = s.json()
        guard (try? JSONSerialization.jsonObject(with: Data(json.utf8))) != nil else { violated("stats json does not parse: \(json.prefix(300))") }
    }

    static func mutate(_ bytes: [UInt8]) {
        guard let (h, ev) = try? TraceBytes.decode(bytes) else { return }
        let events = ev.map(\.event)
        for fault in BugClass.allCases {
            guard let (out, change) = try? Mutator.apply(fault, header: h, events: events) else { continue }
            guard !change.isEmpty else { violated("\(fault.name): no description") }
            let mutated = TraceBytes.encode(header: h, events: out)
            guard (try? TraceBytes.decode(mutated)) != nil else { violated("\(fault.name) wrote a trace the reader refuses") }
            guard let r = try? TraceReader(bytes: mutated) else { violated("\(fault.name): reader refuses the mutated header") }
            judge(CheckRun.check(reader: r, path: path), eventsRead: out.count, header: h, all: false)
        }
    }
}
