import VirtioProtocol

/// SET_VRING_KICK / CALL / ERR: a u64 whose bits 0-7 are the vring index and bit 8 (NOFD) says
/// that no fd comes with the message (KICK: poll instead). Other bits must be zero.
public struct VringFile: Payload {
    public var index: UInt8
    public var noFd: Bool
    /// Bits other than index and NOFD, as sent (a back-end should refuse them).
    public var otherBits: UInt64
    public init(index: UInt8, noFd: Bool = false) { self.index = index; self.noFd = noFd; otherBits = 0 }
    public init(raw: UInt64) {
        index = UInt8(truncatingIfNeeded: raw & VhostUser.vringIndexMask)
        noFd = raw & VhostUser.vringNoFdMask != 0
        otherBits = raw & ~(VhostUser.vringIndexMask | VhostUser.vringNoFdMask)
    }
    public var raw: UInt64 { UInt64(index) | (noFd ? VhostUser.vringNoFdMask : 0) | otherBits }
    public init?(decoding bytes: [UInt8]) {
        guard let v = U64Payload(decoding: bytes) else { return nil }
        self.init(raw: v.value)
    }
    public func encode() -> [UInt8] { U64Payload(raw).encode() }
}
