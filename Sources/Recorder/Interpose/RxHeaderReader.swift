import TraceFormat
import VhostUser
import VirtioProtocol

/// Reads the virtio-net header of each packet a device returns on a relayed receive ring, for the
/// `rx_header` event that lets the checker judge it (NET-RX-NUM-BUFFERS, NET-RX-HDR-OFFLOAD).
///
/// Exact, not sampled: the relay reads the header after the shadow used.idx (acquire) showed the
/// element, and before it copies the element to the front-end's used ring, so the driver does not
/// own the buffer yet and the bytes are the device's. The header is at the start of the chain's
/// first device-writable buffer, as recorded at its exposure (the buffers the device was given).
/// With MRG_RXBUF a packet spans `num_buffers` elements and only its first holds a header; once the
/// reader cannot tell where the next packet starts (a header it could not read, an element an
/// IN_ORDER device left unwritten, a count no packet can have), it reads no more headers on the
/// ring: the checker then judges those packets' other rules only.
struct RxHeaderReader {
    /// Header bytes: 12 with VERSION_1 or MRG_RXBUF, else 10 (no num_buffers field).
    let length: Int
    let mergeable: Bool
    let ringSize: Int
    /// Elements left in the packet whose header was read last.
    private var continuation = 0
    private(set) var lost = false

    init(features: UInt64, ringSize: UInt32) {
        length = NetHeader.length(features: features)
        mergeable = features & FeatureBit.netMrgRxbuf.mask != 0
        self.ringSize = Int(ringSize)
    }

    /// An element the device left unwritten (IN_ORDER): which packets it ends is unknown.
    mutating func skipped() { if mergeable { lost = true } }

    /// The `rx_header` of the element at used position `pos` (len `len`) of the chain whose
    /// exposure events are `chain`; nil when it starts no packet or its header cannot be read.
    mutating func header(vq: UInt16, pos: UInt16, len: UInt32, chain: [TraceEvent], memory: MemoryTable, t: UInt64) -> TraceEvent? {
        guard !lost, length >= NetHeader.numBuffersOffset + 2 else { return nil }
        if continuation > 0 { continuation -= 1; return nil }
        // The first buffer of the chain the device may write: a direct descriptor, or an entry of
        // an indirect table (the recorded events hold the driver's addresses).
        let first = chain.first { e in
            (e.kind == .indirectDesc || (e.kind == .desc && !e.descFlags.contains(.indirect))) && e.descFlags.contains(.write)
        }
        guard let b = first, UInt64(len) >= UInt64(length), UInt64(b.descLen) >= UInt64(length),
              let g = memory.guest(b.p0, length: UInt64(length)),
              let flags = g.load(UInt8.self, at: 0), let gso = g.load(UInt8.self, at: 1),
              let n = g.load(UInt16.self, at: NetHeader.numBuffersOffset) else {
            if mergeable { lost = true }
            return nil
        }
        if mergeable {
            if n == 0 || Int(n) > ringSize { lost = true } else { continuation = Int(n) - 1 }
        }
        return TraceEvent(.rxHeader, vq: vq, aux: UInt16(gso), timestamp: t, p0: UInt64(pos), p1: UInt64(n), p2: UInt64(flags))
    }
}
