import Checker
import Foundation
import Glibc
import TraceFormat

/// `conformance serve` as the peer under test: the binary, the attack's front-end connected to
/// it, bounded by `timeout -s KILL`, its exact trace written and checked as it runs (`--check`).
/// Front-end attacks only (serve is the back-end; there is nothing behind it).
public struct ServeUnderTest: PeerUnderTest {
    public let binary: String
    /// Short stall timeout so that stalls end fast; one session; two queue pairs.
    public var baseArgs = ["--stall-timeout", "0.5", "--sessions", "1", "--queues", "2", "--check"]
    public var grace = 3.0

    public init(binary: String) { self.binary = binary }

    /// The attacks serve meets: the front-end's, without recorder options.
    public static func applies(_ a: Attack) -> Bool {
        a.side == .frontEnd && a.args.isEmpty
    }

    public func run(_ attack: Attack) -> Outcome {
        let dir = NSTemporaryDirectory() + "hostile-serve-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { if ProcessInfo.processInfo.environment["HOSTILE_KEEP"] == nil { try? FileManager.default.removeItem(atPath: dir) } }
        let sock = dir + "/s.sock", trace = dir + "/t.trace", log = dir + "/serve.log"
        var outcome = Outcome()
        let limit = attack.duration + grace
        let args = ["timeout", "-s", "KILL", String(Int(limit + 5)), binary, "serve", "--socket", sock, "--trace", trace,
                    "--duration", String(attack.duration)] + baseArgs
        let t0 = Date()
        guard let proc = Spawned(args, log: log) else { outcome.forwardingProblem = "could not start \(binary)"; return outcome }
        if let after = attack.sigtermAfter {
            Thread.detachNewThread {
                usleep(UInt32(after * 1e6))
                proc.signal(SIGTERM)
            }
        }
        if attack.connects, let s = waitAndConnect(sock, until: t0.addingTimeInterval(5)) {
            let fe = HostileFrontEnd(socket: s, path: sock, memorySize: attack.memorySize, drainReplies: attack.drainReplies)
            fe.ringVq = 1
            attack.run(fe)
            fe.end()
        }
        let status = proc.wait(until: t0.addingTimeInterval(limit))
        outcome.seconds = Date().timeIntervalSince(t0)
        switch status {
        case .hung: outcome.hung = true
        case .signalled(let s): outcome.signal = s
        case .exited(let c):
            if c > 128 && c < 160 { outcome.signal = c - 128 } else { outcome.exitStatus = c }
        }
        if outcome.signal == SIGKILL { outcome.signal = nil; outcome.hung = true }
        outcome.stderr = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        outcome.traceBytes = Int((try? FileManager.default.attributesOfItem(atPath: trace)[.size] as? NSNumber)?.intValue ?? 0)
        if FileManager.default.fileExists(atPath: trace) {
            let report = CheckRun.check(path: trace)
            if let e = report.error { outcome.checkError = "\(e)" } else { outcome.checkStatus = CheckExit.status([report]) }
            outcome.rules = Set(report.findings.map(\.rule.rawValue))
            if let r = try? TraceReader(path: trace) {
                while let (e, _) = (try? r.next()) ?? nil { if e.kind == .ringGap { outcome.gaps.insert(UInt8(truncatingIfNeeded: e.p0)) } }
            }
        } else {
            outcome.checkError = "no trace written"
        }
        return outcome
    }

    private func waitAndConnect(_ path: String, until: Date) -> PeerSocket? {
        while Date() < until {
            if FileManager.default.fileExists(atPath: path), let s = PeerSocket.connect(path, within: 0.5) { return s }
            usleep(10_000)
        }
        return nil
    }
}
