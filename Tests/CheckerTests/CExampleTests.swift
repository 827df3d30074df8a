import Foundation
import Testing
import Checker
import TraceFormat
import VirtioProtocol

/// The format document is enough to write traces from C: the example written from it alone
/// produces a trace that decodes, round-trips through the text form, and checks conformant.
@Suite struct CExampleTests {
    static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    static func run(_ path: String, _ args: [String]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    @Test("Specs/examples/write_trace.c writes a conformant trace")
    func cExampleWritesAConformantTrace() throws {
        guard let cc = Self.which("cc") ?? Self.which("gcc") ?? Self.which("clang") else {
            print("skipped: no C compiler on PATH")
            return
        }
        let src = TraceCorpus.root.deletingLastPathComponent().appendingPathComponent("Specs/examples/write_trace.c").path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cexample-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let exe = dir.appendingPathComponent("write_trace").path
        let trace = dir.appendingPathComponent("out.trace").path
        #expect(try Self.run(cc, ["-std=c11", "-Wall", "-Werror", "-o", exe, src]) == 0)
        #expect(try Self.run(exe, [trace]) == 0)

        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: trace)))
        let (h, events) = try TraceBytes.decode(bytes)
        #expect(events.count == 50)
        let (h2, e2) = try TextForm.parse(TextForm.render(header: h, events: events.map(\.event)))
        #expect(TraceBytes.encode(header: h2, events: e2) == bytes)
        let report = CheckRun.check(path: trace)
        #expect(report.conformant, "\(report.findings.map { "\($0.rule.rawValue): \($0.message)" }) \(report.error.map(String.init(describing:)) ?? "")")

        // --packed: the same device with VIRTIO_F_RING_PACKED, rings of 3, both wrap counters flipping.
        let packed = dir.appendingPathComponent("packed.trace").path
        #expect(try Self.run(exe, ["--packed", packed]) == 0)
        let (ph, pevents) = try TraceBytes.decode(try [UInt8](Data(contentsOf: URL(fileURLWithPath: packed))))
        #expect(ph.features & FeatureBit.ringPacked.mask != 0 && ph.queueSizes == [3, 3])
        #expect(pevents.count == 63 && pevents.contains { $0.event.kind == .packedUsedFlags })
        let pr = CheckRun.check(path: packed)
        #expect(pr.conformant, "\(pr.findings.map { "\($0.rule.rawValue): \($0.message)" }) \(pr.error.map(String.init(describing:)) ?? "")")
        // The checker does judge it: one flags store with the wrong wrap counter is a finding.
        var bad = pevents.map(\.event)
        let k = try #require(bad.lastIndex { $0.kind == .packedFlags && $0.vq == 1 })
        bad[k].p0 ^= UInt64(PackedRing.Flags([.avail, .used]).rawValue)
        let badPath = dir.appendingPathComponent("packed-bad.trace").path
        try Data(TraceBytes.encode(header: ph, events: bad)).write(to: URL(fileURLWithPath: badPath))
        #expect(CheckRun.check(path: badPath).findings.first?.rule == .packedWrapCounter)
    }
}

/// The event table in Specs/trace-format.md is generated from the codec's field table.
@Suite struct FormatDocTests {
    @Test("the format document's event table is the codec's")
    func eventTableMatchesCodec() throws {
        let doc = try String(contentsOf: TraceCorpus.root.deletingLastPathComponent().appendingPathComponent("Specs/trace-format.md"), encoding: .utf8)
        let start = try #require(doc.range(of: FormatTable.begin)), end = try #require(doc.range(of: FormatTable.end))
        let table = doc[start.upperBound..<end.lowerBound].trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(table == FormatTable.markdown().trimmingCharacters(in: .whitespacesAndNewlines),
                "regenerate the table with: conformance event-table")
    }
}
