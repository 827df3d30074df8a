import Glibc
import VirtioProtocol

/// One vhost-user message as it travels on the socket: header, payload bytes and the fds that came
/// with it. A proxy forwards exactly these bytes and fds; typed views decode the payload.
public struct Message: Sendable {
    public var header: MessageHeader
    public var payload: [UInt8]
    /// Received fds are owned by the message holder until closed (`closeFds`) or sent on.
    public var fds: [Int32]

    public init(header: MessageHeader, payload: [UInt8], fds: [Int32] = []) {
        self.header = header; self.payload = payload; self.fds = fds
    }

    /// A message with a typed payload; the header's size is the payload's.
    public init(_ request: VhostUserRequest, flags: MessageHeader.Flags = .version1, payload: some Payload, fds: [Int32] = []) {
        let p = payload.encode()
        self.init(header: MessageHeader(request: request.rawValue, flags: flags, size: UInt32(p.count)), payload: p, fds: fds)
    }

    /// A message without payload.
    public init(_ request: VhostUserRequest, flags: MessageHeader.Flags = .version1, fds: [Int32] = []) {
        self.init(header: MessageHeader(request: request.rawValue, flags: flags, size: 0), payload: [], fds: fds)
    }

    public var request: VhostUserRequest? { VhostUserRequest(rawValue: header.request) }
    public var isReply: Bool { header.flags.contains(.reply) }
    public var needsReply: Bool { header.flags.contains(.needReply) }
    public var name: String { request.map { "\($0)" } ?? "request \(header.request)" }

    /// Header followed by payload, as sent.
    public var bytes: [UInt8] { header.encode() + payload }

    /// The payload as `P`, if it is long enough (extra bytes are ignored, as back-ends do).
    public func decode<P: Payload>(_: P.Type) -> P? { P(decoding: payload) }

    public func closeFds() { for fd in fds where fd >= 0 { close(fd) } }
}
