import CSupport
import Foundation
import Glibc
import TestSupport

/// Processes the serve tests start: bounded by `timeout -s KILL`, stopped by PID only.
final class LiveProcess: @unchecked Sendable {
    let pid: Int32
    private(set) var status: Int32?

    /// The write end of the child's stdin, when it was started with one.
    private var input: Int32 = -1

    init(_ args: [String], log: String, stdin: Bool = false) throws {
        let fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(fd) }
        var cargs = args.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) } }
        var p: [Int32] = [-1, -1]
        if stdin { guard pipe(&p) == 0 else { throw POSIXError(.EMFILE) }; _ = fcntl(p[1], F_SETFD, FD_CLOEXEC); _ = fcntl(p[0], F_SETFD, FD_CLOEXEC) }
        pid = cs_spawn_in(&cargs, p[0], fd)
        if stdin { close(p[0]); input = p[1] }
        guard pid > 0 else { if input >= 0 { close(input) }; throw POSIXError(.ENOEXEC) }
    }

    deinit { if input >= 0 { close(input) } }

    /// Writes a line to the child's stdin (an interactive testpmd's command line).
    func send(_ line: String) {
        guard input >= 0 else { return }
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(input, $0.baseAddress, $0.count) }
    }

    var isRunning: Bool {
        if status != nil { return false }
        var st: Int32 = 0
        if cs_reap(pid, &st) == 1 { status = st }
        return status == nil
    }

    /// The exit status (`timeout` passes its child's on), or nil while running / when signalled.
    var exitCode: Int32? {
        guard let s = status, s & 0x7f == 0 else { return nil }
        return (s >> 8) & 0xff
    }

    func interrupt() { if isRunning { kill(pid, SIGINT) } }

    @discardableResult
    func wait(seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while isRunning && Date() < end { usleep(20_000) }
        return !isRunning
    }

    /// SIGINT (timeout forwards it), then SIGKILL to the child of `timeout` and to `timeout`.
    func stop() {
        guard isRunning else { return }
        interrupt()
        if wait(seconds: 5) { return }
        let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8))?
            .split(separator: " ").compactMap { Int32($0) } ?? []
        for c in children { kill(c, SIGKILL) }
        kill(pid, SIGKILL)
        wait(seconds: 2)
    }
}

enum Live {
    static let testpmd: String? = ["/usr/bin/dpdk-testpmd", "/usr/local/bin/dpdk-testpmd"].first { FileManager.default.isExecutableFile(atPath: $0) }

    static func waitFor(_ path: String, seconds: Double = 10) throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if FileManager.default.fileExists(atPath: path) { return }
            usleep(20_000)
        }
        throw POSIXError(.ETIMEDOUT)
    }

    /// `conformance serve` with the given options, bounded.
    static func serve(_ args: [String], log: String, limit: Int = 120) throws -> LiveProcess {
        guard let bin = ConformanceBinary.url?.path else { throw POSIXError(.ENOENT) }
        return try LiveProcess(["timeout", "-s", "KILL", String(limit), bin, "serve"] + args, log: log)
    }

    /// testpmd with a virtio-user port on `socket` (no hugepages, no PCI), io forwarding, driven
    /// through its command line on stdin (`send`): `start tx_first`, then `stop` (the forward
    /// statistics, with the rings still up), then `quit`.
    static func virtioUser(socket: String, pairs: Int, prefix: String, log: String, devargs: String = "", extra: [String] = []) throws -> LiveProcess {
        try LiveProcess(["timeout", "-s", "KILL", "90", testpmd!, "-l", "0-1", "--no-pci", "--no-huge", "-m", "512", "--single-file-segments",
                         "--file-prefix=\(prefix)", "--vdev", "net_virtio_user0,path=\(socket),queues=\(pairs)\(devargs)", "--",
                         "-i", "--rxq=\(pairs)", "--txq=\(pairs)", "--nb-cores=1", "--total-num-mbufs=32768"] + extra, log: log, stdin: true)
    }

    /// Runs io forwarding for `seconds`, stops it (testpmd prints its statistics; the rings stay up
    /// so the back-end finishes what was queued), then quits (the port closes).
    static func forward(_ fe: LiveProcess, seconds: Double) {
        fe.send("start tx_first")
        Thread.sleep(forTimeInterval: seconds)
        fe.send("stop")
        Thread.sleep(forTimeInterval: 1)
        fe.send("quit")
    }

    /// Per queue (RX-packets, TX-packets) from testpmd's final forward statistics; with one queue
    /// testpmd prints only the port totals.
    static func forwardStats(_ log: String, pairs: Int) throws -> [(rx: UInt64, tx: UInt64)] {
        let lines = log.split(separator: "\n").map(String.init)
        func numbers(_ line: String) -> [UInt64] { line.split(separator: " ").compactMap { UInt64($0) } }
        if pairs == 1 {
            guard let i = lines.firstIndex(where: { $0.contains("Forward statistics for port 0") }) else { throw POSIXError(.ENOMSG) }
            return [(numbers(lines[i + 1]).first ?? 0, numbers(lines[i + 2]).first ?? 0)]
        }
        var out: [(rx: UInt64, tx: UInt64)] = []
        for k in 0..<pairs {
            let i = lines.firstIndex { line in
                guard let r = line.range(of: "Forward Stats for RX Port= 0/Queue=") else { return false }
                return line[r.upperBound...].split(separator: "-").first.map { $0.trimmingCharacters(in: .whitespaces) } == "\(k)"
            }
            guard let i else { throw POSIXError(.ENOMSG) }
            let n = numbers(lines[i + 1])
            out.append((n.first ?? 0, n.count > 1 ? n[1] : 0))
        }
        return out
    }

    static func removeDPDKRuntime(_ prefix: String) {
        for d in ["/var/run/dpdk/\(prefix)", "\(ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"] ?? "/tmp")/dpdk/\(prefix)"] {
            try? FileManager.default.removeItem(atPath: d)
        }
    }
}

/// `serve --summary-json`.
struct ServeSummary: Decodable {
    struct VQ: Decodable { var vq: Int; var role: String; var worker: Int; var buffers: UInt64; var packets: UInt64; var drops: UInt64; var undelivered: UInt64; var interrupts: UInt64; var kicks: UInt64 }
    struct Worker: Decodable { var id: Int; var vqs: [Int]; var buffers: UInt64; var cpuSeconds: Double }
    var exitStatus: Int32
    var sessions: Int
    var events: UInt64
    var totalFindings: Int
    var rules: [String]
    var vqs: [VQ]
    var workers: [Worker]

    init(path: String) throws {
        self = try JSONDecoder().decode(ServeSummary.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
