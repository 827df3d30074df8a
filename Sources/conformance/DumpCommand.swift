import ArgumentParser

struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dump", abstract: "(in progress)")
    func run() throws { throw ExitCode(2) }
}
