/// Virtio feature bits used by the model. Source: virtio 1.x "Reserved Feature Bits",
/// "Device Types / Network Device / Feature bits"; vhost-user `VHOST_USER_F_PROTOCOL_FEATURES`.
public enum FeatureBit: UInt8, CaseIterable, Sendable {
    case netCtrlVQ = 17          // VIRTIO_NET_F_CTRL_VQ
    case netMQ = 22              // VIRTIO_NET_F_MQ
    case logAll = 26             // VHOST_F_LOG_ALL (dirty logging for migration)
    case indirectDesc = 28       // VIRTIO_F_INDIRECT_DESC / VIRTIO_RING_F_INDIRECT_DESC
    case eventIdx = 29           // VIRTIO_F_EVENT_IDX / VIRTIO_RING_F_EVENT_IDX
    case protocolFeatures = 30   // VHOST_USER_F_PROTOCOL_FEATURES (reused legacy bit)
    case version1 = 32           // VIRTIO_F_VERSION_1
    case ringPacked = 34         // VIRTIO_F_RING_PACKED
    case inOrder = 35            // VIRTIO_F_IN_ORDER
    case accessPlatform = 33     // VIRTIO_F_ACCESS_PLATFORM (IOMMU addresses)
    case notificationData = 38   // VIRTIO_F_NOTIFICATION_DATA
    case ringReset = 40          // VIRTIO_F_RING_RESET

    public var mask: UInt64 { 1 << UInt64(rawValue) }
}

/// A negotiated feature word.
public struct Features: Sendable, Hashable {
    public var bits: UInt64
    public init(_ bits: UInt64 = 0) { self.bits = bits }
    public init(_ list: [FeatureBit]) { self.bits = list.reduce(0) { $0 | $1.mask } }
    public func has(_ bit: FeatureBit) -> Bool { bits & bit.mask != 0 }
}

/// vhost-user protocol feature bits (`VHOST_USER_PROTOCOL_F_*`) the model cares about.
public enum ProtocolFeatureBit: UInt8, Sendable, CaseIterable {
    case mq = 0
    case logShmfd = 1
    case replyAck = 3
    case pagefault = 8
    case backendReq = 5
    case config = 9
    case hostNotifier = 11
    case inflightShmfd = 12
    case inbandNotifications = 14
    case configureMemSlots = 15
    case status = 16
    case xenMmap = 17
    case deviceState = 19
    public var mask: UInt64 { 1 << UInt64(rawValue) }
}
