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
