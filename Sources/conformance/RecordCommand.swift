import ArgumentParser

// Placeholder until its issue lands; replaced by the real command.
struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "record", abstract: "(not yet available)")
    func run() throws { throw ExitCode(2) }
}
