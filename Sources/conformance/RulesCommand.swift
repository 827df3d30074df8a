import ArgumentParser

struct Rules: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rules", abstract: "(in progress)")
    func run() throws { throw ExitCode(2) }
}
