import CSupport
import Foundation
import Glibc
import HostilePeers
import LiveCheck
@testable import Recorder
import TraceFormat

/// A recorder running in a background thread between two in-process fake peers, so proxy
/// behaviour can be pinned down without DPDK.
final class ProxyHarness: @unchecked Sendable {
    let dir: String
    let backendListener: Int32
    var frontend: Int32 = -1
    var backend: Int32 = -1
    let options: RecordOptions
    private let lock = NSLock()
    private var _result: LiveResult?
    private var _log: [String] = []
    private let done = DispatchSemaphore(value: 0)

    var tracePath: String { options.outputPath }
    var log: [String] { lock.withLock { _log } }

    init(check: Bool = false, stopOnViolation: Bool = false, tweak: (inout RecordOptions) -> Void = { _ in }) throws {
        dir = NSTemporaryDirectory() + "rec-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        backendListener = cs_unix_listen(dir + "/be.sock")
        guard backendListener >= 0 else { throw POSIXError(.EADDRINUSE) }
        var o = RecordOptions(listenPath: dir + "/fe.sock", connectPath: dir + "/be.sock", outputPath: dir + "/t.trace")
        o.handleSignals = false
        o.progressInterval = 0
        o.acceptTimeout = 10
        o.pollIntervalMicros = 100
        // The fake rings are 8 entries: a write-ahead of 32 would put every poll in the lap guard.
        o.writeAhead = 1
        tweak(&o)
        options = o
        let opts = o
        Thread.detachNewThread { [self] in
            let r = LiveRecord.run(opts, check: check, stopOnViolation: stopOnViolation, log: { line in self.lock.withLock { self._log.append(line) } })
            lock.withLock { _result = r }
            done.signal()
        }
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: o.listenPath) { usleep(10_000) }
        frontend = cs_unix_connect(o.listenPath)
        backend = cs_unix_accept(backendListener, 5000)
        guard frontend >= 0, backend >= 0 else { throw POSIXError(.ECONNREFUSED) }
    }

    /// Waits for the recorder to end (bounded) and returns its result.
    func finish(timeout: Double = 10) -> LiveResult? {
        _ = done.wait(timeout: .now() + timeout)
        return lock.withLock { _result }
    }

    func cleanup() {
        for fd in [frontend, backend, backendListener] where fd >= 0 { close(fd) }
        try? FileManager.default.removeItem(atPath: dir)
    }

    // MARK: wire helpers

    static func message(_ request: UInt32, flags: UInt32 = 1, payload: [UInt8] = []) -> [UInt8] {
        var b = [UInt8]()
        for v in [request, flags, UInt32(payload.count)] { withUnsafeBytes(of: v) { b += $0 } }
        return b + payload
    }

    static func payload(_ words: [Any]) -> [UInt8] {
        var b = [UInt8]()
        for w in words {
            switch w {
            case let v as UInt32: withUnsafeBytes(of: v) { b += $0 }
            case let v as UInt64: withUnsafeBytes(of: v) { b += $0 }
            default: fatalError("payload words are UInt32 or UInt64")
            }
        }
        return b
    }

    func send(_ sock: Int32, _ bytes: [UInt8], fds: [Int32] = []) {
        precondition(PeerSocket(borrowing: sock).send(bytes, fds: fds), "send failed")
    }

    /// Reads one whole message (header and payload) with its fds; nil when the peer closed.
    func receive(_ sock: Int32, timeoutMs: Int32 = 5000) -> (bytes: [UInt8], fds: [Int32])? {
        guard let m = PeerSocket(borrowing: sock).receiveMessage(within: Double(timeoutMs) / 1000) else { return nil }
        return (m.bytes, m.fds)
    }

    func events() throws -> [TraceEvent] {
        let r = try TraceReader(path: tracePath)
        var out: [TraceEvent] = []
        while let (e, _) = try r.next() { out.append(e) }
        return out
    }
}
