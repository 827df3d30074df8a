import ArgumentParser

// Placeholder until its issue lands; replaced by the real command.
struct Prove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prove", abstract: "(not yet available)")
    func run() throws { throw ExitCode(2) }
}
