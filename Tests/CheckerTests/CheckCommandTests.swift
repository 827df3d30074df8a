import Foundation
import Testing
import TraceFormat
import VirtioProtocol
import TestSupport

/// `conformance check` as CI systems use it: exit codes, locations, machine-readable output.
@Suite struct CheckCommandTests {
    static func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        try ConformanceBinary.run(args)
    }

    /// Compiles a bundled text trace to a temporary binary file.
    static func binaryTrace(_ relative: String) throws -> String {
        let (h, ev) = try TextForm.parse(String(contentsOf: TraceCorpus.root.appendingPathComponent(relative), encoding: .utf8))
        return try write(TraceBytes.encode(header: h, events: ev), name: relative)
    }

    static func write(_ bytes: [UInt8], name: String) throws -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("conformance-test-\(getpid())-\(name.replacingOccurrences(of: "/", with: "_")).trace").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("exit 0 for a conformant trace")
    func conformantExitsZero() throws {
        let r = try Self.run(["check", Self.binaryTrace("good/seed-rfc2-numtxqs4.trace.txt")])
        #expect(r.status == 0)
        #expect(r.out.contains("conformant"))
    }

    @Test("exit 1 naming the rule, its spec reference, the event and the byte offset")
    func violationExitsOne() throws {
        let r = try Self.run(["check", Self.binaryTrace("bad/VQ-USED-ID.trace.txt")])
        #expect(r.status == 1)
        #expect(r.out.contains("[VQ-USED-ID]"))
        #expect(r.out.contains("byte offset"))
        #expect(r.out.contains(RuleID.vqUsedId.rule.specRef))
        #expect(r.out.contains("last events on vq 1"))
    }

    @Test("exit 2 with the byte offset on a malformed trace", arguments: [
        ("bad magic", Array("NOTATRACE-------".utf8), "byte offset 0"),
        ("truncated event", TraceBytes.encode(header: TraceHeader(profile: .vhostUser, queueSizes: [8, 8]), events: []) + [0x23, 0, 1, 0], "byte offset 40"),
    ])
    func malformedExitsTwo(_ c: (String, [UInt8], String)) throws {
        let path = try Self.write(c.1, name: c.0.replacingOccurrences(of: " ", with: "-"))
        let r = try Self.run(["check", path])
        #expect(r.status == 2, "\(c.0)")
        #expect(r.err.contains(c.2), "\(c.0): \(r.err)")
    }

    @Test("check FILE... (every core) prints each file's report in argument order, as one file at a time would, with the same exit status")
    func manyFilesInArgumentOrder() throws {
        let files = try ["good/seed-rfc2-numtxqs4.trace.txt", "bad/VQ-USED-ID.trace.txt", "incomplete/polled-ring-lost.trace.txt",
                         "bad/VQ-SIZE.trace.txt", "good/event-idx.trace.txt"].map(Self.binaryTrace) + ["/nonexistent/file.trace"]
        let one = try files.map { try Self.run(["check", $0]) }
        let all = try Self.run(["check"] + files)
        #expect(all.out == one.map(\.out).joined())
        #expect(all.err == one.map(\.err).joined())
        #expect(all.status == 2 && one.map(\.status) == [0, 1, 3, 1, 0, 2])
        let noMalformed = Array(files.dropLast())
        #expect(try Self.run(["check"] + noMalformed).status == 1)
        #expect(try Self.run(["check", "--all"] + noMalformed).out == noMalformed.map { try Self.run(["check", "--all", $0]).out }.joined())
    }

    @Test("a packed ring restarted with buffers in flight: conformant, and the report says their ids were not judged (text and json)")
    func packedRestartListsAreReportedNotJudged() throws {
        let trace = try Self.binaryTrace("good/packed-polled-restart-in-flight.trace.txt")
        let text = try Self.run(["check", trace])
        #expect(text.status == 0, "\(text.out)")
        #expect(text.out.contains("1 packed buffers in flight at those restarts taken with the ids read (PACKED-BUFFER-ID not judged on them)"), "\(text.out)")
        let json = try Self.run(["check", "--format", "json", trace])
        #expect(json.out.contains("\"restart_lists\": 1"), "\(json.out)")
    }

    @Test("exit 2 on usage errors, never ArgumentParser's 64")
    func usageExitsTwo() throws {
        #expect(try Self.run(["check"]).status == 2)
        #expect(try Self.run(["check", "--format", "yaml", "x.trace"]).status == 2)
        #expect(try Self.run(["check", "/nonexistent/file.trace"]).status == 2)
    }

    @Test("json output is machine-readable and carries rule, offset and context")
    func jsonOutput() throws {
        let r = try Self.run(["check", "--format", "json", Self.binaryTrace("bad/VQ-INFLIGHT.trace.txt")])
        #expect(r.status == 1)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        #expect(obj["exit_code"] as? Int == 1)
        let file = try #require((obj["files"] as? [[String: Any]])?.first)
        let finding = try #require((file["findings"] as? [[String: Any]])?.first)
        #expect(finding["rule"] as? String == "VQ-INFLIGHT")
        #expect(finding["offset"] as? Int != nil && finding["event_index"] as? Int != nil)
        #expect(!((finding["context"] as? [Any]) ?? []).isEmpty)
    }

    @Test("junit output has one failing testcase for the broken rule")
    func junitOutput() throws {
        let r = try Self.run(["check", "--format", "junit", Self.binaryTrace("bad/VHOST-MAPPING.trace.txt")])
        #expect(r.status == 1)
        #expect(r.out.contains("<testcase") && r.out.contains("name=\"VHOST-MAPPING\"><failure"))
        #expect(r.out.components(separatedBy: "<failure").count == 2)
    }

    @Test("--profile overrides the header: a seed-rfc2 trace read as rev1 with 4 workers is still conformant")
    func profileOverride() throws {
        let path = try Self.binaryTrace("good/seed-rfc1-four-workers.trace.txt")
        #expect(try Self.run(["check", path]).status == 0)
        #expect(try Self.run(["check", "--profile", "seed-rfc2", path]).status == 1, "rev2 caps workers at 2")
    }
}
