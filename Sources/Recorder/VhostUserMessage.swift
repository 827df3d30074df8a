import CSupport
import Glibc
import VirtioProtocol

/// One vhost-user message as it travelled on the socket: header, payload and the fds that came
/// with it. The proxy forwards exactly these bytes and fds, so neither peer sees a difference.
struct VhostUserMessage {
    var request: UInt32
    var flags: UInt32
    var payload: [UInt8]
    var fds: [Int32]

    var isReply: Bool { flags & VhostUser.flagReply != 0 }
    var needsReply: Bool { flags & VhostUser.flagNeedReply != 0 }
    var known: VhostUserRequest? { VhostUserRequest(rawValue: request) }
    var name: String { known.map { "\($0)" } ?? "request \(request)" }

    /// Header followed by payload, as sent.
    var bytes: [UInt8] {
        var b = [UInt8]()
        b.reserveCapacity(VhostUser.headerSize + payload.count)
        for v in [request, flags, UInt32(payload.count)] { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
        return b + payload
    }

    // Payload views. vhost-user uses host byte order; this tool runs on the same host as both peers.
    func u32(_ o: Int) -> UInt32? {
        guard o + 4 <= payload.count else { return nil }
        return payload.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt32.self) }
    }
    func u64(_ o: Int) -> UInt64? {
        guard o + 8 <= payload.count else { return nil }
        return payload.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt64.self) }
    }

    func closeFds() { for fd in fds { close(fd) } }
}

/// Why a message could not be read; the proxy ends the capture with this text.
enum MessageError: Error, CustomStringConvertible {
    case closed
    case io(String)
    case malformed(String)

    var description: String {
        switch self {
        case .closed: return "peer closed the connection"
        case .io(let s): return s
        case .malformed(let s): return "malformed message: \(s)"
        }
    }
}

enum MessageIO {
    /// Payloads above this are not vhost-user messages (the largest, SET_MEM_TABLE with 8 regions
    /// or GET_CONFIG with 256 bytes of config space, stay far below it).
    static let maxPayload = 4096

    static func read(_ sock: Int32) throws(MessageError) -> VhostUserMessage {
        var header = [UInt8](repeating: 0, count: VhostUser.headerSize)
        var fds = [Int32](repeating: -1, count: Int(CS_MAX_FDS))
        var nfds: Int32 = 0
        var truncated: Int32 = 0
        let n = header.withUnsafeMutableBytes { h in
            fds.withUnsafeMutableBufferPointer { f in
                cs_recv_with_fds(sock, h.baseAddress, h.count, f.baseAddress, CS_MAX_FDS, &nfds, &truncated)
            }
        }
        let received = Array(fds[0..<Int(max(nfds, 0))])
        func fail(_ e: MessageError) -> MessageError { for fd in received { close(fd) }; return e }
        if n == 0 { throw fail(.closed) }
        // A reset connection is a disconnect like any other.
        if n < 0 && errno == ECONNRESET { throw fail(.closed) }
        if n < 0 { throw fail(.io("read failed: \(String(cString: strerror(errno)))")) }
        if n < VhostUser.headerSize {
            // The rest of the header may still be on its way.
            let rest = header.withUnsafeMutableBytes { cs_read_full(sock, $0.baseAddress! + n, VhostUser.headerSize - n) }
            if rest <= 0 { throw fail(.malformed("truncated header: \(n) of \(VhostUser.headerSize) bytes before the connection ended")) }
        }
        let request = header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: UInt32.self) }
        let flags = header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self) }
        let size = header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self) }
        if truncated != 0 { throw fail(.malformed("request \(request) carries more than \(CS_MAX_FDS) file descriptors")) }
        guard size <= maxPayload else {
            throw fail(.malformed("request \(request) announces a \(size)-byte payload (at most \(maxPayload) expected)"))
        }
        var payload = [UInt8](repeating: 0, count: Int(size))
        if size > 0 {
            let got = payload.withUnsafeMutableBytes { cs_read_full(sock, $0.baseAddress, $0.count) }
            if got != Int(size) { throw fail(.malformed("request \(request): payload truncated (expected \(size) bytes)")) }
        }
        return VhostUserMessage(request: request, flags: flags, payload: payload, fds: received)
    }

    /// Sends the message with its fds. The caller still owns (and closes) its copies of the fds.
    static func write(_ sock: Int32, _ m: VhostUserMessage) throws(MessageError) {
        let b = m.bytes
        let r = b.withUnsafeBytes { raw in
            m.fds.withUnsafeBufferPointer { f in cs_send_with_fds(sock, raw.baseAddress, raw.count, f.baseAddress, Int32(f.count)) }
        }
        if r != 0 && (errno == EPIPE || errno == ECONNRESET) { throw .closed }
        if r != 0 { throw .io("forwarding \(m.name) failed: \(String(cString: strerror(errno)))") }
    }
}
