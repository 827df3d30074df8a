/// SET_STATUS / GET_STATUS reply: the virtio device status byte, carried in a u64.
public struct StatusPayload: Payload {
    public var status: UInt8
    /// Bits above the status byte, as sent (none are defined).
    public var otherBits: UInt64
    public init(status: UInt8) { self.status = status; otherBits = 0 }
    public init?(decoding bytes: [UInt8]) {
        guard let v = U64Payload(decoding: bytes) else { return nil }
        status = UInt8(truncatingIfNeeded: v.value); otherBits = v.value & ~0xFF
    }
    public func encode() -> [UInt8] { U64Payload(UInt64(status) | otherBits).encode() }
}
