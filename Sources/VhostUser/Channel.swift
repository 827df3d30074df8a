import CSupport
import Glibc
import VirtioProtocol

/// A vhost-user connection: whole messages in and out over a non-blocking Unix socket, every wait
/// bounded by an `IOBound`. A peer that stalls mid-message or stops reading costs at most the
/// bound; fds are collected from every segment of a message (a header sent alone, fds on the
/// payload), and more than `maxFds` is a malformed message, never a silent loss.
public final class Channel {
    /// Payloads above this are not vhost-user messages (the largest real ones, SET_MEM_TABLE with 8
    /// regions and GET_CONFIG with 256 bytes of config space, are below 300 bytes).
    public static let maxPayload = 4096
    /// Most fds one message carries (SET_MEM_TABLE with 8 regions).
    public static let maxFds = VhostUser.maxMemRegions

    public let fd: Int32
    private var closed = false

    /// Takes ownership of a connected socket and makes it non-blocking.
    public init(adopting fd: Int32) {
        self.fd = fd
        _ = cs_set_nonblocking(fd)
    }

    deinit { close() }

    public func close() {
        if !closed { Glibc.close(fd); closed = true }
    }

    /// Whether a message (or a hang-up) is waiting, within `timeoutNs`.
    public func readable(timeoutNs: Int) -> Bool {
        cs_poll_one(fd, Int32(POLLIN), timeoutNs) & Int32(POLLIN | POLLHUP | POLLERR) != 0
    }

    /// Reads one whole message. `.closed` when the peer left at a message boundary; `.malformed` for a
    /// header or payload cut short by the peer leaving, an oversized payload, or too many fds (every
    /// fd received so far is closed then); `.timedOut`/`.stopped` when the bound ends the wait.
    public func receive(within bound: IOBound) throws(VhostUserError) -> Message {
        var fds: [Int32] = []
        func fail(_ e: VhostUserError) -> VhostUserError {
            for f in fds { Glibc.close(f) }
            return e
        }
        var header = [UInt8](repeating: 0, count: MessageHeader.size)
        var got = 0
        while got < header.count {
            let have = got
            let n = try readSome(into: &header, from: got, fds: &fds, bound: bound) {
                have == 0 ? "no message arrived" : "peer stalled mid-header (\(have) of \(MessageHeader.size) bytes)"
            }
            if n == 0 {
                if got == 0 && fds.isEmpty { throw fail(.closed) }
                throw fail(.malformed("truncated header: \(got) of \(MessageHeader.size) bytes before the connection ended"))
            }
            got += n
        }
        let h = MessageHeader(decoding: header)!
        guard h.size <= UInt32(Channel.maxPayload) else {
            throw fail(.malformed("request \(h.request) announces a \(h.size)-byte payload (at most \(Channel.maxPayload))"))
        }
        var payload = [UInt8](repeating: 0, count: Int(h.size))
        got = 0
        while got < payload.count {
            let have = got
            let n = try readSome(into: &payload, from: got, fds: &fds, bound: bound) {
                "peer stalled mid-payload of request \(h.request) (\(have) of \(h.size) bytes)"
            }
            if n == 0 { throw fail(.malformed("request \(h.request): payload truncated (\(got) of \(h.size) bytes before the connection ended)")) }
            got += n
        }
        return Message(header: h, payload: payload, fds: fds)
    }

    /// One recv into `buf[from...]`, waiting in bounded slices while nothing is there. Returns the
    /// bytes read (0: the peer closed or reset the connection). Throws with every fd collected so
    /// far closed.
    private func readSome(into buf: inout [UInt8], from: Int, fds: inout [Int32], bound: IOBound,
                          stalled: () -> String) throws(VhostUserError) -> Int {
        var received = [Int32](repeating: -1, count: Int(CS_RECV_FDS))
        func drop() { for f in fds { Glibc.close(f) }; fds = [] }
        while true {
            var nfds: Int32 = 0, trunc: Int32 = 0
            let n = buf.withUnsafeMutableBytes { b in
                received.withUnsafeMutableBufferPointer { cs_recv_nb(fd, b.baseAddress! + from, b.count - from, $0.baseAddress, &nfds, &trunc) }
            }
            let e = errno
            fds += received[0..<Int(max(0, nfds))]
            if trunc != 0 || fds.count > Channel.maxFds {
                let count = fds.count
                drop()
                throw .malformed("a message carries \(trunc != 0 ? "more than \(CS_RECV_FDS)" : "\(count)") file descriptors (at most \(Channel.maxFds))")
            }
            if n >= 0 { return n }
            if e == ECONNRESET { return 0 }
            guard e == EAGAIN || e == EWOULDBLOCK else {
                drop()
                throw .io("read failed: \(String(cString: strerror(e)))")
            }
            guard let slice = bound.nextSlice() else {
                drop()
                throw bound.expired(stalled())
            }
            _ = cs_poll_one(fd, Int32(POLLIN), slice)
        }
    }

    /// Sends the message and its fds (attached to the first bytes that leave). The caller keeps its
    /// own copies of the fds. On `.timedOut` part of the message may have been sent: the stream is
    /// no longer usable and the caller must close it.
    public func send(_ m: Message, within bound: IOBound) throws(VhostUserError) {
        let bytes = m.bytes
        guard m.fds.count <= Int(CS_RECV_FDS) else { throw .malformed("\(m.fds.count) fds on one message") }
        var sent = 0
        var fdsPending = m.fds
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { b in
                fdsPending.withUnsafeBufferPointer { cs_send_nb(fd, b.baseAddress! + sent, b.count - sent, $0.baseAddress, Int32($0.count)) }
            }
            let e = errno
            if n > 0 { sent += n; fdsPending = []; continue }
            if e == EPIPE || e == ECONNRESET { throw .closed }
            guard e == EAGAIN || e == EWOULDBLOCK else { throw .io("sending \(m.name) failed: \(String(cString: strerror(e)))") }
            guard let slice = bound.nextSlice() else {
                throw bound.expired("peer stopped reading (\(sent) of \(bytes.count) bytes of \(m.name) sent)")
            }
            _ = cs_poll_one(fd, Int32(POLLOUT), slice)
        }
    }
}
