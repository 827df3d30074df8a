import Foundation

/// Runs an executable `swift build` put next to the test bundle (`conformance`, `conformance-fuzz`),
/// telling a clean exit from a death by signal: a trap (SIGILL) has status 4, which a plain status
/// check could mistake for an exit status.
enum Tools {
    struct NotBuilt: Error, CustomStringConvertible {
        let name: String
        var description: String { "\(name) not found next to the test bundle" }
    }

    struct Result {
        let status: Int32
        /// Killed by a signal (a trap, a crash), or by the watchdog.
        let signaled: Bool
        let timedOut: Bool
        let out: String
        let err: String
        /// Exited by itself with one of the documented statuses 0-3.
        var clean: Bool { !signaled && !timedOut && (0...3).contains(status) }
    }

    static func url(_ name: String) -> URL? {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for d in [dir, dir.deletingLastPathComponent()] {
            let u = d.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: u.path) { return u }
        }
        return nil
    }

    static func path(_ name: String) throws -> String {
        guard let u = url(name) else { throw NotBuilt(name: name) }
        return u.path
    }

    /// Runs `/bin/sh -c script args...` (for resource limits: `ulimit -v ...; exec "$0" ...`).
    static func shell(_ script: String, _ args: String..., timeout: Double = 120) throws -> Result {
        try run(URL(fileURLWithPath: "/bin/sh"), ["-c", script] + args, timeout: timeout)
    }

    /// Runs `name args`, killed after `timeout` seconds (a hang is a failure, not a stuck test run).
    static func run(_ name: String, _ args: [String], timeout: Double = 120) throws -> Result {
        guard let bin = url(name) else { throw NotBuilt(name: name) }
        return try run(bin, args, timeout: timeout)
    }

    static func run(_ bin: URL, _ args: [String], timeout: Double = 120) throws -> Result {
        let p = Process()
        p.executableURL = bin
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["SWIFT_BACKTRACE"] = "enable=no"
        p.environment = env
        // Files, not pipes: nothing can block the child, however much it writes.
        let outPath = temp("out-\(UUID().uuidString)"), errPath = temp("err-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outPath); try? FileManager.default.removeItem(atPath: errPath) }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let killed = Flag(), finished = Flag()
        let pid = p.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
            // Only the child this call started, and only while it still runs (never a reused pid).
            if !finished.isSet && p.isRunning { killed.set(); kill(pid, SIGKILL) }
        }
        p.waitUntilExit()
        finished.set()
        try? out.close(); try? err.close()
        let o = FileManager.default.contents(atPath: outPath) ?? Data()
        let e = FileManager.default.contents(atPath: errPath) ?? Data()
        return Result(status: p.terminationStatus, signaled: p.terminationReason == .uncaughtSignal, timedOut: killed.isSet,
                      out: String(decoding: o, as: UTF8.self), err: String(decoding: e, as: UTF8.self))
    }

    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        func set() { lock.lock(); value = true; lock.unlock() }
        var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    }

    static func temp(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("conformance-hostile-\(getpid())-\(name)").path
    }
}

/// `Tests/Regressions`, located from this source file.
enum Regressions {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Regressions")
    static func trace(_ name: String) -> String { root.appendingPathComponent("traces/\(name)").path }
    static let traces = root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Traces")
}
