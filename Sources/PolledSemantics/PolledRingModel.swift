import VirtioProtocol
import VirtqueueModel

/// One thing a poll of a ring read, in trace order (`Specs/model.md`, "Polled observations").
public enum PolledObservation: Sendable {
    // Split rings.
    case descriptor(DescriptorRead)
    case availEntry(pos: UInt16, head: UInt16)
    case usedEntry(pos: UInt16, id: UInt32, len: UInt32)
    /// The end of a poll (`poll` event): where each side had got to.
    case poll(avail: UInt16, used: UInt16)
    /// What a used ring slot held when the recorder began following the ring (`used_slot`): an
    /// IN_ORDER device need not rewrite slots inside a batch, so this is what such a slot shows.
    case usedSlot(slot: UInt16, id: UInt32, len: UInt32)
    /// Traces without `poll` events: `avail_idx` / `used_idx` as the old recorder wrote them.
    case legacyAvailIndex(UInt16)
    case legacyUsedIndex(UInt16)
    // Packed rings: one descriptor read is its body (addr, len, id), the entries of its indirect
    // table, then its flags (read first, with acquire semantics; written last in the trace); a
    // flags read without a body is a descriptor found not available.
    case packedDescriptor(slot: UInt16, PackedDescriptor)
    case packedIndirect(parent: UInt16, entry: UInt16, PackedDescriptor)
    case packedFlags(slot: UInt16, PackedRing.Flags)
    /// A used descriptor read: its id and len, then its flags.
    case packedUsed(slot: UInt16, id: UInt16, len: UInt32)
    case packedUsedFlags(slot: UInt16, PackedRing.Flags)
}

/// What closing one poll decided.
public struct PollOutcome: Sendable {
    public var violations: [PolledViolation] = []
    /// Buffers this poll saw made available, and completed.
    public var exposed = 0
    public var completed = 0
    /// Set when the poll could not be judged (the ring is judged no further); says why.
    public var anomaly: String?
    /// Set when this poll's entries could not be trusted and judging started again from it.
    public var resynchronized: String?
    /// Set when the observation is of the other ring format: nothing of it was judged.
    public var foreign = false
    public init() {}
}

/// One ring of either format observed by polling shared memory: judged by searching for a legal
/// order of what the polls read and feeding it to the exact model of that format.
public protocol PolledRingModel: Sendable {
    var format: RingFormat { get }
    var size: UInt32 { get }
    var coverage: PolledCoverage { get }
    mutating func setFeatures(_ f: RingFeatures)
    /// SET_VRING_BASE while observed (exact-model semantics).
    mutating func setBase(_ b: RingBase)
    /// The device interrupted the driver (a relayed call notification).
    mutating func interrupt()
    /// Feeds one observation; returns the outcome of the poll it closed, if it closed one.
    mutating func observe(_ o: PolledObservation, ref: UInt64) -> PollOutcome?
    /// Closes an open poll of a trace without `poll` events (before a control event).
    mutating func closeLegacyPoll() -> PollOutcome?
    /// The ring's observations break (`ring_gap`).
    mutating func gap()
    /// The poll that ends a gap closes now, its observations read after the gap (`gap()` again by
    /// default: what it lists is not judged).
    mutating func gapEnds()
    /// Observation ends: what is still undecided is counted, not judged.
    mutating func finish()
    /// Indirect-table memory of the judge's exact model (the checker's budget over all rings).
    var indirectEntriesHeld: Int { get }
    var indirectTablesHeld: Int { get }
    mutating func forgetIdleIndirectTables()
}

extension PolledRingModel {
    public mutating func gapEnds() { gap() }
}

extension RingFormat {
    /// A fresh polled-ring judge of this format, or nil when the size is not valid for it.
    public func makePolledModel(size: UInt32, base: RingBase, features: RingFeatures) -> (any PolledRingModel)? {
        guard isValidQueueSize(size) else { return nil }
        switch self {
        case .split:
            return PolledRing(size: size, base: base.index, indirectAllowed: features.indirect, eventIdx: features.eventIdx, inOrder: features.inOrder)
        case .packed:
            return PolledPackedRing(size: size, base: base, features: features)
        }
    }
}
