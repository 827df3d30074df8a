import ArgumentParser
import Checker
import Foundation
import Proofs
import TraceFormat
import VirtioProtocol

struct Prove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prove",
        abstract: "Prove the model's invariants with Z3 and refute their broken variants.",
        discussion: """
        Each property (ring-ownership, need-event, packed-ownership, packed-need-event, mapping-total, \
        mapping-range, mapping-balance, mapping-seed-table, mapping-single-consumer, set-owner-compat) must be proven: Z3 answers \
        unsat to the negation of every claim. Each broken variant (NAME/VARIANT) must be refuted: \
        Z3 finds a counterexample, shown in words, written as a trace v1 file and checked with the \
        reference checker, which must report the matching rule. `unknown` (a timeout) never passes, \
        and neither does a goal whose premises have no model (reported as VACUOUS).

        The SMT-LIB2 text of every spec is what `--emit DIR` writes (the repository keeps a copy \
        in Specs/smt/); any SMT-LIB2 solver can run those files.

        Exit status: 0 every property proven, every variant refuted and every counterexample trace \
        flagged as expected; 1 otherwise; 2 usage error or Z3 missing (install it with \
        `apt-get install -y libz3-dev`).
        """
    )

    @Option(help: "Output format: text or json.")
    var format: ProveFormat = .text

    @Option(name: .customLong("only"), help: ArgumentHelp("Run only this property (with its variants) or this variant; repeatable.", valueName: "NAME"))
    var only: [String] = []

    @Option(help: ArgumentHelp("Write the SMT-LIB2 spec files into DIR and exit without proving.", valueName: "DIR"))
    var emit: String?

    @Option(name: .customLong("trace-dir"), help: ArgumentHelp("Directory for counterexample traces (default: a new temporary directory).", valueName: "DIR"))
    var traceDir: String?

    @Option(name: .customLong("timeout-ms"), help: "Per-query Z3 timeout in milliseconds; a timeout is `unknown`, which fails.")
    var timeoutMs: UInt32 = 10_000

    @Flag(help: "List the property and variant names and exit.")
    var list = false

    func validate() throws {
        if timeoutMs == 0 { throw ValidationError("--timeout-ms must be at least 1 (Z3 reads 0 as no timeout)") }
        for name in only where Catalogue.select(name).isEmpty {
            throw ValidationError("unknown property or variant '\(name)'; `conformance prove --list` shows the names, e.g. --only ring-ownership")
        }
    }

    func run() throws {
        let specs = only.isEmpty ? Catalogue.all : only.flatMap(Catalogue.select)
        if list {
            for s in Catalogue.all { print(s.isVariant ? "  \(s.name)" : s.name) }
            return
        }
        if let dir = emit {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for s in specs {
                let path = (dir as NSString).appendingPathComponent(s.fileName)
                try s.smtlib().write(toFile: path, atomically: true, encoding: .utf8)
            }
            if format == .text { print("wrote \(specs.count) SMT-LIB2 files to \(dir)") }
            return
        }

        let prover: Prover
        do { prover = try Prover(timeoutMs: timeoutMs) } catch {
            FileHandleOut.stderr("conformance prove: \(error)\n\(Z3Error.installHint)\n")
            throw ExitCode(ExitStatus.usageOrInput)
        }
        let dir = try traceDirectory()

        let clock = ContinuousClock()
        let start = clock.now
        var results: [ProveResult] = []
        for s in specs {
            let o = prover.run(s)
            var r = ProveResult(outcome: o)
            if let w = o.witness {
                let path = (dir as NSString).appendingPathComponent(s.fileName.replacingOccurrences(of: ".smt2", with: ".trace"))
                do {
                    let w2 = try TraceWriter(path: path, header: w.header)
                    for e in w.events { w2.write(e) }
                    w2.close()
                    let report = CheckRun.check(path: path)
                    r.tracePath = path
                    r.found = report.findings.map(\.rule)
                    r.traceError = report.error.map { "\($0)" }
                } catch {
                    r.traceError = "\(error)"
                }
            }
            if format == .text { print(r.text(), terminator: "") }
            results.append(r)
        }
        let total = seconds(clock.now - start)
        let ok = results.allSatisfy(\.ok)
        switch format {
        case .text:
            let props = results.filter { !$0.outcome.spec.isVariant }
            let vars = results.filter { $0.outcome.spec.isVariant }
            let traces = results.filter { $0.outcome.witness != nil }
            print("""
            \(props.filter(\.ok).count)/\(props.count) properties proven, \(vars.filter { $0.outcome.status == .refuted }.count)/\(vars.count) variants refuted, \
            \(traces.filter(\.traceOK).count)/\(traces.count) counterexample traces flagged as expected; \
            \(String(format: "%.2f", total)) s with Z3 \(Z3Session.version)\(traces.isEmpty ? "" : "; traces in \(dir)")
            \(ok ? "OK" : "FAILED")
            """)
        case .json:
            print(ProveResult.json(results, seconds: total, traceDir: dir, ok: ok))
        }
        if !ok { throw ExitCode(ExitStatus.violation) }
    }

    func traceDirectory() throws -> String {
        if let traceDir {
            try FileManager.default.createDirectory(atPath: traceDir, withIntermediateDirectories: true)
            return traceDir
        }
        var template = Array((NSTemporaryDirectory() as NSString).appendingPathComponent("conformance-prove-XXXXXX").utf8CString)
        guard let p = mkdtemp(&template) else { throw ValidationError("cannot create a temporary directory; pass --trace-dir DIR") }
        return String(cString: p)
    }

    func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

enum ProveFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// One spec's outcome plus what happened to its counterexample trace.
struct ProveResult {
    let outcome: SpecOutcome
    var tracePath: String?
    var found: [RuleID] = []
    var traceError: String?

    /// A trace is flagged as expected when the checker reports exactly the expected rule
    /// (or nothing, for a trace that must be conformant).
    var traceOK: Bool {
        guard let w = outcome.witness else { return true }
        guard traceError == nil else { return false }
        if let rule = w.expectedRule { return Set(found) == [rule] }
        return found.isEmpty
    }

    var ok: Bool {
        guard outcome.asExpected && traceOK else { return false }
        // A refuted variant of a ring or mapping property must produce a trace.
        return !(outcome.spec.isVariant && outcome.spec.trace != nil && outcome.witness == nil)
    }

    func text() -> String {
        let s = outcome.spec
        let status = outcome.status.rawValue.uppercased()
        let verdict = ok ? "" : (s.isVariant ? "  << FAILED: expected refuted" : "  << FAILED: expected proven")
        let pad = String(repeating: " ", count: max(1, 48 - s.name.count))
        var out = "\(status.padding(toLength: 8, withPad: " ", startingAt: 0)) \(s.name)\(pad)\(String(format: "%6.3f", outcome.seconds)) s  \(outcome.goals.count) goal\(outcome.goals.count == 1 ? "" : "s")\(verdict)\n"
        for g in outcome.goals where g.answer == .unknown || g.answer == .error {
            out += "         goal \(g.goal): \(g.answer.rawValue) (\(g.detail ?? ""))\n"
        }
        if !outcome.vacuous.isEmpty { out += "         VACUOUS: the premises of goal(s) \(outcome.vacuous.joined(separator: ", ")) have no model\n" }
        if let c = outcome.crossCheck { out += "         \(c.detail)\n" }
        if let words = outcome.counterexample {
            out += "         counterexample: \(words)\n"
            let vals = outcome.shownValues.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
            if !vals.isEmpty { out += "         values: \(vals)\n" }
        }
        if let w = outcome.witness {
            let want = w.expectedRule?.rawValue ?? "no finding"
            let got = found.isEmpty ? "no finding" : found.map(\.rawValue).joined(separator: ", ")
            out += "         trace: \(tracePath ?? "(not written)")  check: \(got) (expected \(want))\(traceOK ? "" : "  << MISMATCH")\n"
            if let e = traceError { out += "         trace error: \(e)\n" }
        }
        return out
    }

    static func json(_ rs: [ProveResult], seconds: Double, traceDir: String, ok: Bool) -> String {
        func esc(_ s: String) -> String { Reporting.q(s) }
        var items: [String] = []
        for r in rs {
            let o = r.outcome
            var f: [String] = [
                "\"name\": \(esc(o.spec.name))",
                "\"kind\": \(esc(o.spec.isVariant ? "variant" : "property"))",
                "\"property\": \(esc(o.spec.property))",
                "\"status\": \(esc(o.status.rawValue))",
                "\"expected\": \(esc(o.spec.isVariant ? "refuted" : "proven"))",
                "\"ok\": \(r.ok)",
                "\"seconds\": \(String(format: "%.4f", o.seconds))",
                "\"source\": \(esc(o.spec.source))",
                "\"goals\": [" + o.goals.map { g in
                    "{\"name\": \(esc(g.goal)), \"answer\": \(esc(g.answer.rawValue)), \"seconds\": \(String(format: "%.4f", g.seconds))\(g.detail.map { ", \"detail\": \(esc($0))" } ?? "")}"
                }.joined(separator: ", ") + "]",
            ]
            if let c = o.crossCheck { f.append("\"cross_check\": {\"ok\": \(c.ok), \"detail\": \(esc(c.detail))}") }
            if !o.spec.isVariant { f.append("\"vacuous_goals\": [" + o.vacuous.map(esc).joined(separator: ", ") + "]") }
            if let words = o.counterexample {
                f.append("\"counterexample\": \(esc(words))")
                f.append("\"values\": {" + o.shownValues.map { "\(esc($0.0)): \(esc($0.1))" }.joined(separator: ", ") + "}")
            }
            if let w = o.witness {
                f.append("\"trace\": \(r.tracePath.map(esc) ?? "null")")
                f.append("\"expected_rule\": \(w.expectedRule.map { esc($0.rawValue) } ?? "null")")
                f.append("\"found_rules\": [" + r.found.map { esc($0.rawValue) }.joined(separator: ", ") + "]")
                f.append("\"trace_ok\": \(r.traceOK)")
            }
            items.append("    {" + f.joined(separator: ", ") + "}")
        }
        return """
        {
          "ok": \(ok),
          "seconds": \(String(format: "%.4f", seconds)),
          "z3": \(esc(Z3Session.version)),
          "trace_dir": \(esc(traceDir)),
          "results": [
        \(items.joined(separator: ",\n"))
          ]
        }
        """
    }
}
