import Testing
import Foundation
@testable import Proofs

/// The SMT-LIB2 files under Specs/smt/ are what reviewers and other solvers read; they must be
/// exactly what the Swift specs emit (`conformance prove --emit Specs/smt` regenerates them).
extension Z3Tests { @Suite struct EmittedSpecTests {
    static var smtDir: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Specs/smt")
    }

    @Test func committedSpecFilesEqualTheEmittedOnes() throws {
        for s in Catalogue.all {
            let url = Self.smtDir.appendingPathComponent(s.fileName)
            let committed = try? String(contentsOf: url, encoding: .utf8)
            #expect(committed == s.smtlib(), "\(s.fileName) differs from the emitted text: run `conformance prove --emit Specs/smt`")
        }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: Self.smtDir.path)) ?? []
        #expect(Set(files.filter { $0.hasSuffix(".smt2") }) == Set(Catalogue.all.map(\.fileName)), "stale or missing files in Specs/smt")
    }

    /// Each committed file runs as a standalone script (push / check-sat / pop), as another
    /// solver would run it: a property answers unsat to every goal, a variant sat to at least one.
    /// The files are run unchanged; `runScript` only lets Z3 leave its slow incremental mode.
    /// The timeout stays generous for a loaded machine.
    @Test func committedSpecFilesRunAsStandaloneScripts() throws {
        let z = try Z3Session(timeoutMs: 120_000)
        for s in Catalogue.all {
            let text = try String(contentsOf: Self.smtDir.appendingPathComponent(s.fileName), encoding: .utf8)
            let answers = try z.runScript(text).split(whereSeparator: \.isNewline).map(String.init)
            #expect(answers.count == s.goals.count, "\(s.fileName): \(answers)")
            if s.isVariant {
                #expect(answers.contains("sat"), "\(s.fileName): \(answers)")
                #expect(!answers.contains("unknown"))
            } else {
                #expect(answers.allSatisfy { $0 == "unsat" }, "\(s.fileName): \(answers)")
            }
        }
    }

    /// Each spec opens with its name and its spec source, and each goal expects an answer.
    @Test func everySpecFileNamesItsSourceAndExpectations() {
        for s in Catalogue.all {
            let text = s.smtlib()
            #expect(text.hasPrefix("; \(s.name)"))
            #expect(text.contains("; Spec source: "))
            #expect(text.components(separatedBy: "(check-sat)").count - 1 == s.goals.count)
            #expect(!s.source.isEmpty && !s.summary.isEmpty)
        }
    }
}
}
