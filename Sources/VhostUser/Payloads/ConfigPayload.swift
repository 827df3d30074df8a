/// GET_CONFIG / SET_CONFIG: `{u32 offset, u32 size, u32 flags, u8 payload[size]}` of the device's
/// configuration space. QEMU sends at most 256 bytes (`VHOST_USER_MAX_CONFIG_SIZE`).
public struct ConfigPayload: Payload {
    public static let maxSize = 256
    public var offset: UInt32
    /// 0: writable fields; 1: live migration.
    public var flags: UInt32
    public var data: [UInt8]
    public init(offset: UInt32, flags: UInt32 = 0, data: [UInt8]) { self.offset = offset; self.flags = flags; self.data = data }
    public init?(decoding bytes: [UInt8]) {
        var r = WireReader(bytes)
        guard let o = r.u32(), let s = r.u32(), let f = r.u32(), s <= UInt32(ConfigPayload.maxSize), let d = r.bytes(Int(s)) else { return nil }
        offset = o; flags = f; data = d
    }
    public func encode() -> [UInt8] {
        var w = WireWriter()
        w.u32(offset); w.u32(UInt32(data.count)); w.u32(flags); w.raw(data)
        return w.bytes
    }
}
