/// One memory region as the front-end describes it: guest-physical start, size, the front-end's
/// own (user) address of it, and where it starts in the fd that comes with it.
public struct MemoryRegionDescription: Equatable, Sendable {
    public static let size = 32
    public var guestAddr: UInt64
    public var size: UInt64
    public var userAddr: UInt64
    public var mmapOffset: UInt64
    public init(guestAddr: UInt64, size: UInt64, userAddr: UInt64, mmapOffset: UInt64 = 0) {
        self.guestAddr = guestAddr; self.size = size; self.userAddr = userAddr; self.mmapOffset = mmapOffset
    }
    init?(_ r: inout WireReader) {
        guard let g = r.u64(), let s = r.u64(), let u = r.u64(), let o = r.u64() else { return nil }
        guestAddr = g; size = s; userAddr = u; mmapOffset = o
    }
    func encode(_ w: inout WireWriter) { w.u64(guestAddr); w.u64(size); w.u64(userAddr); w.u64(mmapOffset) }
}
