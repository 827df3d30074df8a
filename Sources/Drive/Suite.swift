import Checker
import Glibc
import TraceFormat
import VhostUser
import VirtioProtocol

/// The result of one run of one scenario (one feature variant).
public struct ScenarioOutcome: Sendable {
    public let scenario: String
    public let kind: Scenario.Kind
    public let variant: String
    public let verdict: Verdict
    /// Why (the refusal, the wedge, the skip, drive's own failure); for FAIL the first evidence.
    public let reason: String
    /// For FAIL: every rule or check broken (device rules from the trace, drive's own checks).
    public let evidence: [Evidence]
    public let requirements: [String]
    public let notes: [String]
    public let trace: String?
    public let events: UInt64
    public let seconds: Double
}

/// Runs scenarios against a back-end and turns each run into a verdict.
public enum Suite {
    /// What to run: one scenario, or all of them (each in every variant of its feature matrix with
    /// `matrix`, else once in its default variant).
    public static func plan(scenario: String?, matrix: Bool) throws(DriveError) -> [(Scenario, Variant)] {
        let list: [Scenario]
        if let name = scenario {
            guard let s = Catalogue.named(name) else {
                throw .tool("no scenario named \(name); `conformance drive --list` shows them")
            }
            list = [s]
        } else {
            list = Catalogue.all
        }
        return list.flatMap { s in matrix ? s.variants.map { (s, $0) } : [(s, s.defaultVariant)] }
    }

    /// Runs every planned scenario in turn; `progress` is told of each outcome as it comes.
    public static func run(_ plan: [(Scenario, Variant)], options: DriveOptions, progress: (ScenarioOutcome) -> Void = { _ in }) -> [ScenarioOutcome] {
        var out: [ScenarioOutcome] = []
        for (k, (s, v)) in plan.enumerated() {
            let o = runOne(s, v, options: options, id: UInt32(truncatingIfNeeded: getpid()) &* 1000 &+ UInt32(k), index: k)
            progress(o)
            out.append(o)
        }
        return out
    }

    static func traceName(_ s: Scenario, _ v: Variant, index: Int) -> String {
        let label = v.label.replacingOccurrences(of: " ", with: "")
            .replacingOccurrences(of: "+", with: "p_").replacingOccurrences(of: "-", with: "m_")
        return String(format: "%03d-", index) + s.name + (label.isEmpty ? "" : "." + label) + ".trace"
    }

    /// One run: the body, the trace closed and judged, the verdict.
    public static func runOne(_ s: Scenario, _ v: Variant, options: DriveOptions, id: UInt32, index: Int = 0) -> ScenarioOutcome {
        let t0 = IOBound.now
        let path = options.outputDir.map { $0 + "/" + traceName(s, v, index: index) }
        func outcome(_ verdict: Verdict, _ reason: String, _ ev: [Evidence] = [], run: Run? = nil) -> ScenarioOutcome {
            ScenarioOutcome(scenario: s.name, kind: s.kind, variant: v.label, verdict: verdict, reason: reason, evidence: ev,
                    requirements: s.allRequirements, notes: run?.notes ?? [], trace: path, events: run?.trace.count ?? 0,
                    seconds: Double(IOBound.now &- t0) / 1e9)
        }
        let run: Run
        do { run = try Run(scenario: s, variant: v, options: options, id: id, tracePath: path) } catch {
            return outcome(.error, error.description)
        }
        var failure: DriveError?
        do { try s.body(run) } catch let e as DriveError { failure = e } catch { failure = .tool("\(error)") }
        if let f = failure, case .skipped = f {
            run.closeConnection(); run.finish()
            return outcome(.skipped, f.description, run: run)
        }
        run.finish()
        let strays = run.mem.strayWrites()
        run.closeConnection()

        // The trace, judged: device rules are the back-end's; driver rules are planted (hostile
        // scenarios) or drive's own defect.
        var ev: [Evidence] = []
        var driverSeen = Set<RuleID>()
        var drivesOwn: [String] = []
        for f in run.trace.findings {
            switch f.rule.party {
            case .device:
                if s.excused.contains(f.rule) { continue }
                ev.append(Evidence(id: f.rule.rawValue, spec: f.specRef, message: f.message, event: f.eventIndex))
            case .driver:
                driverSeen.insert(f.rule)
                if !s.planted.contains(f.rule) && !s.mayAlsoBreak.contains(f.rule) { drivesOwn.append("[\(f.rule.rawValue)] \(f.message)") }
            }
        }
        for w in strays {
            ev.append(Evidence(id: DriveCheck.writes.id, spec: DriveCheck.writes.spec, message: "the device wrote where it may not: \(w)", event: nil))
        }
        ev += run.failures
        if let e = run.trace.writeFailure { drivesOwn.append("the trace could not be written: \(e)") }
        if !run.trace.notJudged.isEmpty { drivesOwn.append("the trace was not fully judged: \(run.trace.notJudged.prefix(3).joined(separator: "; "))") }
        if run.plantedDone {
            let missing = s.planted.filter { !driverSeen.contains($0) }
            if !missing.isEmpty { drivesOwn.append("the hostile input was not what the scenario says: the trace does not show \(missing.map(\.rawValue))") }
        }

        if !ev.isEmpty {
            return outcome(.fail, "[\(ev[0].id)] \(ev[0].message)", ev, run: run)
        }
        if !drivesOwn.isEmpty { return outcome(.error, "drive's own defect: " + drivesOwn.joined(separator: "; "), run: run) }
        switch failure {
        case .closed(let m)?:
            if s.kind.isHostile {
                // A back-end may close the connection on an error; it must still be there after.
                if let dead = survives(options) {
                    return outcome(dead.hasPrefix("[\(DriveCheck.survives.id)] wedged") ? .wedged : .crashed, "\(m); then \(dead)", run: run)
                }
                return outcome(.rejected, "closed the connection (\(m)); a new connection is served", run: run)
            }
            return outcome(.crashed, m, run: run)
        case .wedged(let m)?: return outcome(.wedged, m, run: run)
        case .refused(let m)?: return outcome(.rejected, m, run: run)
        case .tool(let m)?: return outcome(.error, m, run: run)
        case .skipped?: return outcome(.skipped, failure!.description, run: run)
        case nil: break
        }
        if s.kind.isHostile, let dead = survives(options) {
            return outcome(dead.hasPrefix("[\(DriveCheck.survives.id)] wedged") ? .wedged : .crashed, "after the hostile input: \(dead)", run: run)
        }
        if !run.refusals.isEmpty { return outcome(.rejected, run.refusals.joined(separator: "; "), run: run) }
        return outcome(.pass, run.notes.first ?? "", run: run)
    }

    /// Nil when something accepts connections at the socket; else why not (a usage error: no
    /// verdict about a back-end that is not there).
    public static func reachable(_ options: DriveOptions) -> String? {
        do {
            let ch = try Connector.connect(options.socket, within: .within(options.connectTimeout), interval: 0.05)
            ch.close()
            return nil
        } catch {
            return "cannot connect to \(options.socket): \(error)"
        }
    }

    /// Whether the back-end still serves a fresh connection: one pair set up, 4 packets used. Nil
    /// when it does; else what went wrong. (DRIVE-SURVIVES.)
    public static func survives(_ options: DriveOptions) -> String? {
        var o = options
        o.pairs = 1
        o.regionSize = 4 << 20
        let probe = Scenario("survival-probe", .boundary, summary: "", requirements: [], rules: [], allows: "", forbids: "") { _ in }
        do {
            let run = try Run(scenario: probe, variant: Variant(on: []), options: o, id: 0xDEAD, tracePath: nil)
            defer { run.closeConnection() }
            try run.open()
            let (_, tx) = try run.pair(0, size: 32)
            try run.send(tx, count: 4)
            return nil
        } catch {
            // Accepted but not answered is a wedge; refused or closed, the back-end is gone.
            if case .wedged = error { return "[\(DriveCheck.survives.id)] wedged: a new connection is accepted but not served: \(error)" }
            return "[\(DriveCheck.survives.id)] a new connection is not served: \(error)"
        }
    }

    // MARK: exit status (CheckExit's meanings)

    /// 1 when the back-end broke something (FAIL, WEDGED, CRASHED); 2 when drive itself failed;
    /// 3 when nothing was judged (every run SKIPPED); 0 otherwise.
    public static func exitStatus(_ os: [ScenarioOutcome]) -> Int32 {
        if os.contains(where: { [.fail, .wedged, .crashed].contains($0.verdict) }) { return CheckExit.violation }
        if os.contains(where: { $0.verdict == .error }) { return CheckExit.usageOrInput }
        if !os.contains(where: { $0.verdict == .pass || $0.verdict == .rejected }) { return CheckExit.incomplete }
        return CheckExit.conformant
    }
}

extension Scenario {
    /// Requirements named by the scenario and by its checks.
    public var allRequirements: [String] {
        var seen = Set<String>()
        return (requirements + checks.flatMap(\.requirements)).filter { seen.insert($0).inserted }
    }
}

// MARK: rendering

public enum DriveReport {
    public static func text(_ os: [ScenarioOutcome]) -> String {
        let w = max(24, os.map { $0.scenario.count + ($0.variant.isEmpty ? 0 : $0.variant.count + 1) }.max() ?? 0)
        var s = ""
        for o in os { s += line(o, width: w) }
        s += summary(os)
        return s
    }

    public static func line(_ o: ScenarioOutcome, width: Int = 40) -> String {
        let name = o.scenario + (o.variant.isEmpty ? "" : " " + o.variant)
        var s = name.padding(toLength: max(width, name.count), withPad: " ", startingAt: 0) + "  "
        s += o.verdict.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
        s += String(format: "%6.2fs  ", o.seconds) + o.reason + "\n"
        if o.verdict == .fail {
            for e in o.evidence.prefix(8) {
                s += "    [\(e.id)] \(e.event.map { "event \($0): " } ?? "")\(e.message)\n      spec: \(e.spec)\n"
            }
            if let t = o.trace { s += "    trace: \(t)\n" }
        }
        return s
    }

    public static func summary(_ os: [ScenarioOutcome]) -> String {
        let counts = Verdict.allCases.compactMap { v -> String? in
            let n = os.filter { $0.verdict == v }.count
            return n == 0 ? nil : "\(n) \(v.rawValue)"
        }
        return "\(os.count) run(s): " + counts.joined(separator: ", ") + "\n"
    }

    public static func json(_ os: [ScenarioOutcome]) -> String {
        let q = Reporting.q
        var s = "{\"runs\": [\n"
        s += os.map { o in
            var r = "  {\"scenario\": \(q(o.scenario)), \"kind\": \(q(o.kind.rawValue)), \"variant\": \(q(o.variant)), "
            r += "\"verdict\": \(q(o.verdict.rawValue)), \"reason\": \(q(o.reason)), "
            r += "\"requirements\": [\(o.requirements.map(q).joined(separator: ", "))], "
            r += "\"evidence\": [\(o.evidence.map { "{\"id\": \(q($0.id)), \"spec\": \(q($0.spec)), \"event\": \($0.event.map(String.init) ?? "null"), \"message\": \(q($0.message))}" }.joined(separator: ", "))], "
            r += "\"notes\": [\(o.notes.map(q).joined(separator: ", "))], "
            r += "\"trace\": \(o.trace.map(q) ?? "null"), \"events\": \(o.events), \"seconds\": \(String(format: "%.3f", o.seconds))}"
            return r
        }.joined(separator: ",\n")
        s += "\n], \"exit\": \(Suite.exitStatus(os))}\n"
        return s
    }

    /// One testcase per run: FAIL, WEDGED and CRASHED are failures, ERROR an error, SKIPPED skipped.
    public static func junit(_ os: [ScenarioOutcome]) -> String {
        let x = { (s: String) in Reporting.xmlAttribute(s) }
        let fails = os.filter { [.fail, .wedged, .crashed].contains($0.verdict) }.count
        let errors = os.filter { $0.verdict == .error }.count
        let skipped = os.filter { $0.verdict == .skipped }.count
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"conformance drive\">\n"
        s += "  <testsuite name=\"drive\" tests=\(x(String(os.count))) failures=\(x(String(fails))) errors=\(x(String(errors))) skipped=\(x(String(skipped)))>\n"
        for o in os {
            let name = o.scenario + (o.variant.isEmpty ? "" : " " + o.variant)
            s += "    <testcase classname=\(x("drive." + o.kind.rawValue.replacingOccurrences(of: " ", with: "-"))) name=\(x(name)) time=\(x(String(format: "%.3f", o.seconds)))>"
            let body = Reporting.xmlText(line(o) + (o.requirements.isEmpty ? "" : "requirements: \(o.requirements.joined(separator: ", "))\n"))
            switch o.verdict {
            case .fail, .wedged, .crashed:
                s += "<failure type=\(x(o.verdict.rawValue)) message=\(x(o.reason))>\(body)</failure>"
            case .error: s += "<error message=\(x(o.reason))>\(body)</error>"
            case .skipped: s += "<skipped message=\(x(o.reason))/>"
            case .pass, .rejected: s += "<system-out>\(body)</system-out>"
            }
            s += "</testcase>\n"
        }
        return s + "  </testsuite>\n</testsuites>\n"
    }
}
