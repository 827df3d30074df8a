import Testing
import Foundation
@testable import Proofs

/// Every suite that calls Z3 in this process nests here and runs one test at a time, so the
/// memory measurements below see only their own Z3 allocations.
@Suite(.serialized) struct Z3Tests {}

extension Z3Tests {
/// The Z3 bridge: answers, models, errors as Swift errors, timeouts, no leaks.
@Suite struct Z3SessionTests {
    @Test func satModelCopiesBitVectorsIntegersAndBools() throws {
        let z = try Z3Session()
        let r = try z.check("(declare-const x (_ BitVec 16)) (declare-const n Int) (declare-const b Bool) (assert (= x #x00ff)) (assert (= n (- 3))) (assert b)")
        guard case .sat(let m) = r else { Issue.record("expected sat, got \(r)"); return }
        #expect(m.int("x") == 255)
        #expect(m.int("n") == -3)
        #expect(m.bool("b") == true)
    }

    @Test func unsatIsReported() throws {
        let z = try Z3Session()
        #expect(try z.check("(declare-const x Int) (assert (> x 1)) (assert (< x 0))") == .unsat)
    }

    /// The default Z3 error handler would exit(1); ours must turn a bad query into a Swift error
    /// and leave the session usable.
    @Test func parseErrorIsASwiftErrorAndTheSessionSurvives() throws {
        let z = try Z3Session()
        #expect(throws: Z3Error.self) { try z.check("(assert (= x 1))") }           // undeclared
        #expect(throws: Z3Error.self) { try z.check("(declare-const x Int) (assert (bvadd x 1))") } // ill-sorted
        #expect(try z.check("(declare-const x Int) (assert (= x 1))") != .unsat)
    }

    /// `unknown` comes back as a result (the prover counts it as a failure), never as a pass.
    @Test func timeoutGivesUnknown() throws {
        let z = try Z3Session(timeoutMs: 50)
        // Balance with a symbolic 24-bit divisor: far beyond 50 ms.
        let r = try z.check("""
        (declare-const Q (_ BitVec 24)) (declare-const w (_ BitVec 24)) (declare-const r (_ BitVec 24)) (declare-const s (_ BitVec 24))
        (define-fun load ((r (_ BitVec 24))) (_ BitVec 24) (ite (bvult r Q) (bvudiv (bvsub (bvsub (bvadd Q w) r) (_ bv1 24)) w) (_ bv0 24)))
        (assert (not (= w (_ bv0 24)))) (assert (bvule Q (_ bv8388607 24))) (assert (bvule w (_ bv8388607 24)))
        (assert (bvult r w)) (assert (bvult s w)) (assert (bvuge (load r) (load s))) (assert (bvugt (bvsub (load r) (load s)) (_ bv1 24)))
        """)
        guard case .unknown = r else { Issue.record("expected unknown, got \(r)"); return }
        // A spec whose goal times out is `unknown`, which is not what the suite expects.
        let p = Prover(session: z)
        let o = p.run(Spec(name: "slow", kind: .property, source: "test", summary: "", goals: [
            Goal("g", "", smt: "(declare-const Q (_ BitVec 24)) (declare-const w (_ BitVec 24)) (assert (not (= w (_ bv0 24)))) (assert (not (bvule (bvurem (bvmul Q Q) w) (bvudiv (bvmul Q w) w))))"),
        ]))
        if o.status == .unknown { #expect(!o.asExpected) }
    }

    /// A goal whose premises contradict each other is unsat for no reason: the prover must call
    /// that vacuous and fail it, however "proven" it looks.
    @Test func vacuousPremisesFailAProperty() throws {
        let p = try Prover()
        let vacuous = Spec(name: "vacuous", kind: .property, source: "test", summary: "", goals: [
            Goal("contradiction", "", smt: "(declare-const x Int)\n(assert (> x 1))\n(assert (< x 0))\n(assert (not (= x x)))"),
        ])
        let o = p.run(vacuous)
        #expect(o.status == .proven)
        #expect(o.vacuous == ["contradiction"])
        #expect(!o.asExpected)
        // The same claim over satisfiable premises is fine.
        let fine = Spec(name: "fine", kind: .property, source: "test", summary: "", goals: [
            Goal("ok", "", smt: "(declare-const x Int)\n(assert (> x 1))\n(assert (not (> x 0)))"),
        ])
        #expect(p.run(fine).asExpected)
        #expect(Goal("g", "", smt: "(declare-const x Int)\n(assert (> x 1))\n(assert (not (> x 0)))").premises == "(declare-const x Int)\n(assert (> x 1))")
    }

    /// Z3's own allocation count in KiB: other test targets running concurrently in this process
    /// allocate Swift memory (which would blur the resident size) but no Z3 memory.
    static func residentKB() -> Int { Int(Z3Session.allocatedBytes / 1024) }

    /// 10,000 small queries on one session: reference counts must return every AST, solver and
    /// model, so resident memory stays flat (the plain, non-rc context would keep every AST).
    /// The simple solver keeps this at ~0.3 ms a query; the general one is checked below.
    @Test func tenThousandQueriesDoNotLeak() throws {
        let z = try Z3Session()
        func one(_ i: Int) throws {
            let r = try z.check("(declare-const x (_ BitVec 16)) (declare-const y (_ BitVec 16)) (assert (= (bvadd x y) #x\(String(format: "%04x", i % 65536)))) (assert (bvult x y))", solver: .simple)
            guard case .sat(let m) = r, m.int("x") != nil else { Issue.record("query \(i): \(r)"); return }
        }
        for i in 0..<1_000 { try one(i) }          // warm-up: allocator pools, Z3 caches
        let before = Self.residentKB()
        for i in 1_000..<10_000 { try one(i) }
        let grown = Self.residentKB() - before
        #expect(grown < 8 * 1024, "resident memory grew by \(grown) KiB over 9,000 queries")
    }

    /// The general solver (the one proofs use) returns its memory too.
    @Test func generalSolverQueriesDoNotLeak() throws {
        let z = try Z3Session()
        for _ in 0..<100 { _ = try z.check("(declare-const x (_ BitVec 16)) (assert (bvult x #x0003))") }
        let before = Self.residentKB()
        for _ in 0..<400 { _ = try z.check("(declare-const x (_ BitVec 16)) (assert (bvult x #x0003))") }
        let grown = Self.residentKB() - before
        #expect(grown < 8 * 1024, "resident memory grew by \(grown) KiB over 400 general-solver queries")
    }

    /// Sessions are created and destroyed freely (one per task); none leaks its context.
    @Test func manySessionsDoNotLeak() throws {
        for _ in 0..<50 { _ = try Z3Session().check("(declare-const b Bool) (assert b)") }
        let before = Self.residentKB()
        for _ in 0..<500 { _ = try Z3Session().check("(declare-const b Bool) (assert b)") }
        let grown = Self.residentKB() - before
        #expect(grown < 8 * 1024, "resident memory grew by \(grown) KiB over 500 sessions")
    }
}
}
