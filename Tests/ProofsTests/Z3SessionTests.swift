import Testing
import Foundation
@testable import Proofs

/// The Z3 bridge: answers, models, errors as Swift errors, timeouts, no leaks.
struct Z3SessionTests {
    @Test func satModelCopiesBitVectorsIntegersAndBools() throws {
        let z = try Z3Session()
        let r = try z.check("(declare-const x (_ BitVec 16)) (declare-const n Int) (declare-const b Bool) (assert (= x #x00ff)) (assert (= n (- 3))) (assert b)")
        guard case .sat(let m) = r else { Issue.record("expected sat, got \(r)"); return }
        #expect(m.int("x") == 255)
        #expect(m.int("n") == -3)
        #expect(m.bool("b") == true, "\(m)")
    }
}
