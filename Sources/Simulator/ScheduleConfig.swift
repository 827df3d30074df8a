import VirtioProtocol

/// What to simulate: a device of one profile, its queues and features, and optionally one fault.
public struct ScheduleConfig: Sendable, CustomStringConvertible {
    public var profile: Profile
    /// Queue pairs (mq layout) or TX queues (seed layout).
    public var pairs: Int
    public var queueSize: UInt32
    public var indirect: Bool
    public var eventIdx: Bool
    /// Initial free-running index of every ring (SET_VRING_BASE), e.g. near 65535 to force wraps.
    public var startIndex: UInt16
    /// Pairs enabled by VQ_PAIRS_SET (mq layout, not vhost-user); the rest must stay idle.
    public var activePairs: Int
    public var seed: UInt64
    public var fault: Fault?
    /// VIRTIO_F_RING_PACKED: every ring is packed (any size 1...32768; the start index is taken
    /// modulo the size, wrap counter 1 when the index's low bit is 0).
    public var packed: Bool
    /// VIRTIO_F_IN_ORDER (packed rings: one used descriptor may retire a batch).
    public var inOrder: Bool

    public init(profile: Profile, pairs: Int = 2, queueSize: UInt32 = 256, indirect: Bool = false, eventIdx: Bool = false,
                startIndex: UInt16 = 0, activePairs: Int? = nil, seed: UInt64 = 1, fault: Fault? = nil,
                packed: Bool = false, inOrder: Bool = false) {
        self.profile = profile; self.pairs = max(1, pairs); self.queueSize = queueSize; self.indirect = indirect
        self.eventIdx = eventIdx; self.startIndex = startIndex; self.activePairs = min(max(1, activePairs ?? pairs), max(1, pairs))
        self.seed = seed; self.fault = fault; self.packed = packed; self.inOrder = inOrder
    }

    public var format: RingFormat { packed ? .packed : .split }

    public var layout: QueueLayout { profile.defaultLayout }

    /// Virtqueues: seed = RX + TX[0..pairs-1]; mq = pairs RX/TX + controlq.
    public var queueCount: Int { layout == .seed ? 1 + pairs : 2 * pairs + 1 }

    public var description: String {
        "\(profile) \(format) pairs=\(pairs) active=\(activePairs) N=\(queueSize) indirect=\(indirect) event_idx=\(eventIdx)\(inOrder ? " in_order" : "") start=\(startIndex) seed=\(seed)" + (fault.map { " fault=\($0.rawValue)" } ?? "")
    }
}

/// Bug classes the simulator can inject, each named after the rule it breaks.
public enum Fault: String, CaseIterable, Sendable {
    case inflight = "VQ-INFLIGHT"
    case availRead = "VQ-AVAIL-READ"
    case usedId = "VQ-USED-ID"
    case usedIdx = "VQ-USED-IDX"
    case driverOwnership = "VQ-DRIVER-OWNERSHIP"
    case descIndex = "VQ-DESC-INDEX"
    case chainLoop = "VQ-CHAIN-LOOP"
    case chainOrder = "VQ-CHAIN-ORDER"
    case indirectNext = "VQ-INDIRECT-NEXT"
    case usedLen = "VQ-USED-LEN"
    case interruptMissed = "VQ-INTERRUPT-MISSED"
    case singleConsumer = "VHOST-SINGLE-CONSUMER"
    case mapping = "VHOST-MAPPING"
    case ownerTwice = "VHOST-OWNER-TWICE"
    case ringStopped = "VHOST-RING-STOPPED"
    case txqInactive = "NET-TXQ-INACTIVE"
    case size = "VQ-SIZE"
    // Packed rings.
    case packedSize = "PACKED-SIZE"
    case packedDriverOwnership = "PACKED-DRIVER-OWNERSHIP"
    case packedFlagsLast = "PACKED-FLAGS-LAST"
    case packedChainHeadLast = "PACKED-CHAIN-HEAD-LAST"
    case packedWrapCounter = "PACKED-WRAP-COUNTER"
    case packedBufferId = "PACKED-BUFFER-ID"
    case packedDeviceOwnership = "PACKED-DEVICE-OWNERSHIP"
    case packedDeviceOrder = "PACKED-DEVICE-ORDER"
    case packedUsedId = "PACKED-USED-ID"
    case packedIndirectFlags = "PACKED-INDIRECT-FLAGS"
    case packedEventFlags = "PACKED-EVENT-FLAGS"
    case packedInterruptMissed = "PACKED-INTERRUPT-MISSED"
    case packedKickMissed = "PACKED-KICK-MISSED"

    public var rule: RuleID { RuleID(rawValue: rawValue)! }

    /// Whether the fault is one of a packed ring (its configuration negotiates VIRTIO_F_RING_PACKED).
    public var packed: Bool { rawValue.hasPrefix("PACKED-") }

    /// The configuration the randomized tests inject this fault into for `seed`: profile, pairs,
    /// queue size (packed faults also on sizes that are not powers of two), EVENT_IDX and IN_ORDER
    /// vary with the seed, the ring starts near the index wrap; then `adapt`ed to the fault.
    public func schedule(seed: UInt64) -> ScheduleConfig {
        adapt(ScheduleConfig(profile: Profile.allCases[Int(seed) % Profile.allCases.count], pairs: 2 + Int(seed % 3),
                             queueSize: packed ? [3, 16, 250][Int(seed) % 3] : [4, 16, 256][Int(seed) % 3], eventIdx: seed % 2 == 0,
                             startIndex: 65530, seed: seed, inOrder: seed % 3 == 1))
    }

    /// A configuration in which this fault is meaningful (e.g. indirect needs the feature,
    /// a mapping fault needs two workers, an inactive TX queue needs fewer active pairs).
    public func adapt(_ c: ScheduleConfig) -> ScheduleConfig {
        var c = c
        c.fault = self
        c.packed = packed
        if !packed { c.inOrder = false }
        switch self {
        case .indirectNext: c.indirect = true
        case .chainOrder:
            // Needs a control queue (mq layout): a misordered RX or TX chain also breaks framing.
            if c.layout == .seed { c.profile = .linuxUpstream }
        case .ownerTwice:
            // vhost-user accepts a SET_OWNER per queue pair; only kernel vhost refuses a second one.
            if c.profile == .vhostUser { c.profile = .linuxWorkers }
        case .singleConsumer: c.profile = .vhostUser
        case .mapping:
            if c.profile == .vhostUser || c.profile == .linuxWorkers { c.profile = .seedRFC2 }
            c.pairs = max(c.pairs, 2); c.activePairs = c.pairs
        case .txqInactive:
            if c.profile == .vhostUser || c.layout == .seed { c.profile = .linuxUpstream }
            c.pairs = max(c.pairs, 2); c.activePairs = 1
        case .packedIndirectFlags: c.indirect = true
        // A missed interrupt needs a lap of ring to make ENABLE owed; the event-idx DESC case is
        // part of the conformant runs.
        case .packedInterruptMissed: c.eventIdx = false
        default: break
        }
        return c
    }
}
