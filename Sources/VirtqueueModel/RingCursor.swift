import VirtioProtocol

/// The three free-running 16-bit indices of one split ring and the transitions that move them.
/// This is the piece the Z3 ring-ownership proof encodes (`Specs/smt/ring-ownership.smt2`):
///   in-flight = avail - used (mod 2^16) <= N, and the device's next index lies in [used, avail].
public struct RingCursor: Equatable, Sendable, CustomStringConvertible {
    /// Queue size N (a power of two, 1...32768).
    public let size: UInt32
    /// avail.idx as last published by the driver.
    public var avail: UInt16
    /// The device's next avail index to read (vhost `last_avail_idx`).
    public var next: UInt16
    /// used.idx as last published by the device.
    public var used: UInt16

    public init(size: UInt32, start: UInt16 = 0) {
        self.size = size; avail = start; next = start; used = start
    }

    public init(size: UInt32, avail: UInt16, next: UInt16, used: UInt16) {
        self.size = size; self.avail = avail; self.next = next; self.used = used
    }

    /// Buffers the driver has exposed and not yet seen used.
    public var inFlight: UInt32 { UInt32(avail &- used) }
    /// Entries the device has read but not yet returned.
    public var consumed: UInt32 { UInt32(next &- used) }
    /// Entries exposed and not yet read by the device.
    public var pending: UInt32 { UInt32(avail &- next) }

    /// The ring-ownership invariant.
    public var invariantHolds: Bool { inFlight <= size && consumed <= inFlight }

    public enum Step: Equatable, Sendable {
        /// Driver makes `count` more entries available (avail += count).
        case publish(UInt16)
        /// Device reads the next available entry (next += 1).
        case consume
        /// Device returns `count` read entries (used += count).
        case complete(UInt16)
    }

    /// Whether a step is allowed from this state (the guards the proof assumes).
    public func allows(_ step: Step) -> Bool {
        switch step {
        case .publish(let k): return inFlight + UInt32(k) <= size
        case .consume: return next != avail
        case .complete(let k): return UInt32(k) <= consumed
        }
    }

    /// The state after `step`, or nil when its guard fails.
    public func applying(_ step: Step) -> RingCursor? {
        guard allows(step) else { return nil }
        var s = self
        switch step {
        case .publish(let k): s.avail = avail &+ k
        case .consume: s.next = next &+ 1
        case .complete(let k): s.used = used &+ k
        }
        return s
    }

    /// Ring slot of a free-running index.
    public func slot(_ idx: UInt16) -> Int { Int(UInt32(idx) & (size - 1)) }

    public var description: String { "N=\(size) avail=\(avail) next=\(next) used=\(used)" }
}
