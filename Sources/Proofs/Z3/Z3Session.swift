import CZ3

/// Why a query could not be answered. `unknown` is reported as a result, not as an error:
/// the caller decides that it fails the proof (it never passes one).
public struct Z3Error: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    /// What to tell a user whose Z3 is missing or unusable.
    public static let installHint = "Z3 is needed for the proofs: install it with `apt-get install -y libz3-dev` (Debian/Ubuntu), then rebuild."
}

/// The answer to one satisfiability query.
public enum SatResult: Sendable, Equatable {
    /// No assignment satisfies the assertions (for a negated claim: the claim is proven).
    case unsat
    /// A satisfying assignment: constant name → value (bit-vectors and integers in decimal, Bools as true/false).
    case sat(Model)
    /// Z3 gave up (timeout, incompleteness). Always a failure for the caller.
    case unknown(reason: String)
}

/// A model copied out of Z3 into plain Swift values, so that it outlives the context.
public struct Model: Sendable, Equatable, CustomStringConvertible {
    public var values: [String: String]
    public init(_ values: [String: String] = [:]) { self.values = values }

    public subscript(_ name: String) -> String? { values[name] }
    /// Numeric value of a bit-vector or integer constant (nil if absent or not a number).
    public func int(_ name: String) -> Int? { values[name].flatMap { Int($0) } }
    public func bool(_ name: String) -> Bool? {
        switch values[name] { case "true": return true; case "false": return false; default: return nil }
    }
    public var description: String {
        values.keys.sorted().map { "\($0)=\(values[$0]!)" }.joined(separator: " ")
    }
}

/// One Z3 context with its error handler disarmed. Owns every Z3 object it hands out for the
/// duration of a call; nothing Z3-owned escapes (models are copied into `Model`).
///
/// Not Sendable on purpose: a Z3 context must not be shared across threads. Make one per task.
/// Uses the reference-counted context flavour so that a long loop of queries frees its ASTs
/// (the plain flavour keeps every AST until the context dies).
public final class Z3Session {
    private let ctx: Z3_context
    /// Per-query timeout in milliseconds (Z3's `timeout` solver parameter).
    public var timeoutMs: UInt32

    /// Which Z3 solver answers a query.
    public enum SolverKind: Sendable {
        /// `Z3_mk_solver`: logic-specific preprocessing tactics; about 4 ms to create.
        case general
        /// `Z3_mk_simple_solver`: the core SMT solver; about 0.2 ms to create, for many small
        /// concrete queries (differential tests) and for specs that prove fast without tactics.
        case simple
    }

    public init(timeoutMs: UInt32 = 10_000) throws {
        guard let cfg = Z3_mk_config() else { throw Z3Error("cannot create a Z3 configuration. " + Z3Error.installHint) }
        defer { Z3_del_config(cfg) }
        guard let c = Z3_mk_context_rc(cfg) else { throw Z3Error("cannot create a Z3 context. " + Z3Error.installHint) }
        // The default handler prints and calls exit(1): one malformed query would kill the CLI.
        Z3_set_error_handler(c, nil)
        ctx = c
        self.timeoutMs = timeoutMs
    }

    deinit { Z3_del_context(ctx) }

    /// Bytes Z3 currently has allocated, over all contexts of the process (its own accounting,
    /// unaffected by Swift allocations elsewhere).
    public static var allocatedBytes: UInt64 { Z3_get_estimated_alloc_size() }

    /// Z3's version string, e.g. "4.8.12.0".
    public static var version: String {
        var major: UInt32 = 0, minor: UInt32 = 0, build: UInt32 = 0, rev: UInt32 = 0
        Z3_get_version(&major, &minor, &build, &rev)
        return "\(major).\(minor).\(build).\(rev)"
    }

    /// Throws the pending error, if any, naming `stage`.
    private func checkError(_ stage: String) throws {
        let code = Z3_get_error_code(ctx)
        guard code != Z3_OK else { return }
        // Copy at once: the buffer is reused by the next call.
        let msg = Z3_get_error_msg(ctx, code).map { String(cString: $0) } ?? "error \(code.rawValue)"
        throw Z3Error("Z3 \(stage) failed: \(msg)")
    }

    /// Checks the satisfiability of SMT-LIB2 text made of declarations and assertions only
    /// (no `check-sat`: the C parser does not run commands). On `sat`, the model's constants
    /// are copied out; `modelNames` (if given) limits which ones.
    public func check(_ smt: String, solver kind: SolverKind = .general, modelNames: Set<String>? = nil) throws -> SatResult {
        // A failed call leaves its code set; clear it so it is not blamed on this query.
        Z3_set_error(ctx, Z3_OK)
        let vec = Z3_parse_smtlib2_string(ctx, smt, 0, nil, nil, 0, nil, nil)
        try checkError("parse")
        guard let vec else { throw Z3Error("Z3 parse returned nothing") }
        Z3_ast_vector_inc_ref(ctx, vec)
        defer { Z3_ast_vector_dec_ref(ctx, vec) }

        guard let solver = (kind == .simple ? Z3_mk_simple_solver(ctx) : Z3_mk_solver(ctx)) else { try checkError("mk_solver"); throw Z3Error("Z3 made no solver") }
        Z3_solver_inc_ref(ctx, solver)
        defer { Z3_solver_dec_ref(ctx, solver) }

        if let params = Z3_mk_params(ctx) {
            Z3_params_inc_ref(ctx, params)
            Z3_params_set_uint(ctx, params, Z3_mk_string_symbol(ctx, "timeout"), timeoutMs)
            Z3_solver_set_params(ctx, solver, params)
            Z3_params_dec_ref(ctx, params)
        }
        try checkError("set timeout")

        for i in 0..<Z3_ast_vector_size(ctx, vec) {
            Z3_solver_assert(ctx, solver, Z3_ast_vector_get(ctx, vec, i))
        }
        try checkError("assert")

        let answer = Z3_solver_check(ctx, solver)
        try checkError("check")
        switch answer {
        case Z3_L_FALSE:
            return .unsat
        case Z3_L_TRUE:
            return .sat(try model(of: solver, names: modelNames))
        default:
            let reason = Z3_solver_get_reason_unknown(ctx, solver).map { String(cString: $0) } ?? "unknown"
            return .unknown(reason: reason)
        }
    }

    /// Runs a whole SMT-LIB2 script, commands included (`push`, `check-sat`, ...), the way a
    /// standalone solver would, and returns what it printed. Used to check that the emitted
    /// `Specs/smt` files work as scripts on their own. The timeout applies to each check-sat.
    public func runScript(_ script: String) throws -> String {
        Z3_set_error(ctx, Z3_OK)
        // The script state lives in the context: reset it so earlier scripts' names are gone.
        // After push, Z3 answers with its incremental solver, several times slower on these
        // goals; after 50 ms it may fall back to the non-incremental one (same answers).
        let prefix = "(reset)\n(set-option :timeout \(timeoutMs))\n(set-option :combined_solver.solver2_timeout 50)\n"
        let out = Z3_eval_smtlib2_string(ctx, prefix + script).map { String(cString: $0) } ?? ""
        try checkError("script")
        return out
    }

    private func model(of solver: Z3_solver, names: Set<String>?) throws -> Model {
        guard let m = Z3_solver_get_model(ctx, solver) else { try checkError("get model"); return Model() }
        Z3_model_inc_ref(ctx, m)
        defer { Z3_model_dec_ref(ctx, m) }
        var out: [String: String] = [:]
        for i in 0..<Z3_model_get_num_consts(ctx, m) {
            guard let decl = Z3_model_get_const_decl(ctx, m, i) else { continue }
            let name = String(cString: Z3_get_symbol_string(ctx, Z3_get_decl_name(ctx, decl)))
            if let names, !names.contains(name) { continue }
            guard let value = Z3_model_get_const_interp(ctx, m, decl) else { continue }
            Z3_inc_ref(ctx, value)
            defer { Z3_dec_ref(ctx, value) }
            out[name] = render(value)
        }
        try checkError("read model")
        return Model(out)
    }

    private func render(_ a: Z3_ast) -> String {
        // Ask the sort first: Z3 4.8 reports `true`/`false` as numerals with an empty string.
        let kind = Z3_get_sort_kind(ctx, Z3_get_sort(ctx, a))
        if kind == Z3_BOOL_SORT {
            let b = Z3_get_bool_value(ctx, a)
            if b == Z3_L_TRUE { return "true" }
            if b == Z3_L_FALSE { return "false" }
        } else if (kind == Z3_BV_SORT || kind == Z3_INT_SORT) && Z3_is_numeral_ast(ctx, a) {
            return String(cString: Z3_get_numeral_string(ctx, a))
        }
        return String(cString: Z3_ast_to_string(ctx, a))
    }
}

extension Model {
    /// The goal that produced this model (set by the prover under the key `_goal`).
    public var goal: String? { values["_goal"] }
    /// The number in a goal named like "W=3".
    public var goalNumber: Int? {
        goal.flatMap { g in g.split(separator: "=").last.flatMap { Int($0) } }
    }
}
