import ArgumentParser

@main
struct Conformance: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformance",
        abstract: "Check multi-queue virtio-net / vhost implementations against a formal model.",
        discussion: """
        Exit codes: 0 conformant (or all proofs hold), 1 a rule was broken (or a proof failed), \
        2 usage error, unreadable or malformed input, missing Z3.
        """,
        version: "0.1.0",
        subcommands: [Check.self, Rules.self, Dump.self, Compile.self, Prove.self, Record.self, Stats.self, Mutate.self]
    )
}

/// Exit codes are part of the interface: CI systems gate on them.
enum ExitStatus {
    static let conformant: Int32 = 0
    static let violation: Int32 = 1
    static let usageOrInput: Int32 = 2
}
