/// The two virtqueue layouts of virtio 1.x: split (descriptor table, avail ring, used ring) and
/// packed (one descriptor ring with AVAIL/USED flags and wrap counters). Everything that differs
/// between them and is not a model of its own lives here: which one a feature word selects, which
/// queue sizes are valid, how a ring base is encoded.
public enum RingFormat: String, CaseIterable, Sendable, CustomStringConvertible {
    case split, packed

    /// VIRTIO_F_RING_PACKED selects the packed layout for every virtqueue of the device.
    public init(features: Features) { self = features.has(.ringPacked) ? .packed : .split }

    /// Largest queue size of either format ("Split Virtqueues": maximum 32768; "Packed
    /// Virtqueues": "up to 2^15 entries").
    public static let maxQueueSize: UInt32 = 32768

    /// Split: a power of two in 1...32768. Packed: any size in 1...32768 ("Structure Size and
    /// Alignment": the Queue Size value does not have to be a power of 2).
    public func isValidQueueSize(_ n: UInt32) -> Bool {
        switch self {
        case .split: return SplitRing.isValidQueueSize(n)
        case .packed: return n != 0 && n <= Self.maxQueueSize
        }
    }

    /// The rule a queue size of this format must satisfy.
    public var sizeRule: RuleID {
        switch self {
        case .split: return .vqSize
        case .packed: return .packedSize
        }
    }

    /// The valid sizes, in words (for messages).
    public var sizeRequirement: String {
        switch self {
        case .split: return "a split queue size must be a power of two in 1...32768"
        case .packed: return "a packed queue size must be in 1...32768"
        }
    }

    /// Decodes a SET_VRING_BASE / GET_VRING_BASE value (the low 16 bits of vhost's `num`).
    public func base(_ raw: UInt64) -> RingBase {
        let v = UInt16(truncatingIfNeeded: raw)
        switch self {
        case .split: return RingBase(index: v, wrap: true)
        case .packed: return RingBase(index: v & PackedRing.indexMask, wrap: v & PackedRing.wrapBit != 0)
        }
    }

    public var description: String { rawValue }
}

/// Where a ring starts: split, the free-running 16-bit index all three indices start at; packed,
/// the slot index (15 bits) and the wrap counter of the next descriptor (vhost-user and vhost
/// carry both in one 16-bit value, wrap counter in bit 15: 32768 = index 0, wrap 1).
public struct RingBase: Equatable, Sendable, CustomStringConvertible {
    public var index: UInt16
    /// The wrap counter (packed only; split bases carry 1, the packed initial value, unused).
    public var wrap: Bool
    public init(index: UInt16, wrap: Bool = true) { self.index = index; self.wrap = wrap }

    /// Split: index 0. Packed: index 0, wrap counter 1 (both counters start at 1).
    public static let start = RingBase(index: 0, wrap: true)

    /// The packed encoding, wrap counter in bit 15.
    public var packedRaw: UInt16 { (index & PackedRing.indexMask) | (wrap ? PackedRing.wrapBit : 0) }

    public var description: String { "index \(index), wrap \(wrap ? 1 : 0)" }
}
