import Foundation

/// Runs the `conformance` executable that `swift test` built next to the test bundle, as a CI job
/// would: arguments in, exit status and both output streams back.
public enum ConformanceBinary {
    public struct NotBuilt: Error, CustomStringConvertible {
        public var description: String { "conformance executable not found next to the test bundle" }
    }

    public static var url: URL? {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for d in [dir, dir.deletingLastPathComponent()] {
            let u = d.appendingPathComponent("conformance")
            if FileManager.default.isExecutableFile(atPath: u.path) { return u }
        }
        return nil
    }

    public static func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        guard let bin = url else { throw NotBuilt() }
        let p = Process()
        p.executableURL = bin
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}
