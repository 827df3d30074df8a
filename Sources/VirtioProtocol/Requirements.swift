/// The requirements table: every normative statement of the sources this project checks, in our
/// words, with whether a trace can observe it and which rules (and `drive` scenarios) cover it.
/// `Specs/requirements.md` is generated from this table (`conformance rules --requirements`) and a
/// test keeps the two identical; `conformance rules --coverage` measures it.
///
/// Sources (the versions read): virtio-spec @ 15f488c (virtio-v1.4-cs01): split-ring.tex,
/// packed-ring.tex, content.tex, device-types/net/description.tex; QEMU docs/interop/vhost-user.rst
/// @ f6b615b; Linux include/uapi/linux/vhost.h and drivers/vhost/{vhost,net}.c; the seed RFC.
/// Sections are named by title (numbers differ between spec versions).
public enum RequirementGroup: String, CaseIterable, Sendable {
    case split = "Split virtqueues"
    case packed = "Packed virtqueues"
    case features = "Ring feature bits"
    case net = "virtio-net queues"
    case vhostUser = "vhost-user"
    case kernel = "Linux vhost"
    case seed = "Seed RFC"

    /// Where the group's statements come from.
    public var source: String {
        switch self {
        case .split: return "virtio-spec split-ring.tex"
        case .packed: return "virtio-spec packed-ring.tex"
        case .features: return "virtio-spec content.tex (Feature Bits, Reserved Feature Bits, Virtqueues, Driver Notifications)"
        case .net: return "virtio-spec device-types/net/description.tex"
        case .vhostUser: return "QEMU docs/interop/vhost-user.rst"
        case .kernel: return "Linux include/uapi/linux/vhost.h, drivers/vhost/vhost.c, drivers/vhost/net.c"
        case .seed: return "seed/000_dc5a8c7897c2114d.txt (RFC \"Implement transmit MQ in virtio-net\", rev2)"
        }
    }
}

/// Strength of a statement: the spec's keyword, or "implied" for a rule the data structures imply
/// (and real devices enforce) without a keyword of its own.
public enum RequirementLevel: String, Sendable {
    case must = "MUST"
    case mustNot = "MUST NOT"
    case should = "SHOULD"
    case shouldNot = "SHOULD NOT"
    case implied = "implied"
}

public enum RequirementSide: String, Sendable {
    case driver, device
    case frontEnd = "front-end"
    case backEnd = "back-end"
}

/// Whether a trace can observe the statement being kept or broken.
public enum Observability: Sendable, Equatable {
    /// Fully: the events a trace carries decide it.
    case yes
    /// Partly, and why not fully.
    case partly(String)
    /// Not at all, and why.
    case no(String)

    public var word: String {
        switch self {
        case .yes: return "yes"
        case .partly: return "partly"
        case .no: return "no"
        }
    }
    public var why: String? {
        switch self {
        case .yes: return nil
        case .partly(let w), .no(let w): return w
        }
    }
}

public struct Requirement: Sendable {
    public let id: String
    public let group: RequirementGroup
    /// Section title within the group's source.
    public let section: String
    public let level: RequirementLevel
    /// The statement, in our words.
    public let text: String
    public let side: RequirementSide
    public let observable: Observability
    /// Rules that judge it (empty: none).
    public let rules: [RuleID]
    // The `drive` scenarios that exercise a requirement are not listed here: each scenario names
    // its requirements (`Sources/Drive/Catalogue.swift`), and the table's column is computed from
    // that one definition (`RequirementTable.markdown(driveScenarios:)`).
    /// For a fully observable statement without a rule: why there is none.
    public let unruled: String?

    init(_ id: String, _ group: RequirementGroup, _ section: String, _ level: RequirementLevel, _ text: String,
         _ side: RequirementSide, _ observable: Observability, _ rules: [RuleID], unruled: String? = nil) {
        self.id = id; self.group = group; self.section = section; self.level = level; self.text = text
        self.side = side; self.observable = observable; self.rules = rules; self.unruled = unruled
    }

    /// Fully observable and judged by at least one rule.
    public var covered: Bool { observable == .yes && !rules.isEmpty }

    /// The requirements a rule checks.
    public static func checked(by rule: RuleID) -> [Requirement] { all.filter { $0.rules.contains(rule) } }

    static let packedMultiBufferNote = "which used descriptors make one request (num_buffers) is in the packet's header, which packed traces do not carry yet; the model accepts the first marked last (DPDK's batches) and holds every used descriptor to PACKED-DEVICE-ORDER"
    static let spuriousNote = "a SHOULD NOT whose breach the spec makes harmless (the other side MUST handle spurious notifications); flagging it would fail implementations that notify eagerly, and the flag or event index it depends on may change just after the check"

    public static let all: [Requirement] = split + packed + ringFeatures + net + vhostUser + kernel + seed

    // MARK: split virtqueues (split-ring.tex)

    static let split: [Requirement] = [
        Requirement("SPLIT-01", .split, "Split Virtqueues", .implied, "A split queue's size is a power of two, at most 32768.",
                    .device, .yes, [.vqSize]),
        Requirement("SPLIT-02", .split, "Split Virtqueues", .implied, "At most queue-size buffers are outstanding at once.",
                    .driver, .yes, [.vqInflight]),
        Requirement("SPLIT-03", .split, "Virtqueues (driver requirements)", .must,
                    "Each ring part starts on its alignment: descriptor table 16, available ring 2, used ring 4 bytes.",
                    .driver, .yes, [.vqRingAlign]),
        Requirement("SPLIT-04", .split, "Legacy Interfaces: Virtqueue Layout and Endianness", .must,
                    "Legacy (transitional) devices and drivers use the padded legacy layout and guest-native endianness.",
                    .driver, .no("traces carry decoded values, not byte layouts, and the project models VIRTIO_F_VERSION_1 rings only"), []),
        Requirement("SPLIT-05", .split, "Message Framing (device requirements)", .mustNot,
                    "The device makes no assumption about how a buffer is split into descriptors.",
                    .device, .no("an assumption shows only in the data the device produces, which traces do not carry"), []),
        Requirement("SPLIT-06", .split, "Message Framing (driver requirements)", .must,
                    "In a chain, device-writable descriptors come after every device-readable one.",
                    .driver, .yes, [.vqChainOrder]),
        Requirement("SPLIT-07", .split, "Message Framing (driver requirements)", .shouldNot,
                    "The driver uses no excessive number of descriptors for one buffer.",
                    .driver, .partly("\"excessive\" has no number; only the queue-size limit is decidable (VQ-CHAIN-LENGTH)"), [.vqChainLength]),
        Requirement("SPLIT-08", .split, "The Virtqueue Descriptor Table (device requirements)", .mustNot,
                    "The device never writes a device-readable buffer, and should not read a device-writable one.",
                    .device, .no("traces record ring events, not the device's memory accesses"), []),
        Requirement("SPLIT-09", .split, "The Virtqueue Descriptor Table (device requirements)", .mustNot,
                    "The device never writes a descriptor table entry.",
                    .device, .no("a trace attributes every descriptor write to the driver; a recorder could diff the table, ours does not"), []),
        Requirement("SPLIT-10", .split, "The Virtqueue Descriptor Table (driver requirements)", .mustNot,
                    "No chain totals more than 2^32 bytes; hence no loops.",
                    .driver, .yes, [.vqChainLength, .vqChainLoop]),
        Requirement("SPLIT-11", .split, "The Virtqueue Descriptor Table", .implied,
                    "Head and next indices lie inside the table (the table has queue-size entries).",
                    .driver, .yes, [.vqDescIndex]),
        Requirement("SPLIT-12", .split, "The Virtqueue Descriptor Table (driver requirements)", .must,
                    "With IN_ORDER, a descriptor at offset x that has NEXT names x + 1, or 0 after the last table entry.",
                    .driver, .yes, [.vqInOrderNext]),
        Requirement("SPLIT-13", .split, "Indirect Descriptors (driver requirements)", .mustNot,
                    "INDIRECT only when VIRTIO_F_INDIRECT_DESC was negotiated.",
                    .driver, .yes, [.vqIndirectFeature]),
        Requirement("SPLIT-14", .split, "Indirect Descriptors (driver requirements)", .mustNot,
                    "No INDIRECT inside an indirect table (one table per descriptor).",
                    .driver, .yes, [.vqIndirectNested]),
        Requirement("SPLIT-15", .split, "Indirect Descriptors (driver requirements)", .mustNot,
                    "No chain longer than the queue size, also when it runs through an indirect table (VIRTIO-87).",
                    .driver, .yes, [.vqChainLength, .vqChainLoop]),
        Requirement("SPLIT-16", .split, "Indirect Descriptors (driver requirements)", .mustNot,
                    "No descriptor has both INDIRECT and NEXT.",
                    .driver, .yes, [.vqIndirectNext]),
        Requirement("SPLIT-17", .split, "Indirect Descriptors (driver requirements)", .must,
                    "With IN_ORDER, indirect entries are sequential: entry j that has NEXT names j + 1.",
                    .driver, .yes, [.vqInOrderNext]),
        Requirement("SPLIT-18", .split, "Indirect Descriptors", .implied,
                    "An indirect table is len/16 descriptors: len is a non-zero multiple of 16 (vhost also caps it at 65536 entries).",
                    .driver, .yes, [.vqIndirectLen]),
        Requirement("SPLIT-19", .split, "Indirect Descriptors (device requirements)", .must,
                    "The device ignores WRITE on the descriptor that points to an indirect table.",
                    .device, .partly("only a used len that counts the table's own length shows it; VQ-USED-LEN, which ignores the flag as required, catches that when the len exceeds the writable bytes"), [.vqUsedLen]),
        Requirement("SPLIT-20", .split, "Indirect Descriptors (device requirements)", .must,
                    "The device accepts zero or more chained descriptors followed by one INDIRECT descriptor.",
                    .device, .partly("a device that rejects such a chain shows only by never using it, which a finite trace cannot tell from slowness"), []),
        Requirement("SPLIT-21", .split, "The Virtqueue Available Ring (driver requirements)", .mustNot,
                    "The driver never decrements avail.idx: there is no way to unexpose a buffer.",
                    .driver, .yes, [.vqInflight]),
        Requirement("SPLIT-22", .split, "Updating idx", .implied,
                    "Once avail.idx exposes a chain the device may use it at once, so the driver leaves it alone until it is used.",
                    .driver, .yes, [.vqDriverOwnership]),
        Requirement("SPLIT-23", .split, "Updating idx", .implied,
                    "The device reads available entries in order and none at or past avail.idx.",
                    .device, .yes, [.vqAvailRead]),
        Requirement("SPLIT-24", .split, "Updating idx (driver requirements)", .must,
                    "A memory barrier before each avail.idx update.",
                    .driver, .no("barriers are not events"), []),
        Requirement("SPLIT-25", .split, "Notifying The Device (driver requirements)", .must,
                    "A memory barrier before reading used.flags or avail_event.",
                    .driver, .no("barriers are not events"), []),
        Requirement("SPLIT-26", .split, "Used Buffer Notification Suppression (driver requirements)", .must,
                    "Without EVENT_IDX, avail.flags is 0 or 1; with EVENT_IDX it is 0.",
                    .driver, .yes, [.vqNotifyFlags]),
        Requirement("SPLIT-27", .split, "Used Buffer Notification Suppression (driver requirements)", .must,
                    "The driver copes with spurious used buffer notifications.",
                    .driver, .no("how the driver reacts to an interrupt is internal"), []),
        Requirement("SPLIT-28", .split, "Used Buffer Notification Suppression (device requirements)", .must,
                    "Without EVENT_IDX the device ignores used_event.",
                    .device, .yes, [.vqInterruptMissed]),
        Requirement("SPLIT-29", .split, "Used Buffer Notification Suppression (device requirements)", .must,
                    "Without EVENT_IDX, after writing a used entry with avail.flags 0, the device notifies.",
                    .device, .yes, [.vqInterruptMissed]),
        Requirement("SPLIT-30", .split, "Used Buffer Notification Suppression (device requirements)", .shouldNot,
                    "Without EVENT_IDX, with avail.flags 1, the device does not notify.",
                    .device, .yes, [], unruled: spuriousNote),
        Requirement("SPLIT-31", .split, "Used Buffer Notification Suppression (device requirements)", .must,
                    "With EVENT_IDX the device ignores the low bit of avail.flags.",
                    .device, .yes, [.vqInterruptMissed]),
        Requirement("SPLIT-32", .split, "Used Buffer Notification Suppression (device requirements)", .must,
                    "With EVENT_IDX, when the used idx it wrote past equals used_event, the device notifies.",
                    .device, .yes, [.vqInterruptMissed]),
        Requirement("SPLIT-33", .split, "Used Buffer Notification Suppression (device requirements)", .shouldNot,
                    "With EVENT_IDX, otherwise the device does not notify.",
                    .device, .yes, [], unruled: spuriousNote),
        Requirement("SPLIT-34", .split, "The Virtqueue Used Ring", .implied,
                    "A used element's id is the head of a chain the driver made available and the device still owns.",
                    .device, .yes, [.vqUsedId]),
        Requirement("SPLIT-35", .split, "The Virtqueue Used Ring (device requirements)", .must,
                    "The device writes the element (and its len) before the used.idx update that publishes it.",
                    .device, .yes, [.vqUsedIdx]),
        Requirement("SPLIT-36", .split, "The Virtqueue Used Ring", .implied,
                    "used.idx moves over at most queue-size elements and never past what the device took.",
                    .device, .yes, [.vqUsedIdx]),
        Requirement("SPLIT-37", .split, "The Virtqueue Used Ring (device requirements)", .must,
                    "Before publishing, the device has written at least len bytes from the first device-writable buffer.",
                    .device, .partly("whether the bytes were written is not traced; that len does not exceed the writable bytes is (VQ-USED-LEN)"), [.vqUsedLen]),
        Requirement("SPLIT-38", .split, "The Virtqueue Used Ring", .implied,
                    "len counts only bytes written into the device-writable part: at most its total length.",
                    .device, .yes, [.vqUsedLen]),
        Requirement("SPLIT-39", .split, "The Virtqueue Used Ring (driver requirements)", .mustNot,
                    "The driver relies on no data beyond len.",
                    .driver, .no("what the driver reads from a buffer is internal"), []),
        Requirement("SPLIT-40", .split, "In-order use of descriptors", .implied,
                    "With IN_ORDER one used element may retire a batch; the skipped buffers count as used in full.",
                    .device, .partly("the model retires skipped positions in avail order; where the spec places the batch's single element (the first position, naming the last buffer) differs from the model's expectation (see the report of issue 10)"), [.vqUsedId, .vqUsedIdx]),
        Requirement("SPLIT-41", .split, "Available Buffer Notification Suppression (driver requirements)", .must,
                    "The driver initialises used.flags to 0 when it allocates the used ring.",
                    .driver, .no("allocation precedes every traced event; the device writes used.flags afterwards"), []),
        Requirement("SPLIT-42", .split, "Available Buffer Notification Suppression (driver requirements)", .must,
                    "Without EVENT_IDX the driver ignores avail_event.",
                    .driver, .yes, [.vqKickMissed]),
        Requirement("SPLIT-43", .split, "Available Buffer Notification Suppression (driver requirements)", .must,
                    "Without EVENT_IDX, after making buffers available with used.flags 0, the driver notifies.",
                    .driver, .yes, [.vqKickMissed]),
        Requirement("SPLIT-44", .split, "Available Buffer Notification Suppression (driver requirements)", .shouldNot,
                    "Without EVENT_IDX, with used.flags 1, the driver does not notify.",
                    .driver, .yes, [], unruled: spuriousNote),
        Requirement("SPLIT-45", .split, "Available Buffer Notification Suppression (driver requirements)", .must,
                    "With EVENT_IDX the driver ignores the low bit of used.flags.",
                    .driver, .yes, [.vqKickMissed]),
        Requirement("SPLIT-46", .split, "Available Buffer Notification Suppression (driver requirements)", .must,
                    "With EVENT_IDX, when the avail idx it wrote past equals avail_event, the driver notifies.",
                    .driver, .yes, [.vqKickMissed]),
        Requirement("SPLIT-47", .split, "Available Buffer Notification Suppression (driver requirements)", .shouldNot,
                    "With EVENT_IDX, otherwise the driver does not notify.",
                    .driver, .yes, [], unruled: spuriousNote),
        Requirement("SPLIT-48", .split, "Available Buffer Notification Suppression (device requirements)", .must,
                    "Without EVENT_IDX, used.flags is 0 or 1; with EVENT_IDX it is 0.",
                    .device, .yes, [.vqNotifyFlags]),
        Requirement("SPLIT-49", .split, "Available Buffer Notification Suppression (device requirements)", .must,
                    "The device copes with spurious available buffer notifications.",
                    .device, .no("how the device reacts to a kick is internal"), []),
        Requirement("SPLIT-50", .split, "Supplying Buffers to The Device", .implied,
                    "The driver writes the chain's head into the avail ring before the avail.idx update that exposes it.",
                    .driver, .partly("an exposed slot never written is skipped, not judged: a trace may leave out what it did not see"), []),
    ]

    // MARK: packed virtqueues (packed-ring.tex)

    static let packed: [Requirement] = [
        Requirement("PACKED-01", .packed, "Structure Size and Alignment", .implied, "Queue size need not be a power of two; at most 32768.",
                    .device, .yes, [.packedSize]),
        Requirement("PACKED-02", .packed, "Virtqueues (driver requirements)", .must, "Descriptor ring aligned on 16, event suppression structures on 4.",
                    .driver, .yes, [.vqRingAlign]),
        Requirement("PACKED-03", .packed, "Virtqueues (device requirements)", .must, "The device starts processing descriptors in ring order.",
                    .device, .yes, [.packedDeviceOrder]),
        Requirement("PACKED-04", .packed, "Virtqueues (device requirements)", .must, "The device starts writing used descriptors in the order they complete.",
                    .device, .yes, [.packedDeviceOrder]),
        Requirement("PACKED-05", .packed, "The Virtqueue Descriptor Table (device requirements)", .mustNot,
                    "The device never writes a device-readable buffer, and should not read a device-writable one.",
                    .device, .no("traces record ring events, not the device's memory accesses"), []),
        Requirement("PACKED-06", .packed, "The Virtqueue Descriptor Table (device requirements)", .mustNot,
                    "The device uses a descriptor only once it sees its AVAIL bit changed.", .device, .yes, [.packedDeviceOwnership]),
        Requirement("PACKED-07", .packed, "The Virtqueue Descriptor Table (device requirements)", .mustNot,
                    "The device never changes a descriptor after changing its USED bit.", .device, .yes, [.packedDeviceOwnership]),
        Requirement("PACKED-08", .packed, "The Virtqueue Descriptor Table (driver requirements)", .mustNot,
                    "The driver changes a descriptor only once it sees its USED bit changed.", .driver, .yes, [.packedDriverOwnership]),
        Requirement("PACKED-09", .packed, "The Virtqueue Descriptor Table (driver requirements)", .mustNot,
                    "The driver never changes a descriptor after changing its AVAIL bit.", .driver, .yes, [.packedFlagsLast]),
        Requirement("PACKED-10", .packed, "The Virtqueue Descriptor Table (driver requirements)", .must,
                    "With NOTIFICATION_DATA, a notification's next_off/next_wrap name the next descriptor not yet made available.",
                    .driver, .partly("kicks reach a vhost back-end as eventfd signals without the data; only an instrumented driver sees it"), []),
        Requirement("PACKED-11", .packed, "Scatter-Gather Support (driver requirements)", .mustNot,
                    "No descriptor list longer than the device allows.", .driver, .partly("the device's limit is not in traces"), []),
        Requirement("PACKED-12", .packed, "Scatter-Gather Support (driver requirements)", .mustNot,
                    "No descriptor list longer than the queue size; hence no loops.", .driver, .yes, [.vqChainLoop]),
        Requirement("PACKED-13", .packed, "Scatter-Gather Support (driver requirements)", .must,
                    "Device-writable elements after device-readable ones.", .driver, .yes, [.vqChainOrder]),
        Requirement("PACKED-14", .packed, "Scatter-Gather Support (driver requirements)", .must,
                    "Room for the whole list before its first descriptor is made available.", .driver, .yes, [.packedDriverOwnership]),
        Requirement("PACKED-15", .packed, "Scatter-Gather Support (driver requirements)", .mustNot,
                    "The first descriptor of a list is made available only after all the others.", .driver, .yes, [.packedChainHeadLast]),
        Requirement("PACKED-16", .packed, "Scatter-Gather Support (device requirements)", .must,
                    "The device uses a NEXT-chained list in the order it was made available.", .device, .yes, [.packedDeviceOrder]),
        Requirement("PACKED-17", .packed, "Indirect Descriptors (driver requirements)", .mustNot,
                    "INDIRECT only with INDIRECT_DESC; no flag but WRITE inside an indirect table.", .driver, .yes, [.vqIndirectFeature, .packedIndirectFlags]),
        Requirement("PACKED-18", .packed, "Indirect Descriptors (driver requirements)", .mustNot,
                    "No INDIRECT descriptor inside a NEXT-linked list.", .driver, .yes, [.vqIndirectNext]),
        Requirement("PACKED-19", .packed, "Supplying Buffers: Updating flags / Sending Notifications (driver requirements)", .must,
                    "Memory barriers before the flags update and before reading the event suppression structure.",
                    .driver, .no("barriers are not events"), []),
        Requirement("PACKED-20", .packed, "Driver and Device Ring Wrap Counters", .implied,
                    "Both wrap counters start at 1 and flip after the last slot; AVAIL != USED means available, equal means used.",
                    .driver, .yes, [.packedWrapCounter]),
        Requirement("PACKED-21", .packed, "Driver and Device Event Suppression", .implied,
                    "Event flags DESC only with EVENT_IDX; value 3 reserved.", .driver, .yes, [.packedEventFlags]),
        Requirement("PACKED-22", .packed, "Driver and Device Event Suppression", .implied,
                    "The device notifies per the driver's event suppression structure (ENABLE, or DESC at the named offset and wrap).",
                    .device, .yes, [.packedInterruptMissed]),
        Requirement("PACKED-23", .packed, "Driver and Device Event Suppression", .implied,
                    "The driver kicks per the device's event suppression structure.", .driver, .yes, [.packedKickMissed]),
        Requirement("PACKED-24", .packed, "In-order use of descriptors", .implied,
                    "With IN_ORDER one used descriptor (last buffer's id) retires a batch; skipped buffers count as used.",
                    .device, .yes, [.packedUsedId]),
        Requirement("PACKED-25", .packed, "Multi-buffer requests", .implied,
                    "A device combining buffers marks the first used only after the rest are written.", .device, .yes, [], unruled: packedMultiBufferNote),
        Requirement("PACKED-26", .packed, "Next Flag: Descriptor Chaining; Placing Available Buffers Into The Descriptor Ring", .implied,
                    "A buffer's id is on the last descriptor of its list, and no other buffer in flight has it (the used descriptor names the buffer by it).",
                    .driver, .yes, [.packedBufferId]),
    ]

    // MARK: ring feature bits and feature negotiation (content.tex)

    static let ringFeatures: [Requirement] = [
        Requirement("FEAT-01", .features, "Feature Bits (driver requirements)", .mustNot,
                    "The driver accepts no feature the device did not offer.",
                    .driver, .partly("judged where the trace records the offer (a get_features event: vhost-user recorders and serve write it)"), [.vhostFeaturesOffered]),
        Requirement("FEAT-02", .features, "Feature Bits (driver requirements)", .mustNot,
                    "The driver accepts no feature without the features it requires (virtio-net's table: see NET-02, NET-03).",
                    .driver, .yes, [.netFeatureDeps]),
        Requirement("FEAT-03", .features, "Feature Bits (device requirements)", .mustNot,
                    "The device offers no feature without those it requires.",
                    .device, .partly("the offer is in traces only as get_features; the negotiated set is judged by NET-FEATURE-DEPS"), []),
        Requirement("FEAT-04", .features, "Reserved Feature Bits: VIRTIO_F_INDIRECT_DESC (28)", .implied,
                    "INDIRECT descriptors only once the feature is negotiated.", .driver, .yes, [.vqIndirectFeature]),
        Requirement("FEAT-05", .features, "Reserved Feature Bits: VIRTIO_F_EVENT_IDX (29)", .implied,
                    "used_event/avail_event rule notifications only with the feature; without it the flags do.",
                    .device, .yes, [.vqInterruptMissed, .vqKickMissed, .vqNotifyFlags]),
        Requirement("FEAT-06", .features, "Reserved Feature Bits (device requirements): VIRTIO_F_IN_ORDER (35)", .must,
                    "With IN_ORDER the device uses buffers in the order they were made available.", .device, .yes, [.vqUsedId]),
        Requirement("FEAT-07", .features, "Reserved Feature Bits: VIRTIO_F_RING_PACKED (34)", .implied,
                    "With RING_PACKED every ring is packed.", .device, .yes, [.packedWrapCounter, .packedSize]),
        Requirement("FEAT-08", .features, "Driver Notifications: VIRTIO_F_NOTIFICATION_DATA (38)", .implied,
                    "With NOTIFICATION_DATA a split-ring notification carries avail.idx (15 bits) and its wrap bit.",
                    .driver, .partly("a vhost back-end receives kicks as eventfd signals without the data; the kick event has no data field"), []),
        Requirement("FEAT-09", .features, "Reserved Feature Bits (driver requirements): VIRTIO_F_ACCESS_PLATFORM (33)", .must,
                    "Without ACCESS_PLATFORM the driver passes only physical addresses: every buffer lies in guest memory.",
                    .driver, .yes, [.vhostMemBufferAddr]),
        Requirement("FEAT-10", .features, "Reserved Feature Bits: VIRTIO_F_ACCESS_PLATFORM (33)", .implied,
                    "With ACCESS_PLATFORM addresses are IOVAs, translated by the IOTLB.",
                    .device, .partly("IOTLB messages are not in traces, so the memory-range rules do not judge such traces"), []),
        Requirement("FEAT-11", .features, "Reserved Feature Bits (driver/device requirements): VIRTIO_F_VERSION_1 (32)", .must,
                    "The device offers VERSION_1 and a driver accepts it when offered.",
                    .driver, .partly("offers are in traces only as get_features; the legacy header size follows the negotiated bit"), []),
        Requirement("FEAT-12", .features, "Virtqueue Reset (device requirements): VIRTIO_F_RING_RESET (40)", .mustNot,
                    "After a queue reset the device executes nothing from that queue and resets its state.",
                    .device, .partly("a transport queue reset is not an event; a driver rebuilding a ring is (ring_reset), and VHOST-RING-STOPPED judges activity on a stopped ring"), [.vhostRingStopped]),
        Requirement("FEAT-13", .features, "Reserved Feature Bits (driver requirements): VIRTIO_F_ORDER_PLATFORM (36)", .must,
                    "With ORDER_PLATFORM the driver uses hardware barriers.", .driver, .no("barriers are not events"), []),
    ]

    // MARK: virtio-net queue parts (device-types/net/description.tex)

    static let net: [Requirement] = [
        Requirement("NET-01", .net, "Virtqueues", .implied,
                    "receiveqk is vq 2(k-1), transmitqk 2(k-1)+1, controlq 2N; N = 1 without MQ/RSS, else max_virtqueue_pairs.",
                    .driver, .yes, [.netTxqInactive, .netRxqInactive, .vhostMapping]),
        Requirement("NET-02", .net, "Feature bit requirements", .implied,
                    "Offload features need their checksum feature (HOST_TSO4/6, UFO, USO need CSUM; GUEST_TSO4/6, UFO, USO4/6 need GUEST_CSUM; ECN needs TSO4 or TSO6).",
                    .driver, .yes, [.netFeatureDeps]),
        Requirement("NET-03", .net, "Feature bit requirements", .implied,
                    "Control-queue features need CTRL_VQ (MQ, RSS, CTRL_RX, CTRL_VLAN, GUEST_ANNOUNCE, CTRL_MAC_ADDR, NOTF_COAL, VQ_NOTF_COAL).",
                    .driver, .partly("QEMU hides CTRL_VQ from a vhost-user back-end (it keeps the control queue), so there it is not judged; elsewhere it is"), [.netFeatureDeps]),
        Requirement("NET-04", .net, "Device configuration layout (driver requirements)", .shouldNot,
                    "The driver negotiates neither HASH_REPORT nor CTRL_RX_EXTRA without CTRL_VQ.",
                    .driver, .partly("a SHOULD NOT, and a vhost-user back-end never sees CTRL_VQ"), []),
        Requirement("NET-05", .net, "Device configuration layout (device requirements)", .must,
                    "With MQ, max_virtqueue_pairs is 1...0x8000.",
                    .device, .partly("config space is not in traces; the layout's queue count bounds VQ_PAIRS_SET (NET-MQ-PAIRS-RANGE)"), [.netMQPairsRange]),
        Requirement("NET-06", .net, "Device Initialization", .implied,
                    "Even with MQ only receiveq1, transmitq1 and the controlq are used until VQ_PAIRS_SET.",
                    .driver, .yes, [.netTxqInactive, .netRxqInactive]),
        Requirement("NET-07", .net, "Packet Transmission", .implied,
                    "A transmit chain is device-readable and begins with the virtio-net header (vhost-net refuses anything else).",
                    .driver, .yes, [.netTxFraming]),
        Requirement("NET-08", .net, "Packet Transmission (driver requirements)", .must,
                    "The driver uses the same header size for TX as for RX (12 bytes, 20 with HASH_REPORT, ...).",
                    .driver, .yes, [.netTxFraming]),
        Requirement("NET-09", .net, "Packet Transmission (driver requirements)", .must,
                    "The driver sets num_buffers to 0 in a transmit header.",
                    .driver, .partly("no event carries the TX header yet (a recorder would read it as it reads RX headers)"), []),
        Requirement("NET-10", .net, "Packet Transmission (driver requirements)", .must,
                    "Without CSUM flags are 0; gso_type TCPV4/TCPV6/UDP/UDP_L4 only with HOST_TSO4/TSO6/UFO/USO.",
                    .driver, .partly("no event carries the TX header yet"), []),
        Requirement("NET-11", .net, "Packet Transmission (device requirements)", .must,
                    "The device ignores unknown header flags and uses csum fields only with NEEDS_CSUM.",
                    .device, .no("how the device interprets the header is internal"), []),
        Requirement("NET-12", .net, "Setting Up Receive Buffers", .implied,
                    "A receive chain is device-writable (vhost-net refuses readable descriptors on RX).",
                    .driver, .yes, [.netRxFraming]),
        Requirement("NET-13", .net, "Setting Up Receive Buffers (driver requirements)", .must,
                    "With MRG_RXBUF each receive buffer is at least a virtio-net header long.",
                    .driver, .yes, [.netRxFraming]),
        Requirement("NET-14", .net, "Setting Up Receive Buffers (driver requirements)", .should,
                    "Without MRG_RXBUF receive buffers hold a whole packet (1526 bytes, 65601 with guest GSO).",
                    .driver, .yes, [], unruled: "a SHOULD: smaller buffers are legal (the device drops what does not fit), and the guest GSO bits are hidden from kernel back-ends"),
        Requirement("NET-15", .net, "Setting Up Receive Buffers (driver requirements)", .should,
                    "With MQ, every receive queue that will be used is populated.",
                    .driver, .partly("\"will be used\" is the driver's intent; an empty RX queue is legal"), []),
        Requirement("NET-16", .net, "Setting Up Receive Buffers (device requirements)", .must,
                    "num_buffers is the number of buffers the packet uses; 1 (a single buffer) without MRG_RXBUF.",
                    .device, .yes, [.netRxNumBuffers]),
        Requirement("NET-17", .net, "Processing of Incoming Packets (device requirements)", .must,
                    "With MRG_RXBUF all buffers of a packet but the last are used to their full length.",
                    .device, .yes, [.netRxNumBuffers]),
        Requirement("NET-18", .net, "Processing of Incoming Packets (device requirements)", .must,
                    "The buffers of one packet are published together: at least num_buffers are seen used at once.",
                    .device, .yes, [.netRxNumBuffers]),
        Requirement("NET-19", .net, "Device Operation", .implied,
                    "Every received packet starts with the header: the used len of a packet's first buffer is at least the header size.",
                    .device, .yes, [.netRxUsedLen]),
        Requirement("NET-20", .net, "Processing of Incoming Packets (device requirements)", .must,
                    "Without GUEST_CSUM the header flags are 0; gso_type TCPV4/TCPV6/UDP/UDP_L4 only with GUEST_TSO4/TSO6/UFO/USO4|6.",
                    .device, .partly("judged on vhost-user only: a kernel back-end is never told the offload bits (QEMU gives them to the tap)"), [.netRxHdrOffload]),
        Requirement("NET-21", .net, "Processing of Incoming Packets (driver requirements)", .mustNot,
                    "The driver uses csum fields only as the flags allow and never relies on hdr_len.",
                    .driver, .no("how the driver interprets the header is internal"), []),
        Requirement("NET-22", .net, "Control Virtqueue", .implied,
                    "A command is class, command, data (device-readable), then the ack byte (device-writable): 0 OK, 1 ERR.",
                    .device, .partly("the command's bytes are not traced; mq_pairs_ack records the ack, and a chain on the controlq is judged as any chain"), [.vqChainOrder]),
        Requirement("NET-23", .net, "Automatic receive steering in multiqueue mode (driver requirements)", .must,
                    "The driver configures the virtqueues before enabling them with VQ_PAIRS_SET.",
                    .driver, .partly("transport queue configuration is not in traces; the vhost ring setup the VMM does for it is, before any activity (VHOST-RING-NOT-READY)"), [.vhostRingNotReady]),
        Requirement("NET-24", .net, "Automatic receive steering in multiqueue mode (driver requirements)", .mustNot,
                    "VQ_PAIRS_SET asks for neither 0 nor more than max_virtqueue_pairs.",
                    .driver, .yes, [.netMQPairsRange]),
        Requirement("NET-25", .net, "Automatic receive steering in multiqueue mode (driver requirements)", .must,
                    "Before VQ_PAIRS_SET the driver queues packets on transmitq1 only.",
                    .driver, .yes, [.netTxqInactive]),
        Requirement("NET-26", .net, "Automatic receive steering in multiqueue mode (driver requirements)", .mustNot,
                    "Once the command is in the avail ring, no packets on transmit queues above virtqueue_pairs.",
                    .driver, .yes, [.netTxqInactive]),
        Requirement("NET-27", .net, "Automatic receive steering in multiqueue mode (device requirements)", .must,
                    "After reset the device queues packets on receiveq1 only.",
                    .device, .yes, [.netRxqInactive]),
        Requirement("NET-28", .net, "Automatic receive steering in multiqueue mode (device requirements)", .mustNot,
                    "Once the device used the command, no packets on receive queues above virtqueue_pairs.",
                    .device, .yes, [.netRxqInactive]),
        Requirement("NET-29", .net, "Automatic receive steering in multiqueue mode", .should,
                    "Incoming packets of a flow go to the receive queue paired with the flow's transmit queue.",
                    .device, .no("flows are packet contents, which traces do not carry"), []),
        Requirement("NET-30", .net, "Automatic receive steering in multiqueue mode", .implied,
                    "VQ_PAIRS_SET is a command of class MQ: it needs MQ negotiated and a control queue.",
                    .driver, .partly("a kernel or vhost-user back-end is never told MQ/CTRL_VQ; the command is judged for its range only (NET-MQ-PAIRS-RANGE)"), [.netMQPairsRange]),
    ]

    // MARK: vhost-user (docs/interop/vhost-user.rst)

    static let vhostUser: [Requirement] = [
        Requirement("VU-01", .vhostUser, "Header", .must,
                    "Messages carry version 1 in the flags; the back-end sets REPLY on every reply.",
                    .backEnd, .partly("traces carry decoded messages; the recorder checks framing as it forwards"), []),
        Requirement("VU-02", .vhostUser, "Communication", .must,
                    "GET_FEATURES, GET_PROTOCOL_FEATURES, GET_VRING_BASE (and SET_LOG_BASE with LOG_SHMFD, GET_INFLIGHT_FD with INFLIGHT_SHMFD) get a reply.",
                    .backEnd, .partly("a missing reply shows as a hang, which the recorder reports; get_* events exist only with their answer"), []),
        Requirement("VU-03", .vhostUser, "Ring states", .mustNot,
                    "A stopped ring is not processed at all.", .backEnd, .yes, [.vhostRingStopped]),
        Requirement("VU-04", .vhostUser, "Ring states", .mustNot,
                    "A started, disabled ring supplies no new RX packets.", .backEnd, .yes, [.netRxqInactive]),
        Requirement("VU-05", .vhostUser, "Ring states", .must,
                    "A started, disabled ring still processes and discards TX packets.", .backEnd, .yes, [.vhostUserDisabledTxDrain]),
        Requirement("VU-06", .vhostUser, "Ring states", .must,
                    "A started, enabled ring is processed normally.",
                    .backEnd, .partly("liveness without a stated bound, and an application may legitimately stop pulling packets; the disabled case has one (VU-05)"), []),
        Requirement("VU-07", .vhostUser, "Ring states", .implied,
                    "Rings start stopped and disabled; a ring starts on its first kick (or at once with a \"no fd\" kick) and stops on GET_VRING_BASE.",
                    .backEnd, .yes, [.vhostRingNotReady, .vhostRingStopped]),
        Requirement("VU-08", .vhostUser, "Ring states", .must,
                    "SET_FEATURES without PROTOCOL_FEATURES enables every ring at once; with it rings stay disabled until SET_VRING_ENABLE 1.",
                    .backEnd, .yes, [.netRxqInactive]),
        Requirement("VU-09", .vhostUser, "Ring states", .implied,
                    "The enabled state is kept while a ring is stopped and applies when it starts again.", .backEnd, .yes, [.netRxqInactive]),
        Requirement("VU-10", .vhostUser, "Suspended device state", .mustNot,
                    "With every ring stopped, the device writes no guest memory and sends no notification.",
                    .backEnd, .partly("ring writes and interrupts are judged (VHOST-RING-STOPPED); messages on the back-end channel are not traced"), [.vhostRingStopped]),
        Requirement("VU-11", .vhostUser, "Multiple queue support", .implied,
                    "Multiple queues only with protocol feature MQ; GET_QUEUE_NUM only when MQ is in the queried protocol features.",
                    .frontEnd, .yes, [.vhostUserProtocolGate]),
        Requirement("VU-12", .vhostUser, "Multiple queue support", .should,
                    "The front-end uses no more queues than GET_QUEUE_NUM reported.", .frontEnd, .yes, [.vhostUserVringIndex]),
        Requirement("VU-13", .vhostUser, "VHOST_USER_SET_VRING_ENABLE", .should,
                    "SET_VRING_ENABLE only once VHOST_USER_F_PROTOCOL_FEATURES is negotiated.", .frontEnd, .yes, [.vhostUserEnableGate]),
        Requirement("VU-14", .vhostUser, "VHOST_USER_GET_VRING_BASE", .implied,
                    "GET_VRING_BASE stops the ring and returns the next avail index to process.",
                    .backEnd, .yes, [.vhostRingStopped, .vhostVringBaseRange]),
        Requirement("VU-15", .vhostUser, "VHOST_USER_GET_VRING_BASE", .must,
                    "The request's num field is reserved and 0.", .frontEnd, .partly("the request payload is not traced, only the reply"), []),
        Requirement("VU-16", .vhostUser, "VHOST_USER_SET_VRING_BASE", .implied,
                    "For a split ring SET_VRING_BASE sets only the next avail index; the used index is read from guest memory.",
                    .backEnd, .yes, [.vqAvailRead, .vqUsedIdx]),
        Requirement("VU-17", .vhostUser, "Migrating back-end state", .must,
                    "The front-end restarts a ring at the base GET_VRING_BASE handed over, so operation resumes.",
                    .frontEnd, .yes, [.vhostVringBaseResume]),
        Requirement("VU-18", .vhostUser, "Migration", .should,
                    "With VHOST_F_LOG_ALL the back-end marks every page it writes through descriptors in the dirty log.",
                    .backEnd, .yes, [.vhostLogBeforeUsed]),
        Requirement("VU-19", .vhostUser, "Migration", .should,
                    "With VHOST_VRING_F_LOG on a ring, used-ring writes are logged at log_guest_addr.", .backEnd, .yes, [.vhostLogBeforeUsed]),
        Requirement("VU-20", .vhostUser, "Migration", .must,
                    "The used ring's last byte falls inside the log size SET_LOG_BASE gives.",
                    .frontEnd, .yes, [], unruled: "needs the log size with the ring addresses; set_log_base records it but no rule compares them yet (a front-end that gets this wrong makes the back-end's log writes fail, which VHOST-LOG-BEFORE-USED then reports)"),
        Requirement("VU-21", .vhostUser, "Migration", .mustNot,
                    "Once the source finished migration its rings are stopped; no update before they restart.", .backEnd, .yes, [.vhostRingStopped]),
        Requirement("VU-22", .vhostUser, "Memory access", .implied,
                    "Ring addresses are front-end user addresses inside a region of the memory table.", .frontEnd, .yes, [.vhostMemRingAddr]),
        Requirement("VU-23", .vhostUser, "Memory access", .implied,
                    "Without IOMMU, descriptor addresses are guest addresses inside a region of the memory table.", .driver, .yes, [.vhostMemBufferAddr]),
        Requirement("VU-24", .vhostUser, "IOMMU support", .must,
                    "IOTLB entries lie within the memory table; the back-end acknowledges each.", .frontEnd, .partly("IOTLB messages are not traced"), []),
        Requirement("VU-25", .vhostUser, "VHOST_USER_PROTOCOL_F_REPLY_ACK", .must,
                    "With REPLY_ACK and NEED_REPLY set, the back-end answers success or failure.",
                    .backEnd, .partly("the NEED_REPLY flag is not traced, only the result; the recorder logs a refusal"), []),
        Requirement("VU-26", .vhostUser, "Inflight I/O tracking", .implied,
                    "With INFLIGHT_SHMFD the back-end tracks in-flight heads and resubmits them in order after a reconnect.",
                    .backEnd, .partly("the inflight region is shared memory no event describes yet"), []),
        Requirement("VU-27", .vhostUser, "Communication (reconnect)", .implied,
                    "After a reconnection the front-end sets up the rings again at their bases; the back-end resumes from them.",
                    .frontEnd, .yes, [.vhostVringBaseResume, .vqAvailRead]),
        Requirement("VU-28", .vhostUser, "In-band notifications", .implied,
                    "INBAND_NOTIFICATIONS is negotiated only with BACKEND_REQ and REPLY_ACK; in-band kicks and calls only once it is.",
                    .frontEnd, .yes, [.vhostUserInbandGate]),
        Requirement("VU-29", .vhostUser, "VHOST_USER_SET_VRING_KICK / SET_VRING_CALL", .implied,
                    "A \"no fd\" kick means the back-end polls; a \"no fd\" call means the front-end polls and no interrupt is owed.",
                    .backEnd, .yes, [.vqInterruptMissed, .vhostRingNotReady]),
        Requirement("VU-30", .vhostUser, "VHOST_USER_SET_BACKEND_REQ_FD, SET_STATUS, GET_STATUS, RESET_DEVICE", .should,
                    "Each only with its protocol feature (BACKEND_REQ, STATUS, STATUS, RESET_DEVICE).", .frontEnd, .yes, [.vhostUserProtocolGate]),
        Requirement("VU-31", .vhostUser, "VHOST_USER_GET_PROTOCOL_FEATURES / SET_PROTOCOL_FEATURES", .implied,
                    "Only when PROTOCOL_FEATURES is in GET_FEATURES; the back-end supports them before SET_FEATURES.",
                    .frontEnd, .partly("judged only where get_features / get_protocol_features record the offers; that the back-end supports them is its side, not observable"), [.vhostFeaturesOffered]),
        Requirement("VU-32", .vhostUser, "VHOST_USER_SET_OWNER", .implied,
                    "SET_OWNER starts the session; ring messages come after it (QEMU negotiates features before).", .frontEnd, .yes, [.vhostOwnerFirst]),
        Requirement("VU-33", .vhostUser, "VHOST_USER_RESET_OWNER", .implied,
                    "Deprecated: back-ends ignore it or disable all rings.", .backEnd, .partly("either reaction is allowed; the model drops ring state"), []),
        Requirement("VU-34", .vhostUser, "Multiple queue support", .implied,
                    "vhost-user-net has historically enabled the first queue pair itself.",
                    .backEnd, .partly("the model follows the newer Ring states text (rings start disabled with PROTOCOL_FEATURES); QEMU enables pair 0 explicitly"), [.netRxqInactive]),
    ]

    // MARK: Linux vhost (uapi and drivers/vhost)

    static let kernel: [Requirement] = [
        Requirement("KV-01", .kernel, "uapi vhost.h VHOST_SET_OWNER", .must,
                    "SET_OWNER comes before every other command (vhost_dev_check_owner: -EPERM).", .frontEnd, .yes, [.vhostOwnerFirst]),
        Requirement("KV-02", .kernel, "uapi vhost.h VHOST_SET_OWNER", .implied,
                    "A second SET_OWNER fails until RESET_OWNER (-EBUSY).", .backEnd, .yes, [.vhostOwnerTwice]),
        Requirement("KV-03", .kernel, "vhost.c vhost_vring_set_num", .implied,
                    "SET_VRING_NUM accepts only powers of two up to 32768.", .backEnd, .yes, [.vqSize]),
        Requirement("KV-04", .kernel, "vhost.c vhost_vring_set_num / VHOST_SET_VRING_BASE", .implied,
                    "SET_VRING_NUM and SET_VRING_BASE fail with -EBUSY while a backend is attached.", .backEnd, .yes, [.vhostRingBusy]),
        Requirement("KV-05", .kernel, "vhost.c vhost_vring_set_addr", .implied,
                    "SET_VRING_ADDR refuses a misaligned available (2) or used (4) ring with -EINVAL.", .backEnd, .yes, [.vqRingAlign]),
        Requirement("KV-06", .kernel, "vhost.c VHOST_GET_VRING_BASE", .implied,
                    "GET_VRING_BASE returns last_avail_idx and does not stop the ring.", .backEnd, .yes, [.vhostVringBaseRange]),
        Requirement("KV-07", .kernel, "net.c vhost_net_set_backend", .implied,
                    "Detaching the backend (fd -1) stops the ring; attaching one starts it.", .backEnd, .yes, [.vhostRingStopped, .vhostRingNotReady]),
        Requirement("KV-08", .kernel, "uapi vhost.h worker ioctls (Linux 6.5)", .implied,
                    "FREE_WORKER of an attached worker fails (-EBUSY); unknown ids fail (-ENODEV).", .backEnd, .yes, [.vhostWorkerLifecycle]),
        Requirement("KV-09", .kernel, "vhost.c (vq->worker)", .implied,
                    "One worker serves a vq at a time.", .backEnd, .yes, [.vhostSingleConsumer]),
        Requirement("KV-10", .kernel, "net.c (VHOST_NET_VQ_MAX = 2)", .implied,
                    "A vhost-net device has an RX and a TX vq; the virtio-net control queue is the VMM's.", .backEnd, .yes, [.vhostMapping]),
        Requirement("KV-11", .kernel, "net.c get_tx_bufs / get_rx_bufs", .implied,
                    "vhost-net refuses TX chains with writable or short descriptors and RX chains with readable ones.", .driver, .yes, [.netTxFraming, .netRxFraming]),
        Requirement("KV-12", .kernel, "vhost.c vhost_log_write, log_used", .implied,
                    "With VHOST_F_LOG_ALL, vhost logs the pages it writes and the used ring before the guest can see the update used.",
                    .backEnd, .yes, [.vhostLogBeforeUsed]),
        Requirement("KV-13", .kernel, "vhost.c vhost_notify", .implied,
                    "vhost decides and sends the used notification in the pass that published.", .backEnd, .yes, [.vqInterruptMissed]),
    ]

    // MARK: the seed RFC

    static let seed: [Requirement] = [
        Requirement("SEED-01", .seed, "@1898 \"smp > 1 - vhost=on - mq=on ... then #txqueues = #cpus\"", .implied,
                    "Multiple TX queues only when the VMM asks (smp > 1, vhost=on, mq=on), numtxqs overriding; traffic only on the queues that exist.",
                    .driver, .yes, [.netTxqInactive]),
        Requirement("SEED-02", .seed, "@452 \"passing an argument to SET_OWNER (retaining backward compatibility)\"", .implied,
                    "SET_OWNER with an argument W creates several workers; without one, exactly the old single worker.",
                    .backEnd, .yes, [.vhostOwnerCompat]),
        Requirement("SEED-03", .seed, "@1400 \"Restrict number of vhost threads to 2\"", .implied,
                    "rev2 caps the workers at 2.", .backEnd, .yes, [.vhostOwnerCompat]),
        Requirement("SEED-04", .seed, "@1642-1951 \"Working of vhost threads\"", .implied,
                    "rev2 mapping: RX to vhost-0, TX[i] to vhost-((i+1) mod 2); rev1: one thread per TX queue.",
                    .backEnd, .yes, [.vhostMapping]),
        Requirement("SEED-05", .seed, "@1642 \"Working of vhost threads\"", .implied,
                    "Each vq is handled by one thread at a time.", .backEnd, .yes, [.vhostSingleConsumer]),
        Requirement("SEED-06", .seed, "@682 \"earlier patch (with unrestricted #vhosts)\"", .implied,
                    "rev1 gives as many workers as asked for.", .backEnd, .yes, [.vhostOwnerCompat, .vhostMapping]),
        Requirement("SEED-07", .seed, "\"numtxqs=1 or mq=off: no change from the original code\"", .implied,
                    "Without MQ the old single-queue, single-thread behaviour.", .backEnd, .yes, [.vhostOwnerCompat, .netTxqInactive]),
        Requirement("SEED-08", .seed, "interop claim (old/new VMM, host, guest)", .implied,
                    "Every old/new combination of VMM, host kernel and guest keeps working.",
                    .backEnd, .no("a property of configurations, checked by the negotiation matrix (SeedTableTests), not of one trace"), []),
        Requirement("SEED-09", .seed, "performance tables", .implied,
                    "Bandwidth and service demand improve with MQ.", .backEnd, .no("performance is not a protocol property"), []),
    ]
}
