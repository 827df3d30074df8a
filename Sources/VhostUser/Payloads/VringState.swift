/// `struct vhost_vring_state`: a vring index and a number (SET_VRING_NUM size, SET/GET_VRING_BASE
/// index, SET_VRING_ENABLE flag).
public struct VringState: Payload {
    public var index: UInt32
    public var num: UInt32
    public init(index: UInt32, num: UInt32) { self.index = index; self.num = num }
    public init?(decoding bytes: [UInt8]) {
        var r = WireReader(bytes)
        guard let i = r.u32(), let n = r.u32() else { return nil }
        index = i; num = n
    }
    public func encode() -> [UInt8] { var w = WireWriter(); w.u32(index); w.u32(num); return w.bytes }
}
