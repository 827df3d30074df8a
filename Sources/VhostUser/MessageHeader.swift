import VirtioProtocol

/// The 12-byte vhost-user header: request id, flags, payload size (host byte order).
public struct MessageHeader: Equatable, Sendable {
    public static let size = VhostUser.headerSize

    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// Bits 0-1: the protocol version, 1.
        public static let version1 = Flags(rawValue: VhostUser.version)
        public static let reply = Flags(rawValue: VhostUser.flagReply)
        public static let needReply = Flags(rawValue: VhostUser.flagNeedReply)
        public var version: UInt32 { rawValue & VhostUser.versionMask }
    }

    public var request: UInt32
    public var flags: Flags
    public var size: UInt32

    public init(request: UInt32, flags: Flags = .version1, size: UInt32) {
        self.request = request; self.flags = flags; self.size = size
    }

    public func encode() -> [UInt8] {
        var w = WireWriter()
        w.u32(request); w.u32(flags.rawValue); w.u32(size)
        return w.bytes
    }

    public init?(decoding b: [UInt8]) {
        var r = WireReader(b)
        guard let q = r.u32(), let f = r.u32(), let s = r.u32() else { return nil }
        request = q; flags = Flags(rawValue: f); size = s
    }
}
