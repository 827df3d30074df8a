/// Packed-virtqueue constants and the position arithmetic both sides share.
/// Source: virtio 1.x "Packed Virtqueues" (packed-ring.tex): "Driver and Device Ring Wrap
/// Counters", "The Virtqueue Descriptor Format", "Event Suppression Structure Format"; Linux
/// uapi `virtio_ring.h` (`VRING_PACKED_DESC_F_*`, `VRING_PACKED_EVENT_*`).
///
/// A *position* is a free-running count of descriptor slots since the ring's start, never reduced:
/// its slot is `position mod N` and its wrap counter flips every N positions, starting at 1.
/// (Positions are how the model names descriptors; the ring itself carries only slot indices and
/// the AVAIL/USED bits.)
public enum PackedRing {
    /// Largest packed queue size ("Packed virtqueues support up to 2^15 entries each").
    public static let maxQueueSize: UInt32 = 32768
    /// Size of one `pvirtq_desc` (addr u64, len u32, id u16, flags u16).
    public static let descriptorSize: UInt32 = 16
    /// Bit 15 of a vring base / event offset: the wrap counter; bits 0-14: the slot index.
    public static let wrapBit: UInt16 = 0x8000
    public static let indexMask: UInt16 = 0x7FFF

    /// Descriptor flags of a packed ring (`VIRTQ_DESC_F_*`): the split ones plus AVAIL and USED.
    public struct Flags: OptionSet, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let next = Flags(rawValue: 1)
        public static let write = Flags(rawValue: 2)
        public static let indirect = Flags(rawValue: 4)
        public static let avail = Flags(rawValue: 1 << 7)
        public static let used = Flags(rawValue: 1 << 15)

        /// The AVAIL/USED bits the driver writes to make a descriptor available when its wrap
        /// counter is `wrap`: AVAIL equal to it, USED its inverse.
        public static func available(wrap: Bool) -> Flags { wrap ? .avail : .used }
        /// The bits the device writes to mark a descriptor used with wrap counter `wrap`: both equal to it.
        public static func usedMark(wrap: Bool) -> Flags { wrap ? [.avail, .used] : [] }

        /// Available for a position whose wrap counter is `wrap` (AVAIL == wrap, USED != wrap).
        public func isAvailable(wrap: Bool) -> Bool { contains(.avail) == wrap && contains(.used) != wrap }
        /// Used for a position whose wrap counter is `wrap` (AVAIL == USED == wrap).
        public func isUsed(wrap: Bool) -> Bool { contains(.avail) == wrap && contains(.used) == wrap }
        /// AVAIL differs from USED: what a driver writes to make a descriptor available (for some lap).
        public var marksAvailable: Bool { contains(.avail) != contains(.used) }
        /// The AVAIL/USED pair alone.
        public var ownership: Flags { intersection([.avail, .used]) }
        /// Everything but AVAIL/USED.
        public var kind: Flags { subtracting([.avail, .used]) }

        public var description: String {
            if rawValue == 0 { return "0" }
            var names: [String] = []
            for (n, f) in [("next", Flags.next), ("write", .write), ("indirect", .indirect), ("avail", .avail), ("used", .used)] where contains(f) { names.append(n) }
            let rest = rawValue & ~Flags([.next, .write, .indirect, .avail, .used]).rawValue
            if rest != 0 { names.append("0x" + String(rest, radix: 16)) }
            return names.joined(separator: "|")
        }
    }

    /// Slot of a position.
    @inlinable public static func slot(_ position: UInt64, size: UInt32) -> UInt16 { UInt16(truncatingIfNeeded: position % UInt64(size)) }
    /// Wrap counter of a position: 1 in the first lap, flipped every N positions.
    @inlinable public static func wrap(_ position: UInt64, size: UInt32) -> Bool { (position / UInt64(size)) % 2 == 0 }
    /// The first position of a ring base (index < N): index, in the lap whose wrap counter is the base's.
    @inlinable public static func position(_ base: RingBase, size: UInt32) -> UInt64 { UInt64(base.index) + (base.wrap ? 0 : UInt64(size)) }
    /// The 16-bit encoding of a position (wrap counter in bit 15), as vring bases and polls carry it.
    @inlinable public static func encode(_ position: UInt64, size: UInt32) -> UInt16 {
        slot(position, size: size) | (wrap(position, size: size) ? wrapBit : 0)
    }
    /// The position `p` with `from <= p < from + 2N` whose encoding is `encoded`, if any: the one
    /// a poll means when it reports where a side has got to (it never moves more than 2N at once).
    public static func decode(_ encoded: UInt16, after from: UInt64, size: UInt32) -> UInt64? {
        let idx = UInt64(encoded & indexMask), w = encoded & wrapBit != 0
        guard idx < UInt64(size) else { return nil }
        let lap = from / UInt64(size)
        for l in lap...(lap + 2) {
            let p = l * UInt64(size) + idx
            if p >= from && wrap(p, size: size) == w { return p }
        }
        return nil
    }

    // MARK: event suppression (`pvirtq_event_suppress`)

    /// `desc_event_flags` (2 bits): ENABLE, DISABLE, DESC (only with VIRTIO_F_EVENT_IDX); 3 is reserved.
    public enum EventFlags: UInt16, Sendable, CustomStringConvertible {
        case enable = 0, disable = 1, desc = 2, reserved = 3
        public var description: String { ["enable", "disable", "desc", "reserved"][Int(rawValue)] }
    }

    /// One event suppression structure as written: `desc` (off:15 | wrap:1) and `flags`.
    public struct EventSuppression: Equatable, Sendable, CustomStringConvertible {
        public var offWrap: UInt16
        public var flags: UInt16
        public init(offWrap: UInt16 = 0, flags: UInt16 = 0) { self.offWrap = offWrap; self.flags = flags }
        /// The ring is zero-initialised: ENABLE, offset 0, wrap 0.
        public static let initial = EventSuppression()
        public var mode: EventFlags { EventFlags(rawValue: flags & 3)! }
        public var offset: UInt16 { offWrap & indexMask }
        public var wrap: Bool { offWrap & wrapBit != 0 }
        public var description: String { "flags \(mode) off \(offset) wrap \(wrap ? 1 : 0)" }
    }

    /// Whether the side that just advanced from position `old` to `new` (at most N further) must
    /// notify, given the other side's event suppression structure: ENABLE always, DISABLE never,
    /// DESC when the descriptor it names (slot `off` in the lap of wrap counter `wrap`) lies in
    /// [old, new). This is `vring_need_event` after the wrap adjustment QEMU
    /// (`vring_packed_need_event`), DPDK (`vhost_vring_call_packed`) and Linux
    /// (`virtqueue_kick_prepare_packed`) make; an offset outside the ring names no descriptor.
    public static func notificationRequired(_ e: EventSuppression, eventIdx: Bool, old: UInt64, new: UInt64, size: UInt32) -> Bool {
        switch e.mode {
        case .enable: return new != old
        case .disable, .reserved: return false
        case .desc:
            // Without EVENT_IDX, DESC is not a valid value: the device may treat it as anything.
            guard eventIdx else { return false }
            return descInWindow(e, old: old, new: new, size: size)
        }
    }

    /// Whether a position p in [old, new) has slot `off` and wrap counter `wrap`.
    public static func descInWindow(_ e: EventSuppression, old: UInt64, new: UInt64, size: UInt32) -> Bool {
        let off = UInt64(e.offset)
        guard off < UInt64(size), new > old else { return false }
        // The first position at or after `old` with that slot, then the one a lap later.
        var p = (old / UInt64(size)) * UInt64(size) + off
        if p < old { p += UInt64(size) }
        while p < new {
            if wrap(p, size: size) == e.wrap { return true }
            p += UInt64(size)
        }
        return false
    }
}
