import VirtioProtocol

/// What `record --interpose` cannot relay, and so takes out of the back-end's offers (GET_FEATURES,
/// GET_PROTOCOL_FEATURES replies) before the front-end sees them. Everything else is forwarded as
/// the peers sent it. Said once at the start of the capture (`announcement`).
enum InterposeFeatures {
    static let features: [(bit: FeatureBit, why: String)] = [
        // Packed rings and IN_ORDER are relayed: a packed batch's one used descriptor is copied
        // as written, and a split element the device left unwritten is told by the relay's mark
        // (`RingRelay.unwritten`).
        (.logAll, "dirty logging (the relay's writes to the front-end's used ring would not be logged)"),
        (.accessPlatform, "ACCESS_PLATFORM (ring and table addresses would need IOTLB translation)"),
        (.notificationData, "NOTIFICATION_DATA (kicks carrying ring positions)"),
        (.ringReset, "RING_RESET (per-ring reset behind the relay's back)"),
    ]
    static let protocolFeatures: [(bit: ProtocolFeatureBit, why: String)] = [
        (.logShmfd, "LOG_SHMFD (dirty log)"),
        (.pagefault, "PAGEFAULT (postcopy)"),
        (.hostNotifier, "HOST_NOTIFIER (a doorbell page would carry kicks past the relay)"),
        (.inflightShmfd, "INFLIGHT_SHMFD (the back-end's inflight record would describe the shadow rings)"),
        (.inbandNotifications, "INBAND_NOTIFICATIONS (calls on the back-end channel would pass the relay)"),
        (.configureMemSlots, "CONFIGURE_MEM_SLOTS (the relay appends its region to SET_MEM_TABLE)"),
        (.xenMmap, "XEN_MMAP"),
        (.deviceState, "DEVICE_STATE (migration state of the shadow rings)"),
    ]

    static let featureMask: UInt64 = features.reduce(0) { $0 | $1.bit.mask }
    static let protocolMask: UInt64 = protocolFeatures.reduce(0) { $0 | $1.bit.mask }

    static var announcement: String {
        "record: --interpose negotiates away: " + (features.map(\.why) + protocolFeatures.map(\.why)).joined(separator: "; ")
    }
}
