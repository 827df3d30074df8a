import VirtioProtocol

/// The two positions of a packed ring as implementations keep them: a slot index and a wrap
/// counter each, for the driver's next descriptor to make available and the device's next to mark
/// used. This is the piece the Z3 packed-ownership proof encodes (`Specs/smt/packed-ownership.smt2`):
/// the device owns the `inFlight` positions from `used` to `avail`, at most N; each side advances
/// its index modulo N and flips its wrap counter when it passes the ring's end. `PackedVirtqueue`
/// asks it whether a step is allowed; a differential test holds it to the Z3 relation.
public struct PackedCursor: Equatable, Sendable, CustomStringConvertible {
    public let size: UInt32
    public var availIndex: UInt16, availWrap: Bool
    public var usedIndex: UInt16, usedWrap: Bool

    public init(size: UInt32, availIndex: UInt16, availWrap: Bool, usedIndex: UInt16, usedWrap: Bool) {
        self.size = size; self.availIndex = availIndex; self.availWrap = availWrap; self.usedIndex = usedIndex; self.usedWrap = usedWrap
    }

    /// The cursor of two free-running positions.
    public init(size: UInt32, avail: UInt64, used: UInt64) {
        self.init(size: size, availIndex: PackedRing.slot(avail, size: size), availWrap: PackedRing.wrap(avail, size: size),
                  usedIndex: PackedRing.slot(used, size: size), usedWrap: PackedRing.wrap(used, size: size))
    }

    /// Positions the device owns: same wrap, avail - used; different wrap, avail + N - used.
    public var inFlight: UInt32 {
        availWrap == usedWrap ? UInt32(availIndex) &- UInt32(usedIndex) : UInt32(availIndex) + size &- UInt32(usedIndex)
    }

    /// Both indices are slots, and used is at most a lap behind avail.
    public var invariantHolds: Bool {
        guard UInt32(availIndex) < size, UInt32(usedIndex) < size else { return false }
        return availWrap == usedWrap ? usedIndex <= availIndex : availIndex <= usedIndex
    }

    public enum Step: Equatable, Sendable {
        /// The driver makes `count` more descriptors available.
        case publish(UInt16)
        /// The device marks used descriptors spanning `count` positions (one list or batch).
        case complete(UInt16)
    }

    public func allows(_ step: Step) -> Bool {
        switch step {
        case .publish(let k): return k >= 1 && inFlight + UInt32(k) <= size
        case .complete(let k): return k >= 1 && UInt32(k) <= inFlight
        }
    }

    static func advance(_ i: UInt16, _ w: Bool, by k: UInt16, size: UInt32) -> (UInt16, Bool) {
        let s = UInt32(i) + UInt32(k)
        return s >= size ? (UInt16(s - size), !w) : (UInt16(s), w)
    }

    public func applying(_ step: Step) -> PackedCursor? {
        guard allows(step) else { return nil }
        var c = self
        switch step {
        case .publish(let k): (c.availIndex, c.availWrap) = Self.advance(availIndex, availWrap, by: k, size: size)
        case .complete(let k): (c.usedIndex, c.usedWrap) = Self.advance(usedIndex, usedWrap, by: k, size: size)
        }
        return c
    }

    /// The flags the driver stores to make the descriptor at the device's position available
    /// (written when the driver's wrap counter was that of the position) pass the device's test
    /// against its own counter: the property `device-sees-available` proves for every state.
    public var deviceSeesAvailable: Bool {
        guard inFlight > 0 else { return false }
        let driverWrap = usedIndex < availIndex ? availWrap : !availWrap
        return PackedRing.Flags.available(wrap: driverWrap).isAvailable(wrap: usedWrap)
    }

    public var description: String { "N=\(size) avail=\(availIndex)/\(availWrap ? 1 : 0) used=\(usedIndex)/\(usedWrap ? 1 : 0)" }
}
