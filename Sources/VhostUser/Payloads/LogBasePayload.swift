/// SET_LOG_BASE: `{u64 mmap_size, u64 mmap_offset}` of the dirty-page log in the fd that comes with it.
public struct LogBasePayload: Payload {
    public var mmapSize: UInt64
    public var mmapOffset: UInt64
    public init(mmapSize: UInt64, mmapOffset: UInt64) { self.mmapSize = mmapSize; self.mmapOffset = mmapOffset }
    public init?(decoding bytes: [UInt8]) {
        var r = WireReader(bytes)
        guard let s = r.u64(), let o = r.u64() else { return nil }
        mmapSize = s; mmapOffset = o
    }
    public func encode() -> [UInt8] { var w = WireWriter(); w.u64(mmapSize); w.u64(mmapOffset); return w.bytes }
}
