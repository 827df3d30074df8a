/// The rule catalogue: the one definition of every rule the checker enforces.
/// `Specs/rules.md` is generated from this table (`conformance rules --format markdown`)
/// and a test keeps the two identical.
///
/// Spec references cite virtio 1.x sections by title (numbers differ between spec versions),
/// Linux uapi/kernel files by path and function, and the seed RFC by byte offset into
/// `seed/000_dc5a8c7897c2114d.txt` (the seed is a single line, so a line number would say nothing).
public enum RuleID: String, CaseIterable, Sendable, Codable, Comparable {
    // Split virtqueue: sizes, indices, ownership.
    case vqSize = "VQ-SIZE"
    case vqInflight = "VQ-INFLIGHT"
    case vqAvailRead = "VQ-AVAIL-READ"
    case vqUsedId = "VQ-USED-ID"
    case vqUsedIdx = "VQ-USED-IDX"
    case vqDriverOwnership = "VQ-DRIVER-OWNERSHIP"
    // Descriptor chains.
    case vqDescIndex = "VQ-DESC-INDEX"
    case vqChainLoop = "VQ-CHAIN-LOOP"
    case vqChainOrder = "VQ-CHAIN-ORDER"
    case vqIndirectFeature = "VQ-INDIRECT-FEATURE"
    case vqIndirectNext = "VQ-INDIRECT-NEXT"
    case vqIndirectNested = "VQ-INDIRECT-NESTED"
    case vqIndirectLen = "VQ-INDIRECT-LEN"
    case vqUsedLen = "VQ-USED-LEN"
    // Notifications.
    case vqInterruptMissed = "VQ-INTERRUPT-MISSED"
    // Workers and mapping.
    case vhostSingleConsumer = "VHOST-SINGLE-CONSUMER"
    case vhostMapping = "VHOST-MAPPING"
    case vhostWorkerLifecycle = "VHOST-WORKER-LIFECYCLE"
    // Ownership of the vhost device.
    case vhostOwnerFirst = "VHOST-OWNER-FIRST"
    case vhostOwnerTwice = "VHOST-OWNER-TWICE"
    case vhostOwnerCompat = "VHOST-OWNER-COMPAT"
    // Ring lifecycle.
    case vhostRingNotReady = "VHOST-RING-NOT-READY"
    case vhostRingStopped = "VHOST-RING-STOPPED"
    // virtio-net multiqueue.
    case netTxqInactive = "NET-TXQ-INACTIVE"
    case netRxqInactive = "NET-RXQ-INACTIVE"
    case netMQPairsRange = "NET-MQ-PAIRS-RANGE"
    // Added for issue 10 (requirements coverage); appended so that existing order stays stable.
    case vqChainLength = "VQ-CHAIN-LENGTH"
    case vqInOrderNext = "VQ-IN-ORDER-NEXT"
    case vqNotifyFlags = "VQ-NOTIFY-FLAGS"
    case vqKickMissed = "VQ-KICK-MISSED"
    case vqRingAlign = "VQ-RING-ALIGN"
    case vhostMemRingAddr = "VHOST-MEM-RING-ADDR"
    case vhostMemBufferAddr = "VHOST-MEM-BUFFER-ADDR"
    case vhostVringBaseRange = "VHOST-VRING-BASE-RANGE"
    case vhostVringBaseResume = "VHOST-VRING-BASE-RESUME"
    case vhostRingBusy = "VHOST-RING-BUSY"
    case vhostLogBeforeUsed = "VHOST-LOG-BEFORE-USED"
    case vhostFeaturesOffered = "VHOST-FEATURES-OFFERED"
    case vhostUserVringIndex = "VHOST-USER-VRING-INDEX"
    case vhostUserEnableGate = "VHOST-USER-ENABLE-GATE"
    case vhostUserProtocolGate = "VHOST-USER-PROTOCOL-GATE"
    case vhostUserInbandGate = "VHOST-USER-INBAND-GATE"
    case vhostUserDisabledTxDrain = "VHOST-USER-DISABLED-TX-DRAIN"
    case netFeatureDeps = "NET-FEATURE-DEPS"
    case netTxFraming = "NET-TX-FRAMING"
    case netRxFraming = "NET-RX-FRAMING"
    case netRxUsedLen = "NET-RX-USED-LEN"
    case netRxNumBuffers = "NET-RX-NUM-BUFFERS"
    case netRxHdrOffload = "NET-RX-HDR-OFFLOAD"
    // Packed virtqueue.
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

    public static func < (a: RuleID, b: RuleID) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    public var rule: Rule { Rule.catalogue[self]! }
}

public struct Rule: Sendable {
    public let id: RuleID
    /// Where the requirement comes from.
    public let specRef: String
    /// The requirement in one sentence.
    public let statement: String
    /// The Z3 property that proves the model side of this rule, or why there is none.
    public let proof: String
    /// How the rule behaves on sampled (polled) traces, where intermediate values may be missing.
    public let sampling: String

    public static let seedFile = "seed/000_dc5a8c7897c2114d.txt"

    public static let all: [Rule] = [
        Rule(id: .vqSize,
             specRef: "virtio 1.x \"Split Virtqueues\" (Queue Size); drivers/vhost/vhost.c vhost_vring_set_num",
             statement: "A split queue's size is a power of two between 1 and 32768.",
             proof: "ring-ownership (N ranges over every power of two <= 32768)",
             sampling: "unaffected"),
        Rule(id: .vqInflight,
             specRef: "virtio 1.x \"Split Virtqueues\" (queue size bounds outstanding buffers); \"The Virtqueue Available Ring\"",
             statement: "The driver never has more than queue-size buffers outstanding: (avail.idx - used.idx) mod 2^16 <= N.",
             proof: "ring-ownership",
             sampling: "judged: a poll reads avail.idx before used.idx, so at least their difference was in flight then; and an exposure that every legal order puts past the bound"),
        Rule(id: .vqAvailRead,
             specRef: "virtio 1.x \"Updating idx\"; drivers/vhost/vhost.c vhost_get_vq_desc (last_avail_idx != avail_idx)",
             statement: "The device reads available entries in order and never at or past the avail index the driver has published (reading again entries it put back, as vhost_discard_vq_desc does, is allowed).",
             proof: "ring-ownership (device index between used and avail)",
             sampling: "not judged: a poller cannot see the device read the avail ring"),
        Rule(id: .vqUsedId,
             specRef: "virtio 1.x \"The Virtqueue Used Ring\" (id is the head of the used descriptor chain)",
             statement: "Every used element names the head of a chain the device currently owns; no chain is completed twice or without being made available (with IN_ORDER, the head of the buffer retired at that position).",
             proof: "ring-ownership (each descriptor has exactly one owner)",
             sampling: "judged where no legal order explains the element: a completion may wait one poll for an exposure made after avail.idx was read, and may stand for a buffer in flight since before observation began (IN_ORDER: only elements that must have been written are compared)"),
        Rule(id: .vqUsedIdx,
             specRef: "virtio 1.x \"The Virtqueue Used Ring\" (len and ring entry are written before used.idx is updated)",
             statement: "The device publishes a used index only over used elements it has written.",
             proof: "ring-ownership (used never passes the device's next index)",
             sampling: "judged where a published position's slot still holds the last lap's element and no buffer in flight explains it"),
        Rule(id: .vqDriverOwnership,
             specRef: "virtio 1.x \"Updating idx\" (device may access exposed chains at once); \"The Virtqueue Available Ring\" (no way to unexpose)",
             statement: "The driver never changes or re-exposes a descriptor (or an indirect table entry) while the device owns it.",
             proof: "ring-ownership (each descriptor has exactly one owner)",
             sampling: "judged where no legal order puts the completion that freed a chain before its re-exposure, and where a poll reads a descriptor of a chain still in flight (content known, completion not yet seen) with other content"),
        Rule(id: .vqDescIndex,
             specRef: "virtio 1.x \"The Virtqueue Descriptor Table\"; drivers/vhost/vhost.c vhost_get_vq_desc (head/next >= num: -EINVAL)",
             statement: "A head or next index is below the queue size (or the indirect table's entry count).",
             proof: "none: a bounds check on one value, nothing to prove inductively",
             sampling: "judged on chains a poll read while the device certainly owned them (not completed by the time that poll read used.idx); other chains may have been rewritten before they were read, and the coverage line counts them as not judged"),
        Rule(id: .vqChainLoop,
             specRef: "virtio 1.x \"The Virtqueue Descriptor Table\" (chains no longer than the queue size); packed: \"Scatter-Gather Support\" (MUST NOT create a descriptor list longer than the Queue Size); drivers/vhost/vhost.c \"Loop detected\"",
             statement: "A descriptor chain visits at most queue-size descriptors (indirect: len/16), so it has no loop (packed: a list ends within the ring).",
             proof: "none: checked by bounded walk; termination of the walk is by construction",
             sampling: "judged on chains a poll read while the device certainly owned them (not completed by the time that poll read used.idx); other chains may have been rewritten before they were read, and the coverage line counts them as not judged; packed: not judged (a recorder stops reading at the end of the free part of the ring)"),
        Rule(id: .vqChainOrder,
             specRef: "virtio 1.x \"Message Framing\" (device-writable after device-readable); packed: \"Scatter-Gather Support\" (MUST place any device-writable descriptor elements after any device-readable ones); drivers/vhost/vhost.c \"Descriptor has out after in\"",
             statement: "In a chain, including inside indirect tables, no device-readable descriptor follows a device-writable one.",
             proof: "none: a property of one chain, checked directly",
             sampling: "judged on chains a poll read while the device certainly owned them (not completed by the time that poll read used.idx); other chains may have been rewritten before they were read, and the coverage line counts them as not judged; packed: on every list a poll read, since it rests on flags, which a recorder reads before anything else and the device writes only to publish"),
        Rule(id: .vqIndirectFeature,
             specRef: "virtio 1.x \"Indirect Descriptors\" (driver MUST NOT set INDIRECT unless VIRTIO_F_INDIRECT_DESC was negotiated; the packed section says the same)",
             statement: "A descriptor carries INDIRECT only if feature 28 (INDIRECT_DESC) was negotiated.",
             proof: "none: a feature-bit test",
             sampling: "judged on chains a poll read while the device certainly owned them (not completed by the time that poll read used.idx); other chains may have been rewritten before they were read, and the coverage line counts them as not judged; packed: on every list a poll read, since it rests on flags, which a recorder reads before anything else and the device writes only to publish"),
        Rule(id: .vqIndirectNext,
             specRef: "virtio 1.x \"Indirect Descriptors\" (MUST NOT set both INDIRECT and NEXT); packed: \"Indirect Descriptors\" (MUST NOT write direct descriptors with INDIRECT set in a scatter-gather list linked by NEXT)",
             statement: "No descriptor carries both INDIRECT and NEXT (packed: no descriptor with INDIRECT belongs to a list linked by NEXT).",
             proof: "none: a flag test",
             sampling: "judged on chains a poll read while the device certainly owned them (not completed by the time that poll read used.idx); other chains may have been rewritten before they were read, and the coverage line counts them as not judged; packed: on every list a poll read, since it rests on flags, which a recorder reads before anything else and the device writes only to publish"),
        Rule(id: .vqIndirectNested,
             specRef: "virtio 1.x \"Indirect Descriptors\" (MUST NOT set INDIRECT within an indirect table); vhost.c get_indirect \"Nested indirect descriptor\"",
             statement: "An indirect table contains no INDIRECT descriptor.",
             proof: "none: a flag test",
             sampling: "judged on chains a poll read while the device certainly owned them (not completed by the time that poll read used.idx); other chains may have been rewritten before they were read, and the coverage line counts them as not judged"),
        Rule(id: .vqIndirectLen,
             specRef: "virtio 1.x \"Indirect Descriptors\" (table holds len/16 descriptors; packed: len / sizeof(struct pvirtq_desc)); vhost.c get_indirect (len % 16: -EINVAL, > 65536 entries: -E2BIG)",
             statement: "An indirect descriptor's length is a non-zero multiple of 16 and covers at most 65536 entries.",
             proof: "none: an arithmetic test on one field",
             sampling: "judged on chains a poll read while the device certainly owned them (not completed by the time that poll read used.idx); other chains may have been rewritten before they were read, and the coverage line counts them as not judged; packed: where the lengths it rests on were read beyond the device's reach (PackedSnapshotGuard.bodyCertain)"),
        Rule(id: .vqUsedLen,
             specRef: "virtio 1.x \"The Virtqueue Used Ring\" (len = bytes written into the device-writable part); packed: \"Element Address and Length\" (a used descriptor's len is the length written, when it has WRITE)",
             statement: "A used element's len is at most the total length of the chain's device-writable descriptors (packed: a used descriptor's len, when it has WRITE).",
             proof: "none: a per-completion arithmetic test",
             sampling: "judged on chains a poll read while the device certainly owned them (not completed by the time that poll read used.idx); other chains may have been rewritten before they were read, and the coverage line counts them as not judged; packed: where every device-writable descriptor of the buffer was read beyond the device's reach, and the used descriptor is known to be that buffer's (its id read with certainty, or an IN_ORDER batch fixed by position)"),
        Rule(id: .vqInterruptMissed,
             specRef: "virtio 1.x \"Used Buffer Notification Suppression\"; uapi linux/virtio_ring.h vring_need_event; drivers/vhost/vhost.c vhost_notify",
             statement: "When a used.idx update publishes what the driver asked to hear about (avail.flags without NO_INTERRUPT, or with EVENT_IDX used_event inside the window [old, new) just published) and the driver does not withdraw the request, the device interrupts before it ends the service pass.",
             proof: "need-event (the window characterisation the check relies on)",
             sampling: "not judged: a poller sees no service passes"),
        Rule(id: .vhostSingleConsumer,
             specRef: "drivers/vhost/vhost.c (one worker per vq: vq->worker); seed @1642 \"Working of vhost threads\"",
             statement: "At most one worker services a virtqueue at any time.",
             proof: "mapping-single-consumer",
             sampling: "not judged: polled device events carry no worker"),
        Rule(id: .vhostMapping,
             specRef: "seed @1694 \"vhost-0: handles RX vhost-1: handles TX[0] ...\"; uapi linux/vhost.h VHOST_ATTACH_VRING_WORKER; drivers/vhost/net.c (2 vqs per device)",
             statement: "The worker serving a virtqueue is the one the profile assigns (rev1/rev2: vq mod W; upstream: the pair's own worker; 6.5 workers: the attached one).",
             proof: "mapping-total, mapping-range, mapping-balance, mapping-seed-table",
             sampling: "not judged: polled device events carry no worker"),
        Rule(id: .vhostWorkerLifecycle,
             specRef: "uapi linux/vhost.h VHOST_NEW_WORKER/VHOST_FREE_WORKER/VHOST_ATTACH_VRING_WORKER; vhost.c vhost_free_worker (-EBUSY), vhost_vq_attach_worker (-ENODEV)",
             statement: "A worker still attached to a vq cannot be freed, and an unknown worker id cannot be attached or freed.",
             proof: "mapping-single-consumer (attach/free keep exactly one worker per vq)",
             sampling: "unaffected"),
        Rule(id: .vhostOwnerFirst,
             specRef: "uapi linux/vhost.h (SET_OWNER must be called before other commands); vhost.c vhost_dev_check_owner (-EPERM)",
             statement: "No ring or worker message succeeds before the device has an owner (feature negotiation may come first).",
             proof: "none: a message-order check on one device, done directly",
             sampling: "unaffected"),
        Rule(id: .vhostOwnerTwice,
             specRef: "uapi linux/vhost.h (later SET_OWNER calls fail until RESET_OWNER); vhost.c vhost_dev_set_owner (-EBUSY)",
             statement: "On kernel vhost a second SET_OWNER fails until RESET_OWNER releases the device (vhost-user back-ends accept one per queue pair, as QEMU sends them).",
             proof: "none: a two-state protocol checked directly",
             sampling: "unaffected"),
        Rule(id: .vhostOwnerCompat,
             specRef: "seed @452 \"passing an argument to SET_OWNER (retaining backward compatibility)\"; seed @1400 \"Restrict number of vhost threads to 2\"",
             statement: "SET_OWNER without an argument gives exactly one worker, and with an argument W gives the profile's cap of W (rev2: at most 2) workers.",
             proof: "set-owner-compat",
             sampling: "unaffected"),
        Rule(id: .vhostRingNotReady,
             specRef: "vhost-user.rst \"Ring states\" (a ring starts on its first kick); vhost.c vhost_vq_access_ok / VHOST_NET_SET_BACKEND",
             statement: "No ring activity happens on a vq before its size, addresses and kick have been set up.",
             proof: "none: a per-vq state machine checked directly",
             sampling: "judged at every poll that saw completions"),
        Rule(id: .vhostRingStopped,
             specRef: "vhost-user.rst \"Ring states\" (GET_VRING_BASE stops the ring); drivers/vhost/net.c vhost_net_set_backend (fd -1 detaches, stopping a kernel ring)",
             statement: "The device does not touch a ring after it was stopped (vhost-user: GET_VRING_BASE; kernel vhost: backend detached) until it is kicked or attached again.",
             proof: "none: a per-vq state machine checked directly",
             sampling: "judged at polls that saw completions after GET_VRING_BASE (the recorder polls once more before it records the reply, and then stops polling the ring)"),
        Rule(id: .netTxqInactive,
             specRef: "virtio 1.x net \"Automatic receive steering in multiqueue mode\" (driver MUST NOT enqueue on transmitq above n); seed @1951 \"then #txqueues = #cpus\"; vhost-user.rst SET_VRING_ENABLE",
             statement: "The driver makes TX buffers available only on active transmit queues: within numtxqs (seed), and within the VQ_PAIRS_SET count (transmitq1 before it; a refused command changes nothing).",
             proof: "none: a per-event membership test (set-owner-compat proves the negotiated TX counts valid, not this rule)",
             sampling: "judged at polls that saw exposures; never for vhost-user, whose back-end does not see the control queue"),
        Rule(id: .netRxqInactive,
             specRef: "virtio 1.x net \"Automatic receive steering in multiqueue mode\" (device MUST NOT queue on receiveq above n once VQ_PAIRS_SET is used; only receiveq1 before); vhost-user.rst \"Ring states\" (a disabled ring supplies no RX)",
             statement: "The device completes RX buffers only on active receive queues: within the VQ_PAIRS_SET count it has used, and not on a ring SET_VRING_ENABLE left disabled (vhost-user rings start disabled once PROTOCOL_FEATURES is negotiated).",
             proof: "none: a per-event membership test",
             sampling: "judged for completions a poll saw when the ring was already disabled at the poll before (the recorder writes a disable at the latest moment it can place it)"),
        Rule(id: .netMQPairsRange,
             specRef: "virtio 1.x net \"Automatic receive steering in multiqueue mode\" (1 <= virtqueue_pairs <= max_virtqueue_pairs)",
             statement: "VQ_PAIRS_SET asks for between 1 and max_virtqueue_pairs pairs.",
             proof: "none: a range test on one value",
             sampling: "unaffected"),
        Rule(id: .vqChainLength,
             specRef: "virtio 1.x \"Indirect Descriptors\" driver requirements (a driver MUST NOT create a descriptor chain longer than the Queue Size; added by VIRTIO-87 \"limit descriptor chain length even with INDIRECT\"); \"The Virtqueue Descriptor Table\" (no chain longer than 2^32 bytes)",
             statement: "A chain has at most queue-size buffer descriptors, counting the entries it walks in an indirect table (the descriptor that points to the table is not a buffer and is not counted), and its buffers total at most 2^32 bytes.",
             proof: "none: a count and a sum over one chain walk",
             sampling: "as the other chain findings (the same chain walk): judged on chains a poll read while the device certainly owned them, whose descriptors are then the ones the driver exposed; other chains are counted as not judged"),
        Rule(id: .vqInOrderNext,
             specRef: "virtio 1.x \"The Virtqueue Descriptor Table\" (with IN_ORDER, next = x + 1, or 0 for the last table entry); \"Indirect Descriptors\" (with IN_ORDER, indirect entries appear sequentially)",
             statement: "With VIRTIO_F_IN_ORDER, a descriptor at table offset x that has NEXT names x + 1 (0 after the last entry), and indirect entry j that has NEXT names j + 1.",
             proof: "none: an arithmetic test per descriptor",
             sampling: "as the other chain findings (the same chain walk): judged on chains a poll read while the device certainly owned them, whose descriptors are then the ones the driver exposed; other chains are counted as not judged"),
        Rule(id: .vqNotifyFlags,
             specRef: "virtio 1.x \"Used Buffer Notification Suppression\" driver requirements (flags 0 or 1; 0 with EVENT_IDX); \"Available Buffer Notification Suppression\" device requirements (the same for used.flags)",
             statement: "avail.flags (driver) and used.flags (device) are 0 or 1 without VIRTIO_F_EVENT_IDX, and 0 with it.",
             proof: "none: a value test",
             sampling: "judged on exact traces only: flag values a poll reads are not judged (a poll may read them mid-update of the notification state)"),
        Rule(id: .vqKickMissed,
             specRef: "virtio 1.x \"Available Buffer Notification Suppression\" driver requirements (flags 0: the driver MUST notify; EVENT_IDX: idx equal to avail_event: MUST notify); \"Supplying Buffers to The Device\" step 7",
             statement: "When the driver publishes avail entries the device asked to hear about (used.flags without NO_NOTIFY, or with EVENT_IDX avail_event inside one publication's window [old, new)) and the device does not withdraw the request, the driver kicks before an exact trace ends (judged per vq once the trace shows kicks there; a ring stop or reset releases it).",
             proof: "need-event (the window characterisation, applied to avail_event)",
             sampling: "judged on exact traces only: a recorder does not see the guest's kicks"),
        Rule(id: .vqRingAlign,
             specRef: "virtio 1.x \"Virtqueues\" driver requirements (each part aligned: descriptor table 16, available ring 2, used ring 4); drivers/vhost/vhost.c vhost_vring_set_addr (-EINVAL)",
             statement: "An accepted SET_VRING_ADDR places the descriptor table on a 16-byte, the available ring on a 2-byte and the used ring on a 4-byte boundary.",
             proof: "none: an alignment test on three values",
             sampling: "unaffected (control plane)"),
        Rule(id: .vhostMemRingAddr,
             specRef: "vhost-user.rst \"Memory access\" (ring addresses are user addresses that map to a region of SET_MEM_TABLE); uapi linux/vhost.h vhost_memory_region (userspace_addr)",
             statement: "Every ring part SET_VRING_ADDR gives (descriptor table 16N, available ring 6+2N, used ring 6+8N bytes) lies inside the user-address ranges of the current memory table.",
             proof: "none: an interval test",
             sampling: "unaffected (control plane); not judged without mem_region events or with ACCESS_PLATFORM (addresses are IOVAs)"),
        Rule(id: .vhostMemBufferAddr,
             specRef: "virtio 1.x \"Reserved Feature Bits\" driver requirements (without ACCESS_PLATFORM a driver MUST pass only physical addresses); vhost-user.rst \"Memory access\" (guest addresses map to the region containing them)",
             statement: "Every buffer of an exposed chain (and every indirect table) lies inside the guest-physical ranges of the current memory table.",
             proof: "none: an interval test per buffer",
             sampling: "judged on exact traces only"),
        Rule(id: .vhostVringBaseRange,
             specRef: "vhost-user.rst VHOST_USER_GET_VRING_BASE (returns the next avail index to process); drivers/vhost/vhost.c VHOST_GET_VRING_BASE (last_avail_idx)",
             statement: "The index GET_VRING_BASE returns lies between the ring's used.idx and avail.idx (the device has not returned more than it read, nor read past what was published); on kernel vhost judged once the backend is detached, since the ioctl does not stop the ring.",
             proof: "ring-ownership (the device index lies between used and avail)",
             sampling: "judged on exact traces only"),
        Rule(id: .vhostVringBaseResume,
             specRef: "vhost-user.rst \"Migrating back-end state\" (the front-end sets the initial vring base indices to the same value as on the source side, so that operation can resume); VHOST_USER_SET_VRING_BASE",
             statement: "After GET_VRING_BASE returned b for a ring, the next SET_VRING_BASE for it carries b, unless the ring was rebuilt in between (ring_reset, reset_device, RESET_OWNER).",
             proof: "none: a two-event protocol checked directly",
             sampling: "judged on exact traces only: QEMU sends the same messages for a pause and for a guest's device reset, which only the driver side shows"),
        Rule(id: .vhostRingBusy,
             specRef: "drivers/vhost/vhost.c vhost_vring_set_num (\"Resizing ring with an active backend? You don't want to do that.\" -EBUSY), VHOST_SET_VRING_BASE (\"Moving base with an active backend?\" -EBUSY)",
             statement: "Kernel vhost refuses SET_VRING_NUM and SET_VRING_BASE while the ring has a backend attached.",
             proof: "none: a per-vq state test",
             sampling: "unaffected (control plane)"),
        Rule(id: .vhostLogBeforeUsed,
             specRef: "vhost-user.rst \"Migration\" (with VHOST_F_LOG_ALL the back-end marks the pages it writes; used-ring writes too when the ring has VHOST_VRING_F_LOG); drivers/vhost/vhost.c vhost_log_write, log_used",
             statement: "While dirty logging is on (VHOST_F_LOG_ALL negotiated and SET_LOG_BASE done), before a used.idx update publishes an element the back-end has marked dirty, after the chain was made available, every page of the first len bytes of its device-writable buffers and (with VHOST_VRING_F_LOG) the page of the used element.",
             proof: "none: a page-set inclusion test",
             sampling: "judged on exact traces only"),
        Rule(id: .vhostFeaturesOffered,
             specRef: "virtio 1.x \"Feature Bits\" driver requirements (the driver MUST NOT accept a feature which the device did not offer); vhost-user.rst VHOST_USER_GET_PROTOCOL_FEATURES / SET_PROTOCOL_FEATURES (only when VHOST_USER_F_PROTOCOL_FEATURES is in GET_FEATURES; the front-end acknowledges a subset of the back-end's protocol features)",
             statement: "SET_FEATURES accepts only features GET_FEATURES offered; protocol features are queried and set only when GET_FEATURES offered VHOST_USER_F_PROTOCOL_FEATURES (bit 30), and SET_PROTOCOL_FEATURES sets only bits GET_PROTOCOL_FEATURES offered. The request is judged, whatever the answer.",
             proof: "none: a feature-bit test",
             sampling: "unaffected (control plane); judged only where the trace records the offer (get_features, get_protocol_features)"),
        Rule(id: .vhostUserVringIndex,
             specRef: "vhost-user.rst \"Multiple queue support\" (the front-end should stop when it needs more queues than GET_QUEUE_NUM reports); QEMU net/vhost-user.c and DPDK vhost_user_get_queue_num count queue pairs for net",
             statement: "After GET_QUEUE_NUM answered n (queue pairs, for a net device), the front-end addresses no vring at or above 2n (the control queue's index 2n only when the back-end is given CTRL_VQ).",
             proof: "none: a bound test per message",
             sampling: "unaffected (control plane)"),
        Rule(id: .vhostUserEnableGate,
             specRef: "vhost-user.rst VHOST_USER_SET_VRING_ENABLE (should be sent only when VHOST_USER_F_PROTOCOL_FEATURES has been negotiated)",
             statement: "The front-end sends SET_VRING_ENABLE only once VHOST_USER_F_PROTOCOL_FEATURES (bit 30) is known to be offered or negotiated.",
             proof: "none: a feature-bit test",
             sampling: "unaffected (control plane)"),
        Rule(id: .vhostUserProtocolGate,
             specRef: "vhost-user.rst VHOST_USER_GET_QUEUE_NUM (only with PROTOCOL_F_MQ in the queried features), VHOST_USER_SET_BACKEND_REQ_FD (PROTOCOL_F_BACKEND_REQ), VHOST_USER_SET_STATUS / GET_STATUS (PROTOCOL_F_STATUS negotiated), VHOST_USER_RESET_DEVICE (PROTOCOL_F_RESET_DEVICE)",
             statement: "GET_QUEUE_NUM, SET_BACKEND_REQ_FD, SET_STATUS, GET_STATUS and RESET_DEVICE are sent only when the protocol feature each needs (MQ, BACKEND_REQ, STATUS, STATUS, RESET_DEVICE) was offered or negotiated.",
             proof: "none: a feature-bit test",
             sampling: "unaffected (control plane); judged only where the trace shows what was offered or negotiated"),
        Rule(id: .vhostUserInbandGate,
             specRef: "vhost-user.rst \"In-band notifications\" (an error to negotiate INBAND_NOTIFICATIONS without BACKEND_REQ and REPLY_ACK); VHOST_USER_VRING_KICK, VHOST_USER_BACKEND_VRING_CALL (only once INBAND_NOTIFICATIONS is negotiated)",
             statement: "SET_PROTOCOL_FEATURES sets INBAND_NOTIFICATIONS (bit 14) only together with BACKEND_REQ (5) and REPLY_ACK (3), and in-band VRING_KICK / BACKEND_VRING_CALL messages come only once it is negotiated.",
             proof: "none: a feature-bit test",
             sampling: "unaffected (control plane)"),
        Rule(id: .vhostUserDisabledTxDrain,
             specRef: "vhost-user.rst \"Ring states\" (started but disabled: the back-end must process and discard any TX packets)",
             statement: "On a started, disabled vhost-user TX ring, every buffer made available is used within 1 s of trace time (the bound, ours: half Linux virtio-net's 5 s TX watchdog and far above any back-end's poll period).",
             proof: "none: a deadline over timestamps",
             sampling: "judged on exact traces only (a recorder sees exposures late and would shift the deadline)"),
        Rule(id: .netFeatureDeps,
             specRef: "virtio 1.x \"Feature Bits\" driver requirements (MUST NOT accept a feature which requires another feature which was not accepted); net \"Feature bit requirements\"",
             statement: "Negotiated virtio-net features include what they depend on (e.g. HOST_TSO4 needs CSUM, GUEST_TSO4 needs GUEST_CSUM, MQ, RSS and notification coalescing need CTRL_VQ); on vhost-user the dependencies on CTRL_VQ are not judged, because QEMU hides CTRL_VQ from the back-end, and the others only where the traced offer (get_features) met the dependency, because SET_FEATURES there relays the guest's acceptance of an offer the back-end itself shaped.",
             proof: "none: a table lookup",
             sampling: "unaffected (control plane)"),
        Rule(id: .netTxFraming,
             specRef: "virtio 1.x \"Virtqueue Operation\" (transmit buffers are device-readable); net \"Packet Transmission\" (every packet is preceded by struct virtio_net_hdr); drivers/vhost/net.c get_tx_bufs (\"Unexpected descriptor format for TX\", \"Unexpected header len for TX\")",
             statement: "A chain made available on a transmit queue has only device-readable buffers, at least a virtio-net header long (10 bytes legacy, 12 with VERSION_1 or MRG_RXBUF, 20 with HASH_REPORT).",
             proof: "none: a test over one chain",
             sampling: "judged on exact traces only"),
        Rule(id: .netRxFraming,
             specRef: "virtio 1.x \"Virtqueue Operation\" (receive buffers are device-writable); net \"Setting Up Receive Buffers\" (with MRG_RXBUF each buffer MUST be at least the header size); drivers/vhost/net.c get_rx_bufs (\"unexpected descriptor format for RX\")",
             statement: "A chain made available on a receive queue has only device-writable buffers, and with VIRTIO_NET_F_MRG_RXBUF at least a virtio-net header of them.",
             proof: "none: a test over one chain",
             sampling: "judged on exact traces only"),
        Rule(id: .netRxUsedLen,
             specRef: "virtio 1.x net \"Device Operation\" (each received packet is preceded by the header); \"Processing of Incoming Packets\"",
             statement: "A used receive element that starts a packet has len at least the virtio-net header (every element without MRG_RXBUF; with it, the elements rx_header events mark).",
             proof: "none: a comparison per completion",
             sampling: "judged on exact traces only"),
        Rule(id: .netRxNumBuffers,
             specRef: "virtio 1.x net \"Setting Up Receive Buffers\" and \"Processing of Incoming Packets\" device requirements (num_buffers 1 without MRG_RXBUF; the number of buffers the packet spans with it; all but the last used to their full length; all published together)",
             statement: "The num_buffers a device writes is 1 without MRG_RXBUF; with it, it is the number of used elements the packet spans: the next packet starts right after them, all but the last are used to their full length, and one used.idx update publishes them all.",
             proof: "none: a per-packet count",
             sampling: "judged on exact traces only"),
        Rule(id: .netRxHdrOffload,
             specRef: "virtio 1.x net \"Processing of Incoming Packets\" device requirements (without GUEST_CSUM flags MUST be zero; without GUEST_TSO4/TSO6/UFO/USO4|6 gso_type MUST NOT be TCPV4/TCPV6/UDP/UDP_L4)",
             statement: "The header a device writes into a receive buffer uses no offload the driver did not negotiate: flags 0 without GUEST_CSUM, and gso_type TCPV4, TCPV6, UDP or UDP_L4 only with GUEST_TSO4, GUEST_TSO6, GUEST_UFO or GUEST_USO4/USO6.",
             proof: "none: a feature-bit test",
             sampling: "judged on exact traces of the vhost-user profile only: a kernel back-end is never told the offload bits (QEMU configures the tap with them)"),
        Rule(id: .packedSize,
             specRef: "virtio 1.x \"Packed Virtqueues\" (up to 2^15 entries each), \"Structure Size and Alignment\" (the Queue Size value does not have to be a power of 2)",
             statement: "A packed queue's size is between 1 and 32768 (it need not be a power of two).",
             proof: "packed-ownership (N ranges over 1...32768; variant size-unbounded: a 15-bit slot index no longer holds every slot)",
             sampling: "unaffected"),
        Rule(id: .packedDriverOwnership,
             specRef: "virtio 1.x packed \"The Virtqueue Descriptor Table\" (driver MUST NOT change a descriptor unless it observes the USED bit changed); \"Scatter-Gather Support\" (driver MUST make sure there is enough space in the ring for the whole list)",
             statement: "The driver stores flags only on descriptors it owns (never made available, or marked used since), leaves the indirect table of a buffer in flight alone, and makes a list available only where it fits in the free part of the ring.",
             proof: "packed-ownership (the device owns exactly the positions [used, avail), at most N of them; variant publish-unbounded)",
             sampling: "judged where no legal order of the polls' exposures and completions leaves room for a list a poll saw made available"),
        Rule(id: .packedFlagsLast,
             specRef: "virtio 1.x packed \"Placing Available Buffers Into The Descriptor Ring\" (memory barrier, then set d.flags), \"Updating flags\"; driver-normative \"The Virtqueue Descriptor Table\" (MUST NOT change a descriptor after changing its AVAIL bit)",
             statement: "The driver writes a descriptor's addr, len and id before the flags store that makes it available, and changes none of them, nor the flags, until the device has marked it used.",
             proof: "none: an order between the writes of one descriptor, checked directly",
             sampling: "not judged: a poll reads each descriptor once, after its flags"),
        Rule(id: .packedChainHeadLast,
             specRef: "virtio 1.x packed \"Scatter-Gather Support\" (driver MUST NOT make the first descriptor in the list available before all subsequent descriptors comprising the list are made available); \"Next Flag: Descriptor Chaining\"",
             statement: "The first descriptor of a list is made available only after all the others of the list.",
             proof: "none: an order between the flag stores of one list, checked directly",
             sampling: "judged where a poll finds a list's first descriptor available and a later one of it not, while the used position the poll read last had not reached the list (so nothing can have reused it)"),
        Rule(id: .packedWrapCounter,
             specRef: "virtio 1.x \"Driver and Device Ring Wrap Counters\" (AVAIL matches the Driver Ring Wrap Counter and USED its inverse; a used descriptor has both equal to the Device Ring Wrap Counter; each counter changes after the ring's last descriptor)",
             statement: "The driver marks a descriptor available with AVAIL equal to its wrap counter and USED the inverse, the device marks one used with AVAIL and USED both equal to its wrap counter, and each counter flips after the last descriptor of the ring.",
             proof: "packed-ownership (the availability test at the device's position holds exactly for descriptors in flight; variants no-wrap-flip, used-against-driver-counter)",
             sampling: "not judged: flags of the wrong lap look like a descriptor not yet made available (or not yet used)"),
        Rule(id: .packedBufferId,
             specRef: "virtio 1.x packed \"Placing Available Buffers Into The Descriptor Ring\" (get the next free buffer id); \"Next Flag: Descriptor Chaining\" (Buffer ID is included in the last descriptor in the list)",
             statement: "A buffer made available carries, on its last descriptor, an id no other buffer in flight has.",
             proof: "none: a set membership per exposure, checked directly",
             sampling: "judged where a poll read the id while the device certainly had not yet written the descriptor, and no legal order completes the other buffer with that id first"),
        Rule(id: .packedDeviceOwnership,
             specRef: "virtio 1.x packed device-normative \"The Virtqueue Descriptor Table\" (MUST NOT use a descriptor unless it observes the AVAIL bit changed; MUST NOT change a descriptor after changing its USED bit)",
             statement: "The device reads and writes only descriptors the driver has made available and it has not yet marked used, and marks used only descriptors it has read (when its reads are traced).",
             proof: "packed-ownership (device steps stay within [used, avail); variant use-unavailable)",
             sampling: "not judged: a poll sees neither the device's reads nor its writes before they are published"),
        Rule(id: .packedDeviceOrder,
             specRef: "virtio 1.x packed device-normative \"Packed Virtqueues\" (MUST start processing driver descriptors in ring order; MUST start writing device descriptors in the order they complete); \"Polling of available and used descriptors\" (both sides skip the rest of a list or batch)",
             statement: "The device takes descriptors in ring order, and writes each used descriptor where the list (or IN_ORDER batch) of the previous one ends, never inside a span it skips.",
             proof: "none: positions of one side, checked directly",
             sampling: "not judged: reads are not seen, and a used descriptor inside a skipped span is never where a recorder following the used position reads"),
        Rule(id: .packedUsedId,
             specRef: "virtio 1.x packed \"Receiving Used Buffers From The Device\" (the used descriptor carries the Buffer ID); \"In-order use of descriptors\" (the Buffer ID of the last buffer of the batch)",
             statement: "A used descriptor names a buffer in flight (with IN_ORDER, the last buffer of the batch it retires), and each buffer once.",
             proof: "packed-ownership (each position has one owner)",
             sampling: "judged with IN_ORDER where the batch a used descriptor ends was read with a certain id; a used descriptor naming a buffer a recorder has not seen made available ends the ring's observation (ring_gap)"),
        Rule(id: .packedIndirectFlags,
             specRef: "virtio 1.x packed \"Indirect Descriptors\" (driver MUST NOT set any flags except DESC_F_WRITE within an indirect descriptor); \"Indirect Flag: Scatter-Gather Support\"",
             statement: "Entries of a packed indirect table carry no flag but WRITE (no NEXT, no INDIRECT).",
             proof: "none: a flag test",
             sampling: "judged on tables whose indirect descriptor a poll read beyond the device's reach"),
        Rule(id: .packedEventFlags,
             specRef: "virtio 1.x packed \"Driver and Device Event Suppression\" (RING_EVENT_FLAGS_DESC only valid if VIRTIO_F_EVENT_IDX has been negotiated; 0x3 is reserved); \"Event Suppression Structure Format\" (reserved bits set to 0)",
             statement: "An event suppression structure's flags are ENABLE, DISABLE, or DESC when VIRTIO_F_EVENT_IDX was negotiated, and its reserved bits are 0.",
             proof: "none: a value test",
             sampling: "not judged: polls do not read the event suppression structures"),
        Rule(id: .packedInterruptMissed,
             specRef: "virtio 1.x packed \"Driver and Device Event Suppression\" (after writing out descriptors the device consults the driver's structure), \"Receiving Used Buffers From The Device\"; QEMU virtio_packed_should_notify; DPDK vhost_vring_call_packed",
             statement: "When the device marks used descriptors the driver's event suppression asks to hear about (flags ENABLE, or DESC naming a position just used, with EVENT_IDX) and the driver does not withdraw the request, the device interrupts before it ends the service pass.",
             proof: "packed-need-event (the position window agrees with the 16-bit off_wrap formula QEMU and DPDK compute)",
             sampling: "not judged: a poller sees no service passes"),
        Rule(id: .packedKickMissed,
             specRef: "virtio 1.x packed \"Driver and Device Event Suppression\" (the driver consults the device's structure after making descriptors available), \"Sending Available Buffer Notifications\"; Linux virtqueue_kick_prepare_packed; DPDK virtqueue_kick_prepare_packed",
             statement: "When the driver makes descriptors available that the device's event suppression asks to hear about (flags ENABLE, or DESC naming a position one flag store just made available, with EVENT_IDX) and the device does not withdraw the request, the driver kicks before an exact trace ends (judged per vq once the trace shows kicks there; a ring stop or reset releases it).",
             proof: "packed-need-event (the position window, applied to the Device Event Suppression's off_wrap)",
             sampling: "judged on exact traces only: a recorder does not see the guest's kicks"),
    ]

    public static let catalogue: [RuleID: Rule] = Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0) })
}
