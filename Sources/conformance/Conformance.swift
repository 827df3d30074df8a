import ArgumentParser
import Checker
import Foundation

@main
struct Conformance: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformance",
        abstract: "Check multi-queue virtio-net / vhost implementations against a formal model.",
        discussion: """
        Exit codes: 0 conformant (or all proofs hold), 1 a rule was broken (or a proof failed), \
        2 usage error, unreadable or malformed input, Z3 unusable, 3 no rule broken but not \
        everything was judged (a ring not followed or lost, a ring format not modelled).
        """,
        version: "0.1.0",
        subcommands: [Check.self, Rules.self, Dump.self, Compile.self, Generate.self, EventTable.self, Prove.self, Record.self, ServeCmd.self, DriveCmd.self, Stats.self, Mutate.self]
    )

    /// Maps every outcome onto the documented exit codes: commands exit with `ExitCode(0/1/2)`;
    /// anything else (usage errors, which ArgumentParser would report as 64, or an unexpected
    /// error) is a 2, never a 1 that a CI job would read as "rule broken".
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch {
            let status = exitCode(for: error)
            if status == .success {
                print(fullMessage(for: error))
                Foundation.exit(ExitStatus.conformant)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(ExitStatus.usageOrInput)
        }
    }
}

/// Exit codes are part of the interface: CI systems gate on them.
/// The CLI's exit statuses: one definition, `CheckExit` (0 conformant, 1 violation, 2 usage or input, 3 incomplete).
enum ExitStatus {
    static let conformant = CheckExit.conformant
    static let violation = CheckExit.violation
    static let usageOrInput = CheckExit.usageOrInput
    static let incomplete = CheckExit.incomplete
}
