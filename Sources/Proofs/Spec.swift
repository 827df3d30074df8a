import VirtioProtocol
import TraceFormat

/// One satisfiability query of a spec: the *negation* of a claim (or, for a broken variant,
/// the negation of the claim the variant gets wrong). `unsat` means the claim holds.
public struct Goal: Sendable {
    /// Short name, unique within its spec (e.g. "step-publish", "W=3").
    public let name: String
    /// The claim in words (becomes the SMT comment above the goal).
    public let claim: String
    /// Declarations and assertions (no check-sat), after the spec's prelude.
    public let smt: String
    /// Constants a reader wants to see in a counterexample, in order.
    public let shown: [String]
    /// Which Z3 solver to use: the general one (default) pays ~4 ms to set up its tactics,
    /// which only small linear goals are better off without.
    public let solver: Z3Session.SolverKind

    public init(_ name: String, _ claim: String, shown: [String] = [], solver: Z3Session.SolverKind = .general, smt: String) {
        self.name = name; self.claim = claim; self.smt = smt; self.shown = shown; self.solver = solver
    }

    /// The goal without its last assertion (the negated claim): its premises. They must be
    /// satisfiable, or the goal would be unsat for no reason (a vacuous proof). This is the
    /// analogue of a reachability `cover` in a model checker.
    public var premises: String {
        guard let r = smt.range(of: "\n(assert ", options: .backwards) ?? (smt.hasPrefix("(assert ") ? smt.range(of: "(assert ") : nil) else {
            return smt
        }
        return String(smt[..<r.lowerBound])
    }
}

/// What a refuted variant's counterexample becomes at runtime: a trace and the rule the checker
/// must report on it (nil: the trace is conformant, and the checker must report nothing).
public struct WitnessTrace: Sendable {
    public let header: TraceHeader
    public let events: [TraceEvent]
    public let expectedRule: RuleID?
    public init(header: TraceHeader, events: [TraceEvent], expectedRule: RuleID?) {
        self.header = header; self.events = events; self.expectedRule = expectedRule
    }
}

/// A property (all goals must be unsat) or a broken variant of one (some goal must be sat).
public struct Spec: Sendable {
    public enum Kind: Sendable, Equatable {
        case property
        /// A deliberately broken version of the named property; Z3 must refute it.
        case variant(of: String)
    }

    /// "ring-ownership" for a property; "ring-ownership/publish-unbounded" for a variant.
    public let name: String
    public let kind: Kind
    /// Where the requirement comes from (spec section, kernel function, seed byte offset).
    public let source: String
    /// What is claimed (property) or what is broken (variant), in one or two sentences.
    public let summary: String
    /// Shared definitions (define-fun) that every goal sees.
    public let prelude: String
    public let goals: [Goal]
    /// Extra assertions tried first when a variant is refuted, to get a small counterexample
    /// (a short trace). The refutation itself never depends on them.
    public let smallWitness: String?
    /// The counterexample in words.
    public let explain: @Sendable (Model) -> String
    /// The counterexample as a trace (variants of ring and mapping properties and SET_OWNER).
    public let trace: (@Sendable (Model) -> WitnessTrace?)?

    public init(name: String, kind: Kind, source: String, summary: String, prelude: String = "", goals: [Goal],
                smallWitness: String? = nil,
                explain: @escaping @Sendable (Model) -> String = { $0.description },
                trace: (@Sendable (Model) -> WitnessTrace?)? = nil) {
        self.name = name; self.kind = kind; self.source = source; self.summary = summary
        self.prelude = prelude; self.goals = goals; self.smallWitness = smallWitness
        self.explain = explain; self.trace = trace
    }

    public var isVariant: Bool { kind != .property }
    /// The property this spec belongs to (itself for a property).
    public var property: String {
        if case .variant(let p) = kind { return p }
        return name
    }

    /// The text Z3 parses for one goal.
    public func query(_ g: Goal, extra: String? = nil) -> String {
        var s = prelude
        if !s.isEmpty && !s.hasSuffix("\n") { s += "\n" }
        s += g.smt
        if let extra { s += "\n" + extra }
        return s
    }

    /// File name under `Specs/smt/` (a variant's slash becomes a double dash).
    public var fileName: String { name.replacingOccurrences(of: "/", with: "--") + ".smt2" }

    /// The spec as a standalone SMT-LIB2 script any solver can run: each goal in its own
    /// push/pop scope, followed by `check-sat` and the expected answer.
    public func smtlib() -> String {
        var out = ""
        func comment(_ text: String) {
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                out += line.isEmpty ? ";\n" : "; \(line)\n"
            }
        }
        comment("\(name)\(isVariant ? " (broken variant of \(property))" : "")")
        comment("Spec source: \(source)")
        comment(summary)
        if isVariant {
            comment("Expected: at least one check-sat below answers sat (Z3 refutes the variant).")
        } else {
            comment("Expected: every check-sat below answers unsat (each goal asserts a negated claim).")
        }
        comment("Generated by `conformance prove --emit`; do not edit by hand.")
        out += "\n"
        if !prelude.isEmpty { out += prelude.hasSuffix("\n") ? prelude : prelude + "\n"; out += "\n" }
        for g in goals {
            comment("goal \(g.name): \(g.claim)")
            out += "(push 1)\n"
            out += g.smt.hasSuffix("\n") ? g.smt : g.smt + "\n"
            out += "(check-sat) ; \(isVariant ? "sat expected for at least one goal" : "expect unsat")\n"
            out += "(pop 1)\n\n"
        }
        return out
    }
}

/// Renders small numbers as SMT-LIB2 literals.
enum SMT {
    /// A 16-bit bit-vector literal, e.g. `#x8000`.
    static func bv16(_ v: Int) -> String {
        let h = String(UInt16(truncatingIfNeeded: v), radix: 16)
        return "#x" + String(repeating: "0", count: 4 - h.count) + h
    }
    static func hex16(_ v: Int) -> String {
        "0x" + String(UInt16(truncatingIfNeeded: v), radix: 16)
    }
}
