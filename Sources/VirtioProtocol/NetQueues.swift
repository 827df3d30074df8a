/// virtio-net queue layouts: which vq index is RX, TX or control.
/// Seed layout: "vq 0 = RX, vq i+1 = TX[i]" (seed RFC rev2, "Working of vhost threads").
/// Standard MQ layout: virtio 1.x "Network Device / Virtqueues": receiveq k = 2k,
/// transmitq k = 2k+1 (k from 0), controlq = 2N with N = max_virtqueue_pairs.
public enum QueueLayout: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// The seed RFC: one RX queue at vq 0, then TX[0..numtxqs-1] at vq 1...numtxqs.
    case seed = 0
    /// Upstream VIRTIO_NET_F_MQ: RX/TX pairs, then the control queue.
    case mq = 1

    public var description: String { self == .seed ? "seed" : "mq" }
    public init?(name: String) {
        guard let l = QueueLayout.allCases.first(where: { $0.description == name }) else { return nil }
        self = l
    }
}

public enum QueueRole: Equatable, Sendable, CustomStringConvertible {
    case rx(Int)       // receive queue number, from 0
    case tx(Int)       // transmit queue number, from 0
    case control
    case unknown

    public var description: String {
        switch self {
        case .rx(let k): return "RX[\(k)]"
        case .tx(let k): return "TX[\(k)]"
        case .control: return "CTRL"
        case .unknown: return "?"
        }
    }
}

public extension QueueLayout {
    /// Role of vq `index` in a device with `queueCount` virtqueues.
    /// For `.mq`, `queueCount` odd means the last queue is the control queue.
    func role(of index: Int, queueCount: Int) -> QueueRole {
        guard index >= 0, index < queueCount else { return .unknown }
        switch self {
        case .seed:
            return index == 0 ? .rx(0) : .tx(index - 1)
        case .mq:
            if queueCount % 2 == 1 && index == queueCount - 1 { return .control }
            return index % 2 == 0 ? .rx(index / 2) : .tx(index / 2)
        }
    }

    /// vq index of TX queue `k` (from 0).
    func txQueue(_ k: Int) -> Int { self == .seed ? k + 1 : 2 * k + 1 }
    /// vq index of RX queue `k` (from 0).
    func rxQueue(_ k: Int) -> Int { self == .seed ? 0 : 2 * k }
}

/// The control-queue MQ command. Source: virtio 1.x "Automatic receive steering in multiqueue mode".
public enum NetCtrlMQ {
    public static let classMQ: UInt8 = 4              // VIRTIO_NET_CTRL_MQ
    public static let cmdVQPairsSet: UInt8 = 0         // VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET
    public static let pairsMin: UInt32 = 1             // VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN
    public static let pairsMax: UInt32 = 0x8000        // VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX
    public static let ackOK: UInt8 = 0                 // VIRTIO_NET_OK
    public static let ackErr: UInt8 = 1                // VIRTIO_NET_ERR
}

/// `struct virtio_net_hdr` sizes and field values. Source: virtio 1.x net "Device Operation",
/// "Setting Up Receive Buffers" (the size counts every field the features enable), "Legacy Interface:
/// Device Operation" (legacy without MRG_RXBUF has no num_buffers: 2 bytes shorter).
public enum NetHeader {
    /// The smallest header size the features allow. Bits above 63 (UDP tunnel GSO, which would make it
    /// 24 or 32 bytes) are not in a trace's feature word, so this is a lower bound: sound for
    /// "at least a header" tests.
    public static func size(_ f: Features) -> UInt32 {
        var n: UInt32 = (f.has(.version1) || f.has(.netMrgRxbuf)) ? 12 : 10
        if f.has(.netHashReport) { n = 20 }
        return n
    }
    public static let flagNeedsCsum: UInt8 = 1
    public static let flagDataValid: UInt8 = 2
    public static let flagRscInfo: UInt8 = 4
    public static let gsoNone: UInt16 = 0
    public static let gsoTCPv4: UInt16 = 1
    public static let gsoUDP: UInt16 = 3
    public static let gsoTCPv6: UInt16 = 4
    public static let gsoUDPL4: UInt16 = 5
    public static let gsoECN: UInt16 = 0x80
}

/// virtio-net "Feature bit requirements": feature -> what it needs (all of `all`, and one of `any`
/// when `any` is not empty). Only bits below 64 (those a trace's feature word can carry).
public enum NetFeatureDependencies {
    public struct Dependency: Sendable {
        public let feature: FeatureBit
        public let all: [FeatureBit]
        public let any: [FeatureBit]
        /// Needs the control queue: QEMU never tells a vhost-user back-end about CTRL_VQ.
        public var needsCtrlVQ: Bool { all.contains(.netCtrlVQ) }
    }

    public static let table: [Dependency] = [
        Dependency(feature: .netGuestTSO4, all: [.netGuestCsum], any: []),
        Dependency(feature: .netGuestTSO6, all: [.netGuestCsum], any: []),
        Dependency(feature: .netGuestECN, all: [], any: [.netGuestTSO4, .netGuestTSO6]),
        Dependency(feature: .netGuestUFO, all: [.netGuestCsum], any: []),
        Dependency(feature: .netGuestUSO4, all: [.netGuestCsum], any: []),
        Dependency(feature: .netGuestUSO6, all: [.netGuestCsum], any: []),
        Dependency(feature: .netHostTSO4, all: [.netCsum], any: []),
        Dependency(feature: .netHostTSO6, all: [.netCsum], any: []),
        Dependency(feature: .netHostECN, all: [], any: [.netHostTSO4, .netHostTSO6]),
        Dependency(feature: .netHostUFO, all: [.netCsum], any: []),
        Dependency(feature: .netHostUSO, all: [.netCsum], any: []),
        Dependency(feature: .netCtrlRx, all: [.netCtrlVQ], any: []),
        Dependency(feature: .netCtrlVlan, all: [.netCtrlVQ], any: []),
        Dependency(feature: .netGuestAnnounce, all: [.netCtrlVQ], any: []),
        Dependency(feature: .netMQ, all: [.netCtrlVQ], any: []),
        Dependency(feature: .netCtrlMacAddr, all: [.netCtrlVQ], any: []),
        Dependency(feature: .netNotfCoal, all: [.netCtrlVQ], any: []),
        Dependency(feature: .netRSCExt, all: [], any: [.netHostTSO4, .netHostTSO6]),
        Dependency(feature: .netRSS, all: [.netCtrlVQ], any: []),
        Dependency(feature: .netVQNotfCoal, all: [.netCtrlVQ], any: []),
        Dependency(feature: .netHashTunnel, all: [.netCtrlVQ], any: [.netRSS, .netHashReport]),
    ]

    /// The dependencies `f` breaks; `judgeCtrlVQ` false leaves out those that need CTRL_VQ.
    public static func broken(_ f: Features, judgeCtrlVQ: Bool) -> [Dependency] {
        table.filter { d in
            guard f.has(d.feature), judgeCtrlVQ || !d.needsCtrlVQ else { return false }
            let allOK = d.all.allSatisfy(f.has)
            let anyOK = d.any.isEmpty || d.any.contains(where: f.has)
            return !(allOK && anyOK)
        }
    }
}
