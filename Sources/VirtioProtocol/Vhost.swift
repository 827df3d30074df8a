/// Linux vhost and vhost-user constants. Sources: uapi `linux/vhost.h` (ioctl numbers, magic 0xAF),
/// `drivers/vhost/vhost.c` (error codes), QEMU `docs/interop/vhost-user.rst` (message ids).
public enum VhostIoctl: UInt8, Sendable {
    case getFeatures = 0x00   // also SET_FEATURES (_IOW)
    case setOwner = 0x01
    case resetOwner = 0x02
    case setMemTable = 0x03
    case newWorker = 0x08     // Linux 6.5+
    case freeWorker = 0x09    // Linux 6.5+
    case setVringNum = 0x10
    case setVringAddr = 0x11
    case setVringBase = 0x12  // also GET_VRING_BASE (_IOWR)
    case attachVringWorker = 0x15
    case getVringWorker = 0x16
    case setVringKick = 0x20
    case setVringCall = 0x21
    case netSetBackend = 0x30
    public static let magic: UInt8 = 0xAF
}

/// vhost-net (`drivers/vhost/net.c`): each `/dev/vhost-net` device has exactly an RX and a TX vq.
public enum VhostNet {
    public static let rxVQ = 0              // VHOST_NET_VQ_RX
    public static let txVQ = 1              // VHOST_NET_VQ_TX
    public static let vqsPerDevice = 2      // VHOST_NET_VQ_MAX
}

/// vhost-user front-end message ids (`VHOST_USER_*`): QEMU `docs/interop/vhost-user.rst` and
/// `hw/virtio/vhost-user.c` (26-33 and 41-43 from the latter's `VhostUserRequest`).
public enum VhostUserRequest: UInt32, Sendable, CaseIterable {
    case getFeatures = 1, setFeatures = 2, setOwner = 3, resetOwner = 4, setMemTable = 5
    case setLogBase = 6, setLogFd = 7, setVringNum = 8, setVringAddr = 9, setVringBase = 10
    case getVringBase = 11, setVringKick = 12, setVringCall = 13, setVringErr = 14
    case getProtocolFeatures = 15, setProtocolFeatures = 16, getQueueNum = 17, setVringEnable = 18
    case sendRarp = 19, netSetMtu = 20, setBackendReqFd = 21, iotlbMsg = 22, setVringEndian = 23
    case getConfig = 24, setConfig = 25, createCryptoSession = 26, closeCryptoSession = 27
    case postcopyAdvise = 28, postcopyListen = 29, postcopyEnd = 30, getInflightFd = 31, setInflightFd = 32
    case gpuSetSocket = 33, resetDevice = 34, vringKick = 35, getMaxMemSlots = 36
    case addMemReg = 37, remMemReg = 38, setStatus = 39, getStatus = 40
    case getSharedObject = 41, setDeviceStateFd = 42, checkDeviceState = 43
}

public enum VhostUser {
    public static let headerSize = 12
    public static let versionMask: UInt32 = 0x3
    public static let version: UInt32 = 0x1
    public static let flagReply: UInt32 = 0x4
    public static let flagNeedReply: UInt32 = 0x8
    /// Bit 8 of the KICK/CALL/ERR payload: no fd attached.
    public static let vringNoFdMask: UInt64 = 0x100
    public static let vringIndexMask: UInt64 = 0xff
    /// Regions one SET_MEM_TABLE carries (`VHOST_MEMORY_BASELINE_NREGIONS`), and so the most fds
    /// any message carries.
    public static let maxMemRegions = 8
    /// Regions a table may reach through ADD_MEM_REG (CONFIGURE_MEM_SLOTS): the back-end announces
    /// its limit in GET_MAX_MEM_SLOTS; QEMU's largest is 509 (`VHOST_USER_MAX_RAM_SLOTS` is 512 in
    /// libvhost-user). Anything above this is refused as a peer error.
    public static let maxMemSlots = 512
    /// Largest vring index SET_VRING_KICK/CALL/ERR can address (8 bits), plus one: the default queue
    /// count of a recorder's trace.
    public static let maxKickableVrings = 256
}

/// Dirty logging for migration. Source: vhost-user.rst "Migration"; uapi linux/vhost.h.
public enum VhostLog {
    /// `VHOST_LOG_PAGE`: one log bit covers this many bytes of guest-physical memory.
    public static let pageSize: UInt64 = 0x1000
    /// `VHOST_VRING_F_LOG`: SET_VRING_ADDR flag bit 0, used-ring writes are logged at `log_guest_addr`.
    public static let vringFlagLog: UInt64 = 1
}

/// errno values the vhost kernel code returns, as they appear (negated) in trace results.
public enum Errno: Int32, Sendable {
    case eperm = 1, enodev = 19, ebusy = 16, einval = 22, enobufs = 105, e2big = 7, efault = 14
    public var name: String {
        switch self {
        case .eperm: return "EPERM"
        case .enodev: return "ENODEV"
        case .ebusy: return "EBUSY"
        case .einval: return "EINVAL"
        case .enobufs: return "ENOBUFS"
        case .e2big: return "E2BIG"
        case .efault: return "EFAULT"
        }
    }
}
