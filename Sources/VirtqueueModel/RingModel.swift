import VirtioProtocol

/// The negotiated features a ring model needs.
public struct RingFeatures: Equatable, Sendable {
    /// VIRTIO_F_INDIRECT_DESC.
    public var indirect: Bool
    /// VIRTIO_F_EVENT_IDX (split: used_event / avail_event; packed: RING_EVENT_FLAGS_DESC).
    public var eventIdx: Bool
    /// VIRTIO_F_IN_ORDER: one used element / descriptor may retire a batch.
    public var inOrder: Bool

    public init(indirect: Bool = false, eventIdx: Bool = false, inOrder: Bool = false) {
        self.indirect = indirect; self.eventIdx = eventIdx; self.inOrder = inOrder
    }

    public init(_ f: Features) { self.init(indirect: f.has(.indirectDesc), eventIdx: f.has(.eventIdx), inOrder: f.has(.inOrder)) }
}

/// One driver or device action on a ring, in the terms of its format. The checker makes one of
/// these from each data-plane trace event; a model answers the steps of its own format.
public enum RingStep: Equatable, Sendable {
    // Split, driver.
    case writeDescriptor(UInt16, Descriptor)
    case writeIndirect(parent: UInt16, entry: UInt16, Descriptor)
    case writeAvailEntry(pos: UInt16, head: UInt16)
    case publishAvail(UInt16)
    case setAvailFlags(UInt16)
    case setUsedEvent(UInt16)
    // Split, device.
    case readAvail(pos: UInt16, head: UInt16)
    case writeUsed(pos: UInt16, id: UInt32, len: UInt32)
    case publishUsed(UInt16)
    case setUsedFlags(UInt16)
    case setAvailEvent(UInt16)
    // Packed, driver.
    /// The driver writes a descriptor's addr, len and id (not its flags).
    case writePacked(slot: UInt16, addr: UInt64, len: UInt32, id: UInt16)
    /// The driver stores a descriptor's flags: the store that makes it available.
    case storeAvailFlags(slot: UInt16, PackedRing.Flags)
    case writePackedIndirect(parent: UInt16, entry: UInt16, PackedDescriptor)
    /// The driver writes the Driver Event Suppression structure (it controls used buffer notifications).
    case setDriverEvent(PackedRing.EventSuppression)
    // Packed, device.
    /// The device takes the descriptor at the slot for processing.
    case readPacked(slot: UInt16)
    /// The device writes a used descriptor's id and len (not its flags).
    case writePackedUsed(slot: UInt16, id: UInt16, len: UInt32)
    /// The device stores a descriptor's flags: the store that marks it used.
    case storeUsedFlags(slot: UInt16, PackedRing.Flags)
    /// The device writes the Device Event Suppression structure (it controls available buffer notifications).
    case setDeviceEvent(PackedRing.EventSuppression)

    /// The format whose model understands this step.
    public var format: RingFormat {
        switch self {
        case .writeDescriptor, .writeIndirect, .writeAvailEntry, .publishAvail, .setAvailFlags, .setUsedEvent,
             .readAvail, .writeUsed, .publishUsed, .setUsedFlags, .setAvailEvent:
            return .split
        case .writePacked, .storeAvailFlags, .writePackedIndirect, .setDriverEvent,
             .readPacked, .writePackedUsed, .storeUsedFlags, .setDeviceEvent:
            return .packed
        }
    }
}

/// What one step did: the rules it broke, and the buffers it made available or completed (the
/// checker judges queue activity, NET-TXQ-INACTIVE and NET-RXQ-INACTIVE, from these).
public struct StepResult: Sendable {
    public var violations: [Violation]
    public var exposed: Int
    public var completed: Int
    /// The step belongs to the other format: the model did nothing with it.
    public var foreign: Bool

    public init(_ violations: [Violation] = [], exposed: Int = 0, completed: Int = 0, foreign: Bool = false) {
        self.violations = violations; self.exposed = exposed; self.completed = completed; self.foreign = foreign
    }

    public static let foreignStep = StepResult(foreign: true)
}

/// `StepResult` without the findings: what `apply(_:into:)` returns, the findings going to the
/// caller's array in place. Returning an array from every step through several layers paid a
/// retain and release of the (empty) array per layer per event.
public struct StepEffect: Sendable {
    public var exposed: Int
    public var completed: Int
    public var foreign: Bool

    @inlinable public init(exposed: Int = 0, completed: Int = 0, foreign: Bool = false) {
        self.exposed = exposed; self.completed = completed; self.foreign = foreign
    }

    public static let foreignStep = StepEffect(foreign: true)
}

/// A notification owed and not sent: a used-buffer notification (interrupt) the device owes, or an
/// available-buffer notification (kick) the driver owes.
public struct OwedNotification: Equatable, Sendable {
    /// The rule that holds the party to it (split: VQ-INTERRUPT-MISSED, VQ-KICK-MISSED).
    public let rule: RuleID
    /// When it became owed, e.g. "used.idx reached 5".
    public let when: String
    /// Why, in the driver's terms, e.g. "avail.flags 0 does not suppress interrupts".
    public let reason: String
    public init(rule: RuleID, when: String, reason: String) { self.rule = rule; self.when = when; self.reason = reason }
}

/// One virtqueue of either format, seen from both sides: the exact model the checker, the
/// simulator's tests, `stats` and the proofs' witness traces share. Each step returns the rules it
/// broke; the state records who owns every descriptor.
public protocol RingModel: Sendable {
    var format: RingFormat { get }
    var size: UInt32 { get }
    var features: RingFeatures { get set }
    /// No action has happened on the ring yet: a ring base may still re-base everything.
    var pristine: Bool { get }
    /// SET_VRING_BASE (vhost-user and vhost: the device's next index; on a pristine ring, where
    /// everything starts).
    mutating func setBase(_ base: RingBase)
    mutating func apply(_ step: RingStep) -> StepResult
    /// The device notifies the driver (a used buffer notification).
    mutating func interrupt()
    var owedInterrupt: OwedNotification? { get }
    /// The driver notifies the device (an available buffer notification).
    mutating func kick()
    /// The ring stopped or was rebuilt: nothing the driver published before is owed a kick.
    mutating func releaseKick()
    /// Whether the driver has kicked this ring (the kick owed is judged only where kicks are traced).
    var kicksSeen: Bool { get }
    /// The kick the driver owes for what it published, judged when an exact trace ends.
    var owedKick: OwedNotification? { get }
    /// Indirect-table memory this ring holds (`SparseTable.cost` units), and the tables holding it:
    /// the checker's budget over all rings.
    var indirectEntriesHeld: Int { get }
    var indirectTablesHeld: Int { get }
    /// Forgets every indirect table the device does not own (the checker's budget is exceeded).
    mutating func forgetIdleIndirectTables()
}

extension RingFormat {
    /// A fresh exact model of this format, or nil when the size is not valid for it.
    public func makeModel(size: UInt32, base: RingBase, features: RingFeatures) -> (any RingModel)? {
        guard isValidQueueSize(size) else { return nil }
        switch self {
        case .split:
            return SplitVirtqueue(size: size, start: base.index, indirectAllowed: features.indirect,
                                  eventIdx: features.eventIdx, inOrder: features.inOrder)
        case .packed:
            return PackedVirtqueue(size: size, base: base, features: features)
        }
    }
}
