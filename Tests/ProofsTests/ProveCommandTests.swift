import Foundation
import Testing
import TestSupport

/// `conformance prove` as CI uses it: exit codes, JSON, traces outside the repository, emission.
@Suite struct ProveCommandTests {
    static func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        try ConformanceBinary.run(args)
    }

    static func tempDir(_ name: String) throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("prove-cmd-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: d)
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d.path
    }

    /// The whole catalogue: exit 0, every result ok, one trace per refuted variant in --trace-dir.
    @Test func proveExitsZeroWithEveryPropertyProvenAndEveryVariantRefuted() throws {
        let dir = try Self.tempDir("all")
        let r = try Self.run(["prove", "--format", "json", "--trace-dir", dir])
        #expect(r.status == 0, "\(r.out)\(r.err)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        #expect(json["ok"] as? Bool == true)
        let results = try #require(json["results"] as? [[String: Any]])
        #expect(results.count == Z3Tests.CatalogueTests.tested.count)
        for res in results {
            #expect(res["ok"] as? Bool == true, "\(res["name"] ?? "?")")
            if res["kind"] as? String == "variant" {
                #expect(res["status"] as? String == "refuted")
                if let path = res["trace"] as? String {
                    #expect(path.hasPrefix(dir))
                    #expect(FileManager.default.fileExists(atPath: path))
                }
            } else {
                #expect(res["status"] as? String == "proven")
            }
        }
        // Every refuted variant's counterexample is a trace (split, packed and mapping variants alike).
        let variants = results.filter { $0["kind"] as? String == "variant" }.count
        #expect(variants >= 22)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".trace") }.count == variants)
        // How long it takes is measured by scripts/bench-prove.sh (a ratio to the 10 s target), not
        // asserted here: a loaded CI machine must not fail a correct proof.
        #expect(json["seconds"] is Double)
    }

    /// A timeout is `unknown`, and `unknown` fails the run with exit 1: never a pass.
    @Test func proveWithATimeoutTooShortExitsOne() throws {
        let r = try Self.run(["prove", "--only", "need-event", "--timeout-ms", "1", "--trace-dir", try Self.tempDir("timeout")])
        #expect(r.status == 1, "\(r.out)")
        #expect(r.out.contains("UNKNOWN"))
    }

    @Test func proveUnknownNameIsAUsageError() throws {
        let r = try Self.run(["prove", "--only", "ring-ownership/no-such-variant"])
        #expect(r.status == 2)
        #expect(r.err.contains("--list"))
    }

    @Test func proveOnlyOneVariantRunsJustThatVariant() throws {
        let r = try Self.run(["prove", "--only", "need-event/off-by-one", "--trace-dir", try Self.tempDir("one")])
        #expect(r.status == 0, "\(r.out)")
        #expect(r.out.contains("REFUTED  need-event/off-by-one"))
        #expect(r.out.contains("check: VQ-INTERRUPT-MISSED (expected VQ-INTERRUPT-MISSED)"))
        #expect(!r.out.contains("PROVEN"))
    }

    /// `--emit` writes exactly the files committed under Specs/smt.
    @Test func emitWritesTheCommittedSpecFiles() throws {
        let dir = try Self.tempDir("emit")
        let r = try Self.run(["prove", "--emit", dir])
        #expect(r.status == 0)
        let committed = Z3Tests.EmittedSpecTests.smtDir
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(files == (try FileManager.default.contentsOfDirectory(atPath: committed.path).filter { $0.hasSuffix(".smt2") }.sorted()))
        for f in files {
            let a = try String(contentsOfFile: (dir as NSString).appendingPathComponent(f), encoding: .utf8)
            let b = try String(contentsOf: committed.appendingPathComponent(f), encoding: .utf8)
            #expect(a == b, "\(f)")
        }
    }
}
