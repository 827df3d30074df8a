import VirtioProtocol

/// vhost-user message gating: which front-end messages are legal given what the back-end offered
/// (GET_FEATURES, GET_PROTOCOL_FEATURES), what was negotiated (SET_FEATURES, SET_PROTOCOL_FEATURES)
/// and how many queues it reported (GET_QUEUE_NUM). Source: QEMU docs/interop/vhost-user.rst.
///
/// Sound by construction: a message is reported only when the trace shows that what it needs is
/// absent: the offer is known and lacks it, or (for "negotiated") the acknowledged set is known and
/// lacks it, or the trace holds the whole control plane and no protocol-feature exchange happened
/// at all. Whatever the trace does not show is not guessed at.
public struct VhostUserGating: Sendable {
    public private(set) var offeredFeatures: UInt64?
    public private(set) var ackedFeatures: UInt64?
    public private(set) var offeredProtocol: UInt64?
    public private(set) var ackedProtocol: UInt64?
    /// Queue pairs GET_QUEUE_NUM reported (vhost-user-net counts pairs: QEMU net/vhost-user.c, DPDK).
    public private(set) var queuePairs: Int?
    /// The trace holds the control plane from the start (not `preset`): no exchange means none happened.
    public let wholeControlPlane: Bool

    public init(headerFeatures: UInt64, preset: Bool) {
        wholeControlPlane = !preset
        // A preset header states the negotiated features; otherwise they come with SET_FEATURES.
        ackedFeatures = preset ? headerFeatures : nil
    }

    public mutating func getFeatures(offered: UInt64) { offeredFeatures = offered }
    public mutating func setFeatures(_ f: UInt64) { ackedFeatures = f }
    public mutating func getProtocolFeatures(offered: UInt64) { offeredProtocol = offered }

    /// SET_FEATURES `f` asks only for what GET_FEATURES offered (judged whatever the answer: the
    /// request is the front-end's; unknown offer, nothing judged).
    public func featuresRequested(_ f: UInt64) -> [Violation] {
        guard let o = offeredFeatures, f & ~o != 0 else { return [] }
        return [Violation(.vhostFeaturesOffered, "SET_FEATURES 0x\(String(f, radix: 16)) accepts bits 0x\(String(f & ~o, radix: 16)) that GET_FEATURES 0x\(String(o, radix: 16)) did not offer")]
    }

    /// GET_ or SET_PROTOCOL_FEATURES (`set`: the bits acknowledged): only once VHOST_USER_F_PROTOCOL_FEATURES
    /// was offered, and SET_PROTOCOL_FEATURES within GET_PROTOCOL_FEATURES's offer.
    public func protocolFeaturesRequested(_ what: String, set: UInt64? = nil) -> [Violation] {
        let bit = FeatureBit.protocolFeatures.mask
        if let o = offeredFeatures, o & bit == 0 {
            return [Violation(.vhostFeaturesOffered, "\(what) sent, but GET_FEATURES 0x\(String(o, radix: 16)) does not offer VHOST_USER_F_PROTOCOL_FEATURES (bit 30)")]
        }
        if let p = set, let o = offeredProtocol, p & ~o != 0 {
            return [Violation(.vhostFeaturesOffered, "SET_PROTOCOL_FEATURES 0x\(String(p, radix: 16)) sets bits 0x\(String(p & ~o, radix: 16)) that GET_PROTOCOL_FEATURES 0x\(String(o, radix: 16)) did not offer")]
        }
        return []
    }

    /// SET_PROTOCOL_FEATURES: INBAND_NOTIFICATIONS is an error without BACKEND_REQ and REPLY_ACK.
    public mutating func setProtocolFeatures(_ p: UInt64) -> [Violation] {
        ackedProtocol = p
        let inband = ProtocolFeatureBit.inbandNotifications
        guard p & inband.mask != 0 else { return [] }
        let missing = [ProtocolFeatureBit.backendReq, .replyAck].filter { p & $0.mask == 0 }
        guard !missing.isEmpty else { return [] }
        return [Violation(.vhostUserInbandGate, "SET_PROTOCOL_FEATURES 0x\(String(p, radix: 16)) sets INBAND_NOTIFICATIONS without \(missing.map(\.name).joined(separator: " and ")) (an error: the back-end should close the connection)")]
    }

    public mutating func getQueueNum(_ n: UInt64) { queuePairs = Int(clamping: n) }

    private var anyProtocolExchange: Bool { offeredProtocol != nil || ackedProtocol != nil }

    /// SET_VRING_ENABLE needs VHOST_USER_F_PROTOCOL_FEATURES (virtio feature bit 30) offered or negotiated.
    public func setVringEnable(vq: Int) -> [Violation] {
        let bit = FeatureBit.protocolFeatures.mask
        if let o = offeredFeatures {
            guard o & bit == 0 else { return [] }
            return [Violation(.vhostUserEnableGate, "SET_VRING_ENABLE on vq \(vq), but the back-end's GET_FEATURES 0x\(String(o, radix: 16)) does not offer VHOST_USER_F_PROTOCOL_FEATURES (bit 30)")]
        }
        if let a = ackedFeatures, a & bit != 0 { return [] }
        // The protocol-feature exchange happens only once bit 30 was offered.
        if anyProtocolExchange { return [] }
        guard wholeControlPlane || ackedFeatures != nil else { return [] }
        let what = ackedFeatures.map { "the features negotiated (0x\(String($0, radix: 16))) lack VHOST_USER_F_PROTOCOL_FEATURES (bit 30)" }
            ?? "no features have been negotiated yet"
        return [Violation(.vhostUserEnableGate, "SET_VRING_ENABLE on vq \(vq), but \(what) and no protocol features were exchanged")]
    }

    /// A message that needs protocol feature `bit`; `offerSuffices` says whether the doc asks only for
    /// the bit to be in GET_PROTOCOL_FEATURES (true) or for it to be negotiated (false).
    public func needsProtocol(_ what: String, _ bit: ProtocolFeatureBit, offerSuffices: Bool) -> [Violation] {
        func v(_ why: String) -> [Violation] {
            [Violation(.vhostUserProtocolGate, "\(what) sent, but \(why): it needs protocol feature \(bit.name) (bit \(bit.rawValue))")]
        }
        if offerSuffices {
            if let o = offeredProtocol { return o & bit.mask != 0 ? [] : v("GET_PROTOCOL_FEATURES offered 0x\(String(o, radix: 16))") }
            if ackedProtocol != nil { return [] } // the offer is unknown; not acknowledging a bit does not mean it was not offered
        } else {
            if let a = ackedProtocol { return a & bit.mask != 0 ? [] : v("SET_PROTOCOL_FEATURES negotiated 0x\(String(a, radix: 16))") }
            if let o = offeredProtocol, o & bit.mask == 0 { return v("GET_PROTOCOL_FEATURES offered 0x\(String(o, radix: 16)) and none were negotiated") }
            if offeredProtocol != nil { return [] }
        }
        return wholeControlPlane ? v("no protocol features were exchanged before it") : []
    }

    /// In-band VRING_KICK / BACKEND_VRING_CALL need INBAND_NOTIFICATIONS negotiated.
    public func inbandMessage(_ what: String, vq: Int) -> [Violation] {
        let bit = ProtocolFeatureBit.inbandNotifications
        if let a = ackedProtocol {
            guard a & bit.mask == 0 else { return [] }
            return [Violation(.vhostUserInbandGate, "\(what) on vq \(vq), but INBAND_NOTIFICATIONS was not negotiated (SET_PROTOCOL_FEATURES 0x\(String(a, radix: 16)))")]
        }
        guard wholeControlPlane else { return [] }
        return [Violation(.vhostUserInbandGate, "\(what) on vq \(vq), but no protocol features (INBAND_NOTIFICATIONS) were negotiated")]
    }

    /// A message addressing vring `vq` once GET_QUEUE_NUM has answered.
    public func ringMessage(_ what: String, vq: Int) -> [Violation] {
        guard let n = queuePairs else { return [] }
        let limit = 2 * n
        if vq < limit { return [] }
        // The control queue (index 2n) belongs to the back-end only when it is told CTRL_VQ.
        if vq == limit, let a = ackedFeatures, a & FeatureBit.netCtrlVQ.mask != 0 { return [] }
        return [Violation(.vhostUserVringIndex, "\(what) addresses vq \(vq), but GET_QUEUE_NUM reported \(n) queue pair(s): vrings 0...\(limit - 1)")]
    }
}
