/// The virtio-net pieces `drive` puts in buffers: the 12-byte header of a modern device
/// (virtio 1.x "Device Operation": `struct virtio_net_hdr` up to `num_buffers`) and an Ethernet
/// frame whose payload says which packet it is, so a packet a back-end forwards back on RX can be
/// told apart from anything else.
public enum NetFrame {
    /// VIRTIO_F_VERSION_1 (or MRG_RXBUF) header size, without HASH_REPORT.
    public static let headerSize = 12
    /// Offset of `num_buffers` in the header.
    public static let numBuffersOffset = 10
    /// Local experimental ethertype (IEEE 802 "local experimental 1").
    public static let etherType: UInt16 = 0x88B5
    static let magic: [UInt8] = Array("DRIVE".utf8)

    /// Header (all zero: no offload, num_buffers 0 as the driver must send it) and a frame of
    /// `frameLength` bytes (at least 60) carrying `run`, `vq` and `seq`.
    public static func txPacket(frameLength: Int = 64, run: UInt32, vq: UInt16, seq: UInt32) -> [UInt8] {
        let n = max(60, frameLength)
        var b = [UInt8](repeating: 0, count: headerSize + n)
        var o = headerSize
        // dst 02:00:00:00:00:01, src 02:00:00:00:00:02 (locally administered).
        for (i, v) in [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2].enumerated() { b[o + i] = UInt8(v) }
        o += 12
        b[o] = UInt8(etherType >> 8); b[o + 1] = UInt8(etherType & 0xFF); o += 2
        for (i, v) in magic.enumerated() { b[o + i] = v }
        o += magic.count
        put(run, &b, o); put(UInt32(vq), &b, o + 4); put(seq, &b, o + 8); put(UInt32(n), &b, o + 12)
        o += 16
        while o < b.count { b[o] = UInt8(truncatingIfNeeded: seq &+ UInt32(o)); o += 1 }
        return b
    }

    static func put(_ v: UInt32, _ b: inout [UInt8], _ o: Int) {
        for i in 0..<4 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
    }
    static func get(_ b: [UInt8], _ o: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[o + $1]) << (8 * UInt32($1)) }
    }

    /// What a received frame says about itself, if it is one of `drive`'s.
    public struct Tag: Equatable, Sendable {
        public let run: UInt32
        public let vq: UInt16
        public let seq: UInt32
        public let frameLength: Int
    }

    /// Reads the tag of a frame (the bytes after the header).
    public static func tag(frame b: [UInt8]) -> Tag? {
        let o = 14
        guard b.count >= o + magic.count + 16, Array(b[o..<o + magic.count]) == magic else { return nil }
        let p = o + magic.count
        return Tag(run: get(b, p), vq: UInt16(truncatingIfNeeded: get(b, p + 4)), seq: get(b, p + 8), frameLength: Int(get(b, p + 12)))
    }
}
