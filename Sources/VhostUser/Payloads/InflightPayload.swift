/// GET_INFLIGHT_FD / SET_INFLIGHT_FD: the shared area a back-end tracks in-flight descriptors in:
/// `{u64 mmap_size, u64 mmap_offset, u16 num_queues, u16 queue_size}`, padded to 24 bytes as QEMU's
/// struct is (decoding needs only the 20 meaningful bytes).
public struct InflightPayload: Payload {
    public var mmapSize: UInt64
    public var mmapOffset: UInt64
    public var numQueues: UInt16
    public var queueSize: UInt16
    public init(mmapSize: UInt64, mmapOffset: UInt64, numQueues: UInt16, queueSize: UInt16) {
        self.mmapSize = mmapSize; self.mmapOffset = mmapOffset; self.numQueues = numQueues; self.queueSize = queueSize
    }
    public init?(decoding bytes: [UInt8]) {
        var r = WireReader(bytes)
        guard let s = r.u64(), let o = r.u64(), let n = r.u16(), let q = r.u16() else { return nil }
        mmapSize = s; mmapOffset = o; numQueues = n; queueSize = q
    }
    public func encode() -> [UInt8] {
        var w = WireWriter()
        w.u64(mmapSize); w.u64(mmapOffset); w.u16(numQueues); w.u16(queueSize); w.u32(0)
        return w.bytes
    }
}
