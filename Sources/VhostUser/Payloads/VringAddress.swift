/// `struct vhost_vring_addr`: where a split ring's three parts are, as front-end user addresses
/// (no IOMMU), plus the log address for migration.
public struct VringAddress: Payload {
    public var index: UInt32
    /// Bit 0: VHOST_VRING_F_LOG.
    public var flags: UInt32
    public var desc: UInt64
    public var used: UInt64
    public var avail: UInt64
    public var log: UInt64
    public init(index: UInt32, flags: UInt32 = 0, desc: UInt64, used: UInt64, avail: UInt64, log: UInt64 = 0) {
        self.index = index; self.flags = flags; self.desc = desc; self.used = used; self.avail = avail; self.log = log
    }
    public init?(decoding bytes: [UInt8]) {
        var r = WireReader(bytes)
        guard let i = r.u32(), let f = r.u32(), let d = r.u64(), let u = r.u64(), let a = r.u64(), let l = r.u64() else { return nil }
        index = i; flags = f; desc = d; used = u; avail = a; log = l
    }
    public func encode() -> [UInt8] {
        var w = WireWriter()
        w.u32(index); w.u32(flags); w.u64(desc); w.u64(used); w.u64(avail); w.u64(log)
        return w.bytes
    }
}
