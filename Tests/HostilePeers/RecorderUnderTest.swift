import CSupport
import Checker
import Foundation
import Glibc
import TraceFormat

/// What happened when an attack met the peer under test.
public struct Outcome: Sendable, CustomStringConvertible {
    /// Killed by a signal (its number), reported directly or by `timeout` as 128 + n.
    public var signal: Int32?
    /// Still running at the deadline plus grace: killed.
    public var hung = false
    public var exitStatus: Int32?
    public var seconds = 0.0
    public var stderr = ""
    public var traceBytes = 0
    /// `check` of the trace: nil when it could not be read (a garbage or missing file).
    public var checkStatus: Int32?
    public var checkError: String?
    public var gaps: Set<UInt8> = []
    /// Everything either peer received was sent by the other (bytes as a prefix, fds by identity).
    public var forwardedOnlySent = true
    public var forwardingProblem: String?

    public var description: String {
        if hung { return "hang (killed after \(String(format: "%.1f", seconds)) s)" }
        if let s = signal { return "killed by signal \(s) (\(s == SIGBUS ? "SIGBUS" : s == SIGSEGV ? "SIGSEGV" : s == SIGILL ? "SIGILL" : "signal"))" }
        var out = "exit \(exitStatus.map(String.init) ?? "?")"
        if let c = checkStatus { out += ", check \(c)" } else { out += ", trace unreadable (\(checkError ?? "?"))" }
        if !gaps.isEmpty { out += ", ring_gap \(gaps.sorted().map(String.init).joined(separator: ","))" }
        if !forwardedOnlySent { out += ", FORWARDED WHAT WAS NOT SENT" }
        return out
    }
}

/// `conformance record` as the peer under test, run as a CI job would: the binary, between the
/// attack's front-end and a test back-end, bounded by `timeout -s KILL`.
public struct RecorderUnderTest: Sendable {
    public let binary: String
    /// Options every run gets (short timeouts so that stalls end fast, small rings followed).
    public var baseArgs = ["--stall-timeout", "0.5", "--accept-timeout", "5", "--poll-interval-us", "100", "--write-ahead", "1", "--progress", "0", "--backend-retry", "1"]
    /// Seconds beyond the attack's duration the recorder may take to end.
    public var grace = 3.0

    /// An older recorder without the options added for hostile peers (for measuring "before").
    public var legacy = false

    public init(binary: String, legacy: Bool = false) {
        self.binary = binary; self.legacy = legacy
        if legacy { baseArgs = ["--accept-timeout", "5", "--poll-interval-us", "100", "--progress", "0"] }
    }

    public func run(_ attack: Attack) -> Outcome {
        let dir = NSTemporaryDirectory() + "hostile-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fePath = dir + "/fe.sock", bePath = dir + "/be.sock", trace = dir + "/t.trace", log = dir + "/rec.log"
        var outcome = Outcome()
        guard let be = try? TestBackEnd(path: bePath, behaviour: attack.backEnd) else {
            outcome.forwardingProblem = "test back-end could not listen"
            return outcome
        }
        let limit = attack.duration + grace
        let args = ["timeout", "-s", "KILL", String(Int(limit + 5)), binary, "record", "--listen", fePath, "--connect", bePath,
                    "-o", trace, "--duration", String(attack.duration)] + baseArgs + (legacy ? attack.args.filter { $0 != "--stall-timeout" && $0 != "30" } : attack.args)
        let t0 = Date()
        let proc = Spawned(args, log: log)
        guard let proc else { outcome.forwardingProblem = "could not start \(binary)"; be.stop(); return outcome }
        if let after = attack.sigtermAfter {
            Thread.detachNewThread {
                usleep(UInt32(after * 1e6))
                proc.signal(SIGTERM)
            }
        }
        var fe: HostileFrontEnd?
        if attack.connects, let s = waitAndConnect(fePath, until: t0.addingTimeInterval(5)) {
            let f = HostileFrontEnd(socket: s, path: fePath, memorySize: attack.memorySize, drainReplies: attack.drainReplies)
            fe = f
            attack.run(f)
            f.end()
        }
        let status = proc.wait(until: t0.addingTimeInterval(limit))
        outcome.seconds = Date().timeIntervalSince(t0)
        be.stop()
        switch status {
        case .hung: outcome.hung = true
        case .signalled(let s): outcome.signal = s
        case .exited(let c):
            // `timeout` reports a child killed by signal n as 128 + n.
            if c > 128 && c < 160 { outcome.signal = c - 128 } else { outcome.exitStatus = c }
        }
        // SIGKILL comes only from `timeout`'s bound or from us at the deadline: a hang.
        if outcome.signal == SIGKILL { outcome.signal = nil; outcome.hung = true }
        outcome.stderr = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        if let keep = ProcessInfo.processInfo.environment["HOSTILE_KEEP"] {
            try? FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
            try? FileManager.default.copyItem(atPath: trace, toPath: "\(keep)/\(attack.name).trace")
            try? FileManager.default.copyItem(atPath: log, toPath: "\(keep)/\(attack.name).log")
        }
        outcome.traceBytes = Int((try? FileManager.default.attributesOfItem(atPath: trace)[.size] as? NSNumber)?.intValue ?? 0)
        let report = CheckRun.check(path: trace)
        if let e = report.error { outcome.checkError = "\(e)" } else { outcome.checkStatus = CheckExit.status([report]) }
        if let r = try? TraceReader(path: trace) {
            while let (e, _) = (try? r.next()) ?? nil { if e.kind == .ringGap { outcome.gaps.insert(UInt8(truncatingIfNeeded: e.p0)) } }
        }
        if let fe { checkForwarding(fe: fe.sessions, be: be, fdsReplaced: attack.expect.fdsReplaced, into: &outcome) }
        return outcome
    }

    private func waitAndConnect(_ path: String, until: Date) -> PeerSocket? {
        while Date() < until {
            if FileManager.default.fileExists(atPath: path), let s = PeerSocket.connect(path, within: 0.5) { return s }
            usleep(10_000)
        }
        return nil
    }

    /// Each direction: what arrived is a prefix of what the other side sent; every fd that arrived
    /// is one the other side sent (unless the recorder's relayed eventfds stand in for them).
    private func checkForwarding(fe sessions: [PeerSocket], be: TestBackEnd, fdsReplaced: Bool, into o: inout Outcome) {
        let beReceived = be.connections.flatMap(\.received), beSent = be.connections.flatMap(\.sent)
        let feSent = sessions.flatMap(\.sent), feReceived = sessions.flatMap(\.received)
        if !feSent.starts(with: beReceived) {
            o.forwardedOnlySent = false
            o.forwardingProblem = "the back-end received \(beReceived.count) bytes that are not a prefix of the \(feSent.count) the front-end sent"
        } else if !beSent.starts(with: feReceived) {
            o.forwardedOnlySent = false
            o.forwardingProblem = "the front-end received \(feReceived.count) bytes that are not a prefix of the \(beSent.count) the back-end sent"
        } else if !fdsReplaced {
            let sentF = Set(sessions.flatMap(\.sentFiles)), gotF = be.connections.flatMap(\.receivedFiles)
            let sentB = Set(be.connections.flatMap(\.sentFiles)), gotB = sessions.flatMap(\.receivedFiles)
            if let x = gotF.first(where: { !sentF.contains($0) }) {
                o.forwardedOnlySent = false; o.forwardingProblem = "the back-end received an fd (inode \(x.ino)) the front-end never sent"
            } else if let x = gotB.first(where: { !sentB.contains($0) }) {
                o.forwardedOnlySent = false; o.forwardingProblem = "the front-end received an fd (inode \(x.ino)) the back-end never sent"
            }
        }
    }
}

/// A child process (under `timeout -s KILL`), controlled by its PID only.
public final class Spawned: @unchecked Sendable {
    public let pid: Int32
    private let lock = NSLock()
    private var status: Int32?

    public init?(_ args: [String], log: String) {
        let fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var cargs = args.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) } }
        let p = cs_spawn(&cargs, fd)
        guard p > 0 else { return nil }
        pid = p
    }

    public enum End: Sendable { case exited(Int32), signalled(Int32), hung }

    /// The PID of the program `timeout` runs (its only child).
    public var child: Int32? {
        let s = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
        return s.split(separator: " ").compactMap { Int32($0) }.first
    }

    public func signal(_ s: Int32) { if lock.withLock({ status == nil }) { kill(pid, s) } }

    /// Waits for the end until `until`; past it, kills the child and `timeout` and says it hung.
    public func wait(until: Date) -> End {
        while true {
            var st: Int32 = 0
            if cs_reap(pid, &st) == 1 {
                lock.withLock { status = st }
                let sig = st & 0x7f
                return sig == 0 ? .exited((st >> 8) & 0xff) : .signalled(sig)
            }
            if Date() >= until {
                if let c = child { kill(c, SIGKILL) }
                kill(pid, SIGKILL)
                var st2: Int32 = 0
                for _ in 0..<100 where cs_reap(pid, &st2) != 1 { usleep(10_000) }
                lock.withLock { status = st2 }
                return .hung
            }
            usleep(5_000)
        }
    }

    /// Open fds of the program `timeout` runs, or nil.
    public var childFdCount: Int? {
        guard let c = child, let l = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(c)/fd") else { return nil }
        return l.count
    }

    /// Resident set size of the program `timeout` runs, in KiB.
    public var childRSSKiB: Int? {
        guard let c = child, let s = try? String(contentsOfFile: "/proc/\(c)/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return line.split(separator: " ").compactMap { Int($0) }.first
    }
}

/// One long-running recorder (`--reconnect`) that front-end attacks meet one session after the
/// other: its fds and memory are sampled between passes to show nothing accumulates.
public final class LongRunningRecorder {
    public let dir: String
    public let fePath: String
    public let proc: Spawned
    public let backEnd: TestBackEnd

    public init?(binary: String, seconds: Double) {
        dir = NSTemporaryDirectory() + "hostile-long-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        fePath = dir + "/fe.sock"
        guard let be = try? TestBackEnd(path: dir + "/be.sock") else { return nil }
        backEnd = be
        let args = ["timeout", "-s", "KILL", String(Int(seconds + 10)), binary, "record", "--listen", fePath, "--connect", dir + "/be.sock",
                    "-o", dir + "/t.trace", "--duration", String(seconds), "--reconnect", "--stall-timeout", "0.5", "--accept-timeout", "10",
                    "--poll-interval-us", "100", "--write-ahead", "1", "--progress", "0", "--backend-retry", "1"]
        guard let p = Spawned(args, log: dir + "/rec.log") else { be.stop(); return nil }
        proc = p
        for _ in 0..<500 where !FileManager.default.fileExists(atPath: fePath) { usleep(10_000) }
    }

    public var tracePath: String { dir + "/t.trace" }
    public var log: String { (try? String(contentsOfFile: dir + "/rec.log", encoding: .utf8)) ?? "" }

    /// Runs one front-end attack as one session; returns when the recorder has ended the session.
    public func session(_ attack: Attack) {
        guard let s = PeerSocket.connect(fePath, within: 5) else { return }
        let fe = HostileFrontEnd(socket: s, path: fePath, memorySize: attack.memorySize, drainReplies: attack.drainReplies)
        attack.run(fe)
        fe.end()
        // The session is over when the recorder has closed its back-end connection too.
        let end = Date().addingTimeInterval(5)
        while Date() < end, let c = backEnd.connections.last, !c.peerClosed { usleep(10_000) }
    }

    /// SIGTERM; returns how it ended.
    public func stop() -> Spawned.End {
        proc.signal(SIGTERM)
        let r = proc.wait(until: Date().addingTimeInterval(5))
        backEnd.stop()
        return r
    }

    public func cleanup() { try? FileManager.default.removeItem(atPath: dir) }
}

/// What the hostile-peer suite runs attacks against. The recorder is one; `serve` (a back-end:
/// front-end attacks only, no back-end behind it) and `drive` (a front-end: back-end attacks)
/// implement the same entry point, and bring their own expectations where a proxy's differ.
public protocol PeerUnderTest: Sendable {
    func run(_ attack: Attack) -> Outcome
}

extension RecorderUnderTest: PeerUnderTest {}
