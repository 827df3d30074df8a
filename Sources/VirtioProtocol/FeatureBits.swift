/// Virtio feature bits used by the model. Source: virtio 1.x "Reserved Feature Bits",
/// "Device Types / Network Device / Feature bits"; vhost-user `VHOST_USER_F_PROTOCOL_FEATURES`;
/// uapi linux/vhost.h `VHOST_F_LOG_ALL`. Bits 64 and above (e.g. RSS_CONTEXT) do not fit the
/// 64-bit feature word of a trace and are left out.
public enum FeatureBit: UInt8, CaseIterable, Sendable {
    case netCsum = 0             // VIRTIO_NET_F_CSUM
    case netGuestCsum = 1        // VIRTIO_NET_F_GUEST_CSUM
    case netMTU = 3              // VIRTIO_NET_F_MTU
    case netGuestTSO4 = 7        // VIRTIO_NET_F_GUEST_TSO4
    case netGuestTSO6 = 8        // VIRTIO_NET_F_GUEST_TSO6
    case netGuestECN = 9         // VIRTIO_NET_F_GUEST_ECN
    case netGuestUFO = 10        // VIRTIO_NET_F_GUEST_UFO
    case netHostTSO4 = 11        // VIRTIO_NET_F_HOST_TSO4
    case netHostTSO6 = 12        // VIRTIO_NET_F_HOST_TSO6
    case netHostECN = 13         // VIRTIO_NET_F_HOST_ECN
    case netHostUFO = 14         // VIRTIO_NET_F_HOST_UFO
    case netMrgRxbuf = 15        // VIRTIO_NET_F_MRG_RXBUF
    case netCtrlVQ = 17          // VIRTIO_NET_F_CTRL_VQ
    case netCtrlRx = 18          // VIRTIO_NET_F_CTRL_RX
    case netCtrlVlan = 19        // VIRTIO_NET_F_CTRL_VLAN
    case netGuestAnnounce = 21   // VIRTIO_NET_F_GUEST_ANNOUNCE
    case netMQ = 22              // VIRTIO_NET_F_MQ
    case netCtrlMacAddr = 23     // VIRTIO_NET_F_CTRL_MAC_ADDR
    case logAll = 26             // VHOST_F_LOG_ALL (vhost feature: dirty logging for migration)
    case indirectDesc = 28       // VIRTIO_F_INDIRECT_DESC / VIRTIO_RING_F_INDIRECT_DESC
    case eventIdx = 29           // VIRTIO_F_EVENT_IDX / VIRTIO_RING_F_EVENT_IDX
    case protocolFeatures = 30   // VHOST_USER_F_PROTOCOL_FEATURES (reused legacy bit)
    case version1 = 32           // VIRTIO_F_VERSION_1
    case accessPlatform = 33     // VIRTIO_F_ACCESS_PLATFORM (ring and buffer addresses are IOVAs)
    case ringPacked = 34         // VIRTIO_F_RING_PACKED
    case inOrder = 35            // VIRTIO_F_IN_ORDER
    case notificationData = 38   // VIRTIO_F_NOTIFICATION_DATA
    case ringReset = 40          // VIRTIO_F_RING_RESET
    case netHashTunnel = 51      // VIRTIO_NET_F_HASH_TUNNEL
    case netVQNotfCoal = 52      // VIRTIO_NET_F_VQ_NOTF_COAL
    case netNotfCoal = 53        // VIRTIO_NET_F_NOTF_COAL
    case netGuestUSO4 = 54       // VIRTIO_NET_F_GUEST_USO4
    case netGuestUSO6 = 55       // VIRTIO_NET_F_GUEST_USO6
    case netHostUSO = 56         // VIRTIO_NET_F_HOST_USO
    case netHashReport = 57      // VIRTIO_NET_F_HASH_REPORT
    case netRSS = 60             // VIRTIO_NET_F_RSS
    case netRSCExt = 61          // VIRTIO_NET_F_RSC_EXT

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
    case resetDevice = 13
    case inbandNotifications = 14
    case configureMemSlots = 15
    case status = 16
    case xenMmap = 17
    case deviceState = 19
    public var mask: UInt64 { 1 << UInt64(rawValue) }

    public var name: String {
        switch self {
        case .mq: return "MQ"
        case .logShmfd: return "LOG_SHMFD"
        case .replyAck: return "REPLY_ACK"
        case .pagefault: return "PAGEFAULT"
        case .backendReq: return "BACKEND_REQ"
        case .config: return "CONFIG"
        case .hostNotifier: return "HOST_NOTIFIER"
        case .inflightShmfd: return "INFLIGHT_SHMFD"
        case .resetDevice: return "RESET_DEVICE"
        case .inbandNotifications: return "INBAND_NOTIFICATIONS"
        case .configureMemSlots: return "CONFIGURE_MEM_SLOTS"
        case .status: return "STATUS"
        case .xenMmap: return "XEN_MMAP"
        case .deviceState: return "DEVICE_STATE"
        }
    }
}
