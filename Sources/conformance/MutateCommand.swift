import ArgumentParser

// Placeholder until its issue lands; replaced by the real command.
struct Mutate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mutate", abstract: "(not yet available)")
    func run() throws { throw ExitCode(2) }
}
