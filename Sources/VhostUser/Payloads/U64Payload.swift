/// A single u64: features, protocol features, queue count, status, log fd size, and the REPLY_ACK
/// answer (0 success, non-zero failure).
public struct U64Payload: Payload {
    public var value: UInt64
    public init(_ value: UInt64) { self.value = value }
    public init?(decoding bytes: [UInt8]) {
        var r = WireReader(bytes)
        guard let v = r.u64() else { return nil }
        value = v
    }
    public func encode() -> [UInt8] { var w = WireWriter(); w.u64(value); return w.bytes }
}
