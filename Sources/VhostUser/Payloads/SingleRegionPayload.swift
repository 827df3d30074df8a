/// ADD_MEM_REG / REM_MEM_REG: `{u64 padding, region}`; ADD_MEM_REG carries the region's fd.
public struct SingleRegionPayload: Payload {
    public var region: MemoryRegionDescription
    public init(region: MemoryRegionDescription) { self.region = region }
    public init?(decoding bytes: [UInt8]) {
        var r = WireReader(bytes)
        guard r.skip(8), let g = MemoryRegionDescription(&r) else { return nil }
        region = g
    }
    public func encode() -> [UInt8] {
        var w = WireWriter()
        w.u64(0); region.encode(&w)
        return w.bytes
    }
}
