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

    static let examples = TraceCorpus.root.deletingLastPathComponent().appendingPathComponent("Specs/examples")

    /// A fresh directory for one test's build products, removed afterwards.
    static func scratch(_ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("Specs/examples/write_trace.c, built on conformance_trace.h, writes a conformant trace")
    func cExampleWritesAConformantTrace() throws {
        guard let cc = Self.which("cc") ?? Self.which("gcc") ?? Self.which("clang") else {
            print("skipped: no C compiler on PATH")
            return
        }
        let dir = try Self.scratch("cexample")
        defer { try? FileManager.default.removeItem(at: dir) }
        let exe = dir.appendingPathComponent("write_trace").path
        let trace = dir.appendingPathComponent("out.trace").path
        #expect(try Self.run(cc, ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-o", exe, Self.examples.appendingPathComponent("write_trace.c").path]) == 0)
        #expect(try Self.run(exe, [trace]) == 0)

        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: trace)))
        let (h, events) = try TraceBytes.decode(bytes)
        #expect(events.count == 50)
        #expect(h.profile == .vhostUser && h.queueSizes == [8, 8] && h.workers == 0)
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

    @Test("VQ-KICK-MISSED: the C example without its last kick is reported with exactly that rule")
    func cExampleLostKickIsReported() throws {
        guard let cc = Self.which("cc") ?? Self.which("gcc") ?? Self.which("clang") else {
            print("skipped: no C compiler on PATH")
            return
        }
        let dir = try Self.scratch("cexample-kick")
        defer { try? FileManager.default.removeItem(at: dir) }
        let exe = dir.appendingPathComponent("write_trace").path
        let trace = dir.appendingPathComponent("lost-kick.trace").path
        #expect(try Self.run(cc, ["-std=c11", "-Wall", "-Werror", "-o", exe, Self.examples.appendingPathComponent("write_trace.c").path]) == 0)
        #expect(try Self.run(exe, [trace, "--lost-kick"]) == 0)
        let report = CheckRun.check(path: trace, all: true)
        #expect(report.error == nil)
        #expect(Set(report.findings.map(\.rule)) == [.vqKickMissed], "\(report.findings.map { "\($0.rule.rawValue): \($0.message)" })")
    }

    @Test("conformance_trace.h compiles as C99 and as C++, and refuses a vq beyond the header's queues")
    func headerCompilesAndValidates() throws {
        guard let cc = Self.which("cc") ?? Self.which("gcc") ?? Self.which("clang") else {
            print("skipped: no C compiler on PATH")
            return
        }
        let dir = try Self.scratch("cheader")
        defer { try? FileManager.default.removeItem(at: dir) }
        let header = Self.examples.appendingPathComponent("conformance_trace.h").path
        #expect(try Self.run(cc, ["-std=c99", "-Wall", "-Wextra", "-Werror", "-x", "c", "-DCONFORMANCE_TRACE_IMPLEMENTATION",
                                  "-c", header, "-o", dir.appendingPathComponent("ct.o").path]) == 0)
        if let cxx = Self.which("c++") ?? Self.which("g++") {
            #expect(try Self.run(cxx, ["-x", "c++", "-Wall", "-Werror", "-DCONFORMANCE_TRACE_IMPLEMENTATION", "-fsyntax-only", header]) == 0)
        }
        // A program that writes an event for vq 5 of a 2-queue trace: the writer must refuse it.
        let src = dir.appendingPathComponent("bad.c")
        try """
        #define CONFORMANCE_TRACE_IMPLEMENTATION
        #include "conformance_trace.h"
        int main(int argc, char **argv) {
            (void)argc;
            const uint16_t sizes[2] = {8, 8};
            ct_writer w;
            if (ct_open(&w, argv[1], CT_LINUX_UPSTREAM, CT_LAYOUT_MQ, CT_HDR_PRESET, 0, 0, 2, sizes)) return 3;
            if (ct_kick(&w, 1, 0)) return 4;
            if (ct_kick(&w, 5, 0) != -1 || ct_error(&w) != 2) return 5;
            if (ct_kick(&w, 1, 0) != -1) return 6; /* the first error sticks */
            return ct_close(&w) == -1 && w.events == 1 ? 0 : 7;
        }
        """.write(to: src, atomically: true, encoding: .utf8)
        let exe = dir.appendingPathComponent("bad").path
        #expect(try Self.run(cc, ["-std=c11", "-Wall", "-Werror", "-I", Self.examples.path, "-o", exe, src.path]) == 0)
        let out = dir.appendingPathComponent("bad.trace").path
        #expect(try Self.run(exe, [out]) == 0)
        let (_, events) = try TraceBytes.decode(try [UInt8](Data(contentsOf: URL(fileURLWithPath: out))))
        #expect(events.map(\.event.kind) == [.kick])
    }

    @Test("Specs/examples/write_trace.rs writes the C example's trace through the C ABI")
    func rustExampleMatchesC() throws {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "/root"
        let cargoRustc = "\(home)/.cargo/bin/rustc"
        guard let cc = Self.which("cc") ?? Self.which("gcc") ?? Self.which("clang"), let ar = Self.which("ar"),
              let rustc = Self.which("rustc") ?? (FileManager.default.isExecutableFile(atPath: cargoRustc) ? cargoRustc : nil) else {
            print("skipped: needs cc, ar and rustc")
            return
        }
        let dir = try Self.scratch("rustexample")
        defer { try? FileManager.default.removeItem(at: dir) }
        let obj = dir.appendingPathComponent("ct.o").path, lib = dir.appendingPathComponent("libconformance_trace.a").path
        #expect(try Self.run(cc, ["-c", "-x", "c", "-DCONFORMANCE_TRACE_IMPLEMENTATION", Self.examples.appendingPathComponent("conformance_trace.h").path, "-o", obj]) == 0)
        #expect(try Self.run(ar, ["rcs", lib, obj]) == 0)
        let rexe = dir.appendingPathComponent("write_trace_rs").path
        #expect(try Self.run(rustc, ["--edition", "2021", "-D", "warnings", Self.examples.appendingPathComponent("write_trace.rs").path,
                                     "-L", dir.path, "-l", "static=conformance_trace", "-o", rexe]) == 0)
        let cexe = dir.appendingPathComponent("write_trace").path
        #expect(try Self.run(cc, ["-std=c11", "-o", cexe, Self.examples.appendingPathComponent("write_trace.c").path]) == 0)
        let rt = dir.appendingPathComponent("rust.trace").path, ct = dir.appendingPathComponent("c.trace").path
        #expect(try Self.run(rexe, [rt]) == 0)
        #expect(try Self.run(cexe, [ct]) == 0)
        let rb = try Data(contentsOf: URL(fileURLWithPath: rt)), cb = try Data(contentsOf: URL(fileURLWithPath: ct))
        #expect(!rb.isEmpty && rb == cb)
        #expect(CheckRun.check(path: rt).conformant)
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

    @Test("conformance_trace.h names every event kind of the codec, with the codec's value")
    func headerKindsAreTheCodecs() throws {
        let text = try String(contentsOf: CExampleTests.examples.appendingPathComponent("conformance_trace.h"), encoding: .utf8)
        guard let start = text.range(of: "enum ct_kind {"), let end = text[start.upperBound...].range(of: "};") else {
            Issue.record("no ct_kind enum in conformance_trace.h"); return
        }
        var header: [String: UInt8] = [:]
        for item in text[start.upperBound..<end.lowerBound].split(whereSeparator: { $0 == "," || $0.isNewline }) {
            let parts = item.split(separator: "=").map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, parts[1].hasPrefix("0x"), let v = UInt8(parts[1].dropFirst(2), radix: 16) else { continue }
            header[parts[0]] = v
        }
        // The C name is the codec's name in upper case: used_slot is CT_USED_SLOT.
        let codec = Dictionary(uniqueKeysWithValues: EventKind.allCases.map { ("CT_" + $0.name.uppercased(), $0.rawValue) })
        #expect(header == codec, "missing in the header: \(codec.keys.filter { header[$0] == nil }.sorted()); not in the codec: \(header.keys.filter { codec[$0] == nil }.sorted())")
    }
}
