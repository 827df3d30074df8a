import Foundation
import Testing
import VirtioProtocol
import TraceTools

/// Every input the fuzzer ever crashed on (Tests/Regressions/fuzz/TARGET/NAME, kept by the line
/// `scripts/fuzz.sh` prints) replays cleanly: through the fuzz target that found it, with all of that
/// target's properties, and through every CLI command that reads such a file, each exiting by itself
/// with a documented status (0-3), never on a signal.
@Suite struct FuzzRegressionTests {
    static let fuzzRoot = Regressions.root.appendingPathComponent("fuzz")

    /// "TARGET/NAME" for every saved input.
    static var saved: [String] {
        let fm = FileManager.default
        let targets = ((try? fm.contentsOfDirectory(atPath: fuzzRoot.path)) ?? []).sorted()
        return targets.flatMap { t in
            ((try? fm.contentsOfDirectory(atPath: fuzzRoot.appendingPathComponent(t).path)) ?? []).sorted().map { "\(t)/\($0)" }
        }
    }

    /// The CLI runs for a binary trace: every command and format that reads one.
    static func cliRuns(_ file: String) -> [[String]] {
        var runs: [[String]] = [["check", file], ["check", "--all", file], ["check", "--format", "json", "--all", file],
                                ["check", "--format", "junit", "--all", file], ["dump", file], ["stats", file], ["stats", "--format", "json", file]]
        runs += Profile.allCases.map { ["check", "--profile", $0.description, file] }
        runs += BugClass.allCases.map { ["mutate", file, "--fault", $0.name, "-o", Tools.temp("mutated.trace")] }
        return runs
    }

    @Test("the saved fuzz inputs are where scripts/fuzz.sh keeps them, one directory per target")
    func layout() throws {
        let list = try Tools.run("conformance-fuzz", ["--list"])
        let targets = Set(list.out.split(separator: "\n").map { String($0.split(separator: "\t")[0]) })
        #expect(targets.count == 8)
        let dirs = Set(((try? FileManager.default.contentsOfDirectory(atPath: Self.fuzzRoot.path)) ?? []))
        #expect(dirs.isSubset(of: targets), "unknown target directories: \(dirs.subtracting(targets))")
        #expect(!Self.saved.isEmpty)
    }

    @Test("every input the fuzzer ever crashed on replays cleanly", arguments: saved)
    func replay(_ entry: String) throws {
        let target = String(entry.split(separator: "/")[0])
        let file = Self.fuzzRoot.appendingPathComponent(entry).path
        let r = try Tools.run("conformance-fuzz", [target, file])
        #expect(!r.signaled && !r.timedOut && r.status == 0, "\(entry): conformance-fuzz \(target): status \(r.status), signaled \(r.signaled)\n\(r.err.suffix(2000))")

        var binary = file
        if target == "text" {
            let out = Tools.temp("compiled.trace")
            let c = try Tools.run("conformance", ["compile", file, "-o", out])
            #expect(!c.signaled && (c.status == 0 || c.status == 2), "\(entry): compile status \(c.status)")
            guard c.status == 0 else { return }
            binary = out
        }
        for args in Self.cliRuns(binary) {
            let c = try Tools.run("conformance", args)
            #expect(c.clean, "\(entry): conformance \(args.joined(separator: " ")): status \(c.status), signaled \(c.signaled), timed out \(c.timedOut)\n\(c.err.suffix(2000))")
            if args.contains("json"), c.status != 2 {
                #expect((try? JSONSerialization.jsonObject(with: Data(c.out.utf8))) != nil, "\(entry): \(args): json does not parse")
            }
        }
    }

    @Test("every fuzz target holds its properties on the whole bundled corpus (the seeds of every run)")
    func targetsOnCorpus() throws {
        let fm = FileManager.default
        func files(_ suffix: String) -> [String] {
            ["good", "bad", "real"].flatMap { d -> [String] in
                let dir = Regressions.traces.appendingPathComponent(d)
                return ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(suffix) }.sorted()
                    .map { dir.appendingPathComponent($0).path }
            }
        }
        let binary = files(".trace"), text = files(".trace.txt")
        #expect(binary.count >= 40 && text.count >= 40)
        let list = try Tools.run("conformance-fuzz", ["--list"])
        for line in list.out.split(separator: "\n") {
            let parts = line.split(separator: "\t").map(String.init)
            let inputs = parts[1] == "text" ? text : binary
            let r = try Tools.run("conformance-fuzz", [parts[0]] + inputs, timeout: 600)
            #expect(!r.signaled && r.status == 0, "target \(parts[0]): status \(r.status)\n\(r.err.suffix(2000))")
        }
    }
}
