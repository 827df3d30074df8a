import VirtioProtocol

/// SET_MEM_TABLE: `{u32 nregions, u32 padding, regions[nregions]}`, one fd per region in order.
/// Decoding refuses more than `VhostUser.maxMemRegions` regions or a count the payload cannot hold.
public struct MemoryTablePayload: Payload {
    public var regions: [MemoryRegionDescription]
    public init(regions: [MemoryRegionDescription]) { self.regions = regions }
    public init?(decoding bytes: [UInt8]) {
        var r = WireReader(bytes)
        guard let n = r.u32(), r.skip(4), n <= UInt32(VhostUser.maxMemRegions),
              r.remaining >= Int(n) * MemoryRegionDescription.size else { return nil }
        var out: [MemoryRegionDescription] = []
        for _ in 0..<Int(n) { out.append(MemoryRegionDescription(&r)!) }
        regions = out
    }
    public func encode() -> [UInt8] {
        var w = WireWriter()
        w.u32(UInt32(regions.count)); w.u32(0)
        for g in regions { g.encode(&w) }
        return w.bytes
    }
}
