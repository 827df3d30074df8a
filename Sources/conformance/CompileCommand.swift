import ArgumentParser

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "compile", abstract: "(in progress)")
    func run() throws { throw ExitCode(2) }
}
