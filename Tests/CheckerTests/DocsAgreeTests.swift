import Foundation
import Testing
import Checker
import TraceFormat

/// What people read must be what the code does.
@Suite struct DocsAgreeTests {
    static let textSources = TraceCorpus.files("good", suffix: ".trace.txt") + TraceCorpus.files("bad", suffix: ".trace.txt")
        + TraceCorpus.files("incomplete", suffix: ".trace.txt")

    @Test("each hand-written trace's binary is its text source, compiled", arguments: textSources)
    func binaryMatchesTextSource(_ txt: URL) throws {
        let (h, events) = try TextForm.parse(String(contentsOf: txt, encoding: .utf8))
        let bin = URL(fileURLWithPath: String(txt.path.dropLast(".txt".count)))
        let stored = try [UInt8](Data(contentsOf: bin))
        #expect(stored == TraceBytes.encode(header: h, events: events), "\(bin.lastPathComponent) is stale: run conformance compile \(txt.lastPathComponent) -o \(bin.lastPathComponent)")
    }

    @Test("dump then compile gives back the same bytes", arguments: textSources)
    func dumpCompileRoundTrip(_ txt: URL) throws {
        let bin = try [UInt8](Data(contentsOf: URL(fileURLWithPath: String(txt.path.dropLast(".txt".count)))))
        let (h, decoded) = try TraceBytes.decode(bin)
        let text = TextForm.render(header: h, events: decoded.map(\.event))
        let (h2, events2) = try TextForm.parse(text)
        #expect(TraceBytes.encode(header: h2, events: events2) == bin)
    }

    @Test("Specs/rules.md is the rule catalogue, rendered")
    func rulesMarkdownIsGenerated() throws {
        let md = try String(contentsOf: TraceCorpus.root.deletingLastPathComponent().appendingPathComponent("Specs/rules.md"), encoding: .utf8)
        #expect(md == RuleTable.markdown(), "regenerate with: conformance rules --format markdown > Specs/rules.md")
    }
}
