import CSupport
import Foundation
import Glibc
import VhostUser
import VirtioProtocol

/// One end of a vhost-user connection as a test peer drives it: raw bytes and fds in and out
/// (so it can send what no well-behaved peer would), with a transcript of everything it sent and
/// received for the "nothing forwarded that was not sent" assertion.
public final class PeerSocket: @unchecked Sendable {
    public let fd: Int32
    private let lock = NSLock()
    private var _sent: [UInt8] = []
    private var _received: [UInt8] = []
    private var _sentFiles: [FileIdentity] = []
    private var _receivedFiles: [FileIdentity] = []
    public private(set) var isClosed = false
    /// The other side closed the connection (seen by a receive).
    public var peerClosed: Bool { lock.withLock { _peerClosed } }
    private var _peerClosed = false

    private let owns: Bool
    public init(fd: Int32) { self.fd = fd; owns = true }
    /// A view of a socket someone else owns and closes.
    public init(borrowing fd: Int32) { self.fd = fd; owns = false }

    /// Connects to a listening Unix socket (retrying up to `seconds` while it is not there yet).
    public static func connect(_ path: String, within seconds: Double = 5) -> PeerSocket? {
        let end = Date().addingTimeInterval(seconds)
        repeat {
            let s = cs_unix_connect(path)
            if s >= 0 { return PeerSocket(fd: s) }
            usleep(10_000)
        } while Date() < end
        return nil
    }

    public var sent: [UInt8] { lock.withLock { _sent } }
    public var received: [UInt8] { lock.withLock { _received } }
    public var sentFiles: [FileIdentity] { lock.withLock { _sentFiles } }
    public var receivedFiles: [FileIdentity] { lock.withLock { _receivedFiles } }

    /// Sends bytes (with fds on the first chunk). False if the peer is gone or the send would block
    /// for longer than `seconds` (a recorder that stopped reading).
    @discardableResult
    public func send(_ bytes: [UInt8], fds: [Int32] = [], within seconds: Double = 2) -> Bool {
        let end = IOBound.now &+ UInt64(seconds * 1e9)
        var off = 0
        var pending = fds
        while off < bytes.count || (bytes.isEmpty && !pending.isEmpty) {
            let n = bytes.withUnsafeBytes { b in pending.withUnsafeBufferPointer { cs_send_nb(fd, b.baseAddress! + off, b.count - off, $0.baseAddress, Int32($0.count)) } }
            if n > 0 {
                lock.withLock {
                    _sent += bytes[off..<off + n]
                    _sentFiles += pending.map(FileIdentity.init)
                }
                off += n; pending = []
                continue
            }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && IOBound.now < end {
                _ = cs_poll_one(fd, Int32(POLLOUT), 10_000_000)
                continue
            }
            return false
        }
        return true
    }

    @discardableResult
    public func send(_ m: Message) -> Bool { send(m.bytes, fds: m.fds) }

    /// Reads whatever arrives within `seconds` up to one whole message (header + announced payload),
    /// with the fds. nil when nothing came or the peer closed.
    public func receiveMessage(within seconds: Double = 2) -> Message? {
        let c = Channel(adopting: dup(fd))
        defer { c.close() }
        // Wait for the first byte within `seconds`, then give the rest of the message its own
        // second: a timeout never falls in the middle of a message a well-behaved sender sent.
        guard c.readable(timeoutNs: Int(seconds * 1e9)) else { return nil }
        let m: Message
        do { m = try c.receive(within: .within(max(1, seconds))) } catch {
            if case .timedOut = error { return nil }
            lock.withLock { _peerClosed = true }
            return nil
        }
        lock.withLock {
            _received += m.bytes
            _receivedFiles += m.fds.map(FileIdentity.init)
        }
        return m
    }

    /// Drains and records everything that arrives within `seconds` (closing received fds).
    public func drain(for seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            guard let m = receiveMessage(within: max(0.01, end.timeIntervalSinceNow)) else { return }
            m.closeFds()
        }
    }

    /// Whether the other side closed (EOF) within `seconds`.
    public func seesClose(within seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        var b = [UInt8](repeating: 0, count: 4096)
        while Date() < end {
            let r = cs_poll_one(fd, Int32(POLLIN), 20_000_000)
            if r == 0 { continue }
            var nfds: Int32 = 0, trunc: Int32 = 0
            var fds = [Int32](repeating: -1, count: Int(CS_RECV_FDS))
            let n = b.withUnsafeMutableBytes { p in fds.withUnsafeMutableBufferPointer { cs_recv_nb(fd, p.baseAddress, p.count, $0.baseAddress, &nfds, &trunc) } }
            for f in fds.prefix(Int(nfds)) { Glibc.close(f) }
            if n == 0 || (n < 0 && errno == ECONNRESET) { return true }
            if n > 0 { lock.withLock { _received += b[0..<n] } }
        }
        return false
    }

    public func close() {
        lock.withLock {
            if !isClosed { if owns { Glibc.close(fd) }; isClosed = true }
        }
    }

    deinit { close() }
}

/// A file's identity (device, inode) so fds can be compared across processes.
public struct FileIdentity: Hashable, Sendable {
    public let dev: UInt64
    public let ino: UInt64
    public init(_ fd: Int32) {
        var st = stat()
        fstat(fd, &st)
        dev = UInt64(st.st_dev); ino = UInt64(st.st_ino)
    }
}
