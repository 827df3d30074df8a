import VirtioProtocol
import TraceFormat

/// Every spec `conformance prove` runs, properties first, each followed by its variants.
public enum Catalogue {
    public static var properties: [Spec] {
        [RingOwnership.property, NeedEvent.property, PackedOwnership.property, PackedNeedEvent.property] + Mapping.properties + [SetOwnerCompat.property]
    }
    public static var variants: [Spec] {
        RingOwnership.variants + NeedEvent.variants + PackedOwnership.variants + PackedNeedEvent.variants + Mapping.variants + SetOwnerCompat.variants
    }
    /// Properties, each followed by its variants.
    public static var all: [Spec] {
        let vs = variants
        return properties.flatMap { p in [p] + vs.filter { $0.property == p.name } }
    }

    /// Specs selected by `--only`: a property name selects it and its variants; a variant name
    /// (property/variant) selects that variant alone.
    public static func select(_ name: String) -> [Spec] {
        all.filter { $0.name == name || $0.property == name }
    }

    /// Swift-side cross-checks that must agree with Z3 (by property name).
    public static func crossCheck(_ property: String) -> (ok: Bool, detail: String)? {
        switch property {
        case SetOwnerCompat.name:
            let (n, failures) = SetOwnerMatrix.check()
            return failures.isEmpty
                ? (true, "Swift enumeration of \(n) matrix cells agrees: every cell valid")
                : (false, "Swift enumeration disagrees: " + failures.joined(separator: "; "))
        default:
            return nil
        }
    }
}

public struct GoalOutcome: Sendable {
    public enum Answer: String, Sendable { case unsat, sat, unknown, error }
    public let goal: String
    public let answer: Answer
    public let seconds: Double
    public let detail: String?
}

public struct SpecOutcome: Sendable {
    public enum Status: String, Sendable {
        /// Property: every goal unsat. Variant: every goal unsat too (which is a failure for a variant).
        case proven
        /// Some goal sat: a counterexample (expected for a variant, a failure for a property).
        case refuted
        /// Z3 gave up or failed on some goal, and nothing was refuted.
        case unknown
    }
    public let spec: Spec
    public let status: Status
    public let seconds: Double
    public let goals: [GoalOutcome]
    /// The counterexample (small witness when one exists) and the goal it refutes.
    public let model: Model?
    public let counterexample: String?
    public let witness: WitnessTrace?
    /// Swift-side cross-check (enumeration) for the property, if it has one.
    public let crossCheck: (ok: Bool, detail: String)?
    /// Property goals whose premises Z3 could not satisfy (vacuous proofs); must be empty.
    public let vacuous: [String]

    /// Whether this outcome is what the suite requires.
    public var asExpected: Bool {
        let z3 = spec.isVariant ? status == .refuted : status == .proven
        return z3 && (crossCheck?.ok ?? true) && vacuous.isEmpty
    }
}

/// Runs specs through Z3, sequentially, each spec in a fresh session: a context that has
/// answered other specs' queries was measured to slow later ones down (need-event's split goal:
/// 0.85 s alone, 2.9 s after the ring queries in the same context).
public struct Prover {
    public let timeoutMs: UInt32
    private let shared: Z3Session?

    public init(timeoutMs: UInt32 = 10_000) throws {
        self.timeoutMs = timeoutMs
        shared = nil
        _ = try Z3Session(timeoutMs: timeoutMs)   // fail here, not mid-run, if Z3 is unusable
    }

    /// Runs every spec on the given session (tests use this to control the timeout).
    public init(session: Z3Session) { shared = session; timeoutMs = session.timeoutMs }

    /// The general solver: its preprocessing makes the bit-vector proofs about 5x faster than
    /// the simple one (measured: 2.3 s against 12.4 s for the whole catalogue).
    public var solverKind: Z3Session.SolverKind = .general

    public func run(_ spec: Spec) -> SpecOutcome {
        let session: Z3Session
        if let shared { session = shared } else {
            do { session = try Z3Session(timeoutMs: timeoutMs) } catch {
                return SpecOutcome(spec: spec, status: .unknown, seconds: 0,
                                   goals: [GoalOutcome(goal: "session", answer: .error, seconds: 0, detail: "\(error)")],
                                   model: nil, counterexample: nil, witness: nil, crossCheck: nil, vacuous: [])
            }
        }
        let clock = ContinuousClock()
        let start = clock.now
        var goals: [GoalOutcome] = []
        var refuting: (Goal, Model)?
        var undecided = false
        for g in spec.goals {
            let t0 = clock.now
            let answer: GoalOutcome.Answer
            var detail: String?
            do {
                switch try session.check(spec.query(g), solver: g.solver == .simple ? .simple : solverKind) {
                case .unsat: answer = .unsat
                case .sat(let m):
                    answer = .sat
                    if refuting == nil { refuting = (g, m) }
                case .unknown(let reason): answer = .unknown; detail = reason; undecided = true
                }
            } catch {
                answer = .error; detail = "\(error)"; undecided = true
            }
            goals.append(GoalOutcome(goal: g.name, answer: answer, seconds: seconds(clock.now - t0), detail: detail))
            // A variant needs one counterexample; the remaining goals would only cost time.
            if spec.isVariant && refuting != nil { break }
        }
        var model: Model?, words: String?, witness: WitnessTrace?
        if let (g, m) = refuting {
            var chosen = m
            // Prefer a small counterexample (short trace); the refutation stands without it.
            if let hint = spec.smallWitness, case .sat(let small)? = try? session.check(spec.query(g, extra: hint), solver: solverKind) {
                chosen = small
            }
            chosen.values["_goal"] = g.name
            model = chosen
            words = "goal \(g.name): " + spec.explain(chosen)
            witness = spec.trace?(chosen)
        }
        let status: SpecOutcome.Status = refuting != nil ? .refuted : (undecided ? .unknown : .proven)
        let cross = spec.isVariant ? nil : Catalogue.crossCheck(spec.name)
        // Non-vacuity of a proven property: each goal's premises have a model.
        var vacuous: [String] = []
        if status == .proven && !spec.isVariant {
            for g in spec.goals {
                if case .sat? = try? session.check(spec.query(Goal(g.name, g.claim, smt: g.premises)), solver: .simple) { continue }
                vacuous.append(g.name)
            }
        }
        return SpecOutcome(spec: spec, status: status, seconds: seconds(clock.now - start), goals: goals,
                           model: model, counterexample: words, witness: witness, crossCheck: cross, vacuous: vacuous)
    }

    func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

/// The model values a reader wants, in the goal's order.
extension SpecOutcome {
    public var shownValues: [(String, String)] {
        guard let m = model, let g = spec.goals.first(where: { $0.name == m.goal }) else { return [] }
        let names = g.shown.isEmpty ? m.values.keys.sorted().filter { $0 != "_goal" } : g.shown
        return names.compactMap { n in m[n].map { (n, $0) } }
    }
}
