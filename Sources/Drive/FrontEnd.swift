import CSupport
import Glibc
import TraceFormat
import VhostUser
import VirtioProtocol

/// One vhost-user connection as `drive`'s front-end holds it: messages out, replies in, every wait
/// bounded, every control message recorded in the trace with the result the back-end gave.
///
/// With REPLY_ACK negotiated every request that has no reply of its own goes out with NEED_REPLY,
/// so the result of each is known exactly: 0 when acknowledged, -EINVAL when the back-end answered
/// failure (vhost-user carries no errno). Without REPLY_ACK a request is recorded as accepted.
public final class FrontEnd {
    public let path: String
    public let channel: Channel
    let trace: DriveTrace
    /// Seconds a reply may take.
    public let replyBound: Double
    public private(set) var offeredFeatures: UInt64 = 0
    public private(set) var offeredProtocol: UInt64 = 0
    public private(set) var features: UInt64 = 0
    public private(set) var protocolFeatures: UInt64 = 0
    public private(set) var queueNum: Int?
    /// Messages the back-end sent that answered no request (ignored, counted).
    public private(set) var strayMessages = 0
    public private(set) var isClosed = false

    public init(connect path: String, trace: DriveTrace, connectBound: Double, replyBound: Double) throws(DriveError) {
        self.path = path; self.trace = trace; self.replyBound = replyBound
        do {
            channel = try Connector.connect(path, within: .within(connectBound), interval: 0.05)
        } catch {
            throw .closed("cannot connect to \(path): \(error)")
        }
    }

    deinit { channel.close() }

    public func close() { channel.close(); isClosed = true }

    public var replyAck: Bool { protocolFeatures & ProtocolFeatureBit.replyAck.mask != 0 }
    public func has(_ f: FeatureBit) -> Bool { features & f.mask != 0 }
    public func offers(_ f: FeatureBit) -> Bool { offeredFeatures & f.mask != 0 }
    public func offersProtocol(_ f: ProtocolFeatureBit) -> Bool { offeredProtocol & f.mask != 0 }

    // MARK: raw messages

    /// Sends `m` as is (hostile scenarios build malformed ones).
    public func send(_ m: Message) throws(DriveError) {
        guard !isClosed else { throw .closed("the connection is closed") }
        do { try channel.send(m, within: .within(replyBound)) } catch {
            throw Self.map(error, doing: "sending \(m.name)")
        }
    }

    /// Sends raw bytes (a header that lies about its payload, say) with `fds`.
    public func sendRaw(_ bytes: [UInt8], fds: [Int32] = []) throws(DriveError) {
        var h = MessageHeader(request: 0, size: 0)
        if let d = MessageHeader(decoding: Array(bytes.prefix(MessageHeader.size))) { h = d }
        let m = Message(header: h, payload: Array(bytes.dropFirst(MessageHeader.size)), fds: fds)
        guard !isClosed else { throw .closed("the connection is closed") }
        // Channel.send writes header + payload as given: the header's size field is not rewritten.
        do { try channel.send(m, within: .within(replyBound)) } catch { throw Self.map(error, doing: "sending raw bytes") }
    }

    /// The next message from the back-end that replies to `request`; others are counted and dropped.
    public func reply(to request: VhostUserRequest, within seconds: Double? = nil) throws(DriveError) -> Message {
        let bound = IOBound.within(seconds ?? replyBound)
        while true {
            let m: Message
            do { m = try channel.receive(within: bound) } catch {
                if case .timedOut = error { throw .wedged("no reply to \(request) within \(seconds ?? replyBound) s") }
                throw Self.map(error, doing: "waiting for the reply to \(request)")
            }
            if m.isReply && m.header.request == request.rawValue { return m }
            m.closeFds()
            strayMessages += 1
            if strayMessages > 1000 { throw .wedged("the back-end sent more than 1000 messages that answer no request") }
        }
    }

    static func map(_ e: VhostUserError, doing what: String) -> DriveError {
        switch e {
        case .closed: return .closed("the back-end closed the connection (\(what))")
        case .timedOut(let s): return .wedged("\(what): \(s)")
        case .stopped: return .tool("stopped")
        case .io(let s): return .closed("\(what): \(s)")
        case .malformed(let s): return .closed("\(what): the back-end sent a malformed message: \(s)")
        }
    }

    /// Sends a request without a reply of its own; with REPLY_ACK waits for the acknowledgement.
    /// Returns the result to record: 0 acknowledged (or not asked), -EINVAL refused.
    @discardableResult
    public func request(_ m: Message) throws(DriveError) -> Int16 {
        var m = m
        if replyAck { m.header.flags.insert(.needReply) }
        try send(m)
        guard replyAck, let r = m.request else { return 0 }
        let ack = try reply(to: r)
        guard let v = ack.decode(U64Payload.self) else { throw .closed("the back-end's REPLY_ACK to \(m.name) has no u64 payload") }
        return v.value == 0 ? 0 : -Int16(Errno.einval.rawValue)
    }

    /// A round trip the back-end must answer (GET_FEATURES): everything sent before it has been
    /// read by then. Used to place a control message in the trace when REPLY_ACK is not there.
    public func barrier() throws(DriveError) {
        try send(Message(.getFeatures))
        _ = try reply(to: .getFeatures)
    }

    // MARK: negotiation

    /// GET_FEATURES (and protocol features, queue count), SET_OWNER, SET_FEATURES: the features
    /// `want` that are offered, with PROTOCOL_FEATURES whenever it is. Protocol features: those of
    /// `wantProtocol` offered.
    public func negotiate(want: UInt64, wantProtocol: UInt64) throws(DriveError) {
        try send(Message(.getFeatures))
        guard let f = try reply(to: .getFeatures).decode(U64Payload.self) else { throw .closed("GET_FEATURES reply has no u64 payload") }
        offeredFeatures = f.value
        guard offeredFeatures & FeatureBit.version1.mask != 0 else {
            throw .skipped("the back-end does not offer VIRTIO_F_VERSION_1 (features 0x\(String(offeredFeatures, radix: 16))); drive drives modern devices only")
        }
        if offers(.protocolFeatures) {
            try send(Message(.getProtocolFeatures))
            guard let p = try reply(to: .getProtocolFeatures).decode(U64Payload.self) else { throw .closed("GET_PROTOCOL_FEATURES reply has no u64 payload") }
            offeredProtocol = p.value
            let pf = offeredProtocol & wantProtocol
            try send(Message(.setProtocolFeatures, payload: U64Payload(pf)))
            protocolFeatures = pf
            trace.control(.setProtocolFeatures, value: pf)
            if pf & ProtocolFeatureBit.mq.mask != 0 {
                try send(Message(.getQueueNum))
                guard let q = try reply(to: .getQueueNum).decode(U64Payload.self) else { throw .closed("GET_QUEUE_NUM reply has no u64 payload") }
                queueNum = Int(clamping: q.value)
                trace.control(.getQueueNum, value: q.value & 0xFFFF)
            }
        }
        let owner = try request(Message(.setOwner))
        trace.control(.setOwner, result: owner)
        var fs = want & offeredFeatures
        if offers(.protocolFeatures) { fs |= FeatureBit.protocolFeatures.mask }
        let r = try request(Message(.setFeatures, payload: U64Payload(fs)))
        trace.control(.setFeatures, value: fs, result: r)
        guard r == 0 else { throw .refused("the back-end refused SET_FEATURES 0x\(String(fs, radix: 16)), a subset of what it offered") }
        features = fs
    }

    public func setMemTable(_ mem: DriverMemory) throws(DriveError) {
        let (regions, fds) = mem.table
        let r = try request(Message(.setMemTable, payload: MemoryTablePayload(regions: regions), fds: fds))
        trace.control(.setMemTable, value: UInt64(regions.count), result: r)
        // The table itself, so that ring and buffer addresses are judged against it.
        for (k, d) in regions.enumerated() {
            trace.emit(TraceEvent(.memRegion, aux: UInt16(k), p0: d.guestAddr, p1: d.size, p2: d.userAddr))
        }
        guard r == 0 else { throw .refused("the back-end refused SET_MEM_TABLE with \(regions.count) region(s) (\(mem.totalSize) bytes)") }
    }

    // MARK: rings

    @discardableResult
    public func setVringNum(_ vq: UInt16, _ n: UInt32) throws(DriveError) -> Int16 {
        let r = try request(Message(.setVringNum, payload: VringState(index: UInt32(vq), num: n)))
        trace.control(.setVringNum, vq: vq, value: UInt64(n), result: r)
        return r
    }

    @discardableResult
    public func setVringBase(_ vq: UInt16, _ base: UInt16) throws(DriveError) -> Int16 {
        let r = try request(Message(.setVringBase, payload: VringState(index: UInt32(vq), num: UInt32(base))))
        trace.control(.setVringBase, vq: vq, value: UInt64(base), result: r)
        return r
    }

    @discardableResult
    public func setVringAddr(_ vq: UInt16, desc: UInt64, avail: UInt64, used: UInt64) throws(DriveError) -> Int16 {
        let r = try request(Message(.setVringAddr, payload: VringAddress(index: UInt32(vq), desc: desc, used: used, avail: avail)))
        if Int(vq) < trace.queueCount {
            trace.emit(TraceEvent(.setVringAddr, vq: vq, aux: UInt16(bitPattern: r), p0: desc, p1: avail, p2: used))
        }
        return r
    }

    @discardableResult
    public func setVringKick(_ vq: UInt16, fd: Int32) throws(DriveError) -> Int16 {
        let r = try request(Message(.setVringKick, payload: VringFile(index: UInt8(truncatingIfNeeded: vq)), fds: [fd]))
        trace.control(.setVringKick, vq: vq, value: UInt64(fd), result: r)
        return r
    }

    @discardableResult
    public func setVringCall(_ vq: UInt16, fd: Int32) throws(DriveError) -> Int16 {
        let r = try request(Message(.setVringCall, payload: VringFile(index: UInt8(truncatingIfNeeded: vq)), fds: [fd]))
        trace.control(.setVringCall, vq: vq, value: UInt64(fd), result: r)
        return r
    }

    /// SET_VRING_ENABLE, sent and acknowledged (or followed by a barrier without REPLY_ACK) but not
    /// yet recorded: the caller records it once the ring was polled, so that completions the
    /// device made before it took effect are placed before it.
    public func setVringEnable(_ vq: UInt16, _ on: Bool) throws(DriveError) -> Int16 {
        let r = try request(Message(.setVringEnable, payload: VringState(index: UInt32(vq), num: on ? 1 : 0)))
        if !replyAck { try barrier() }
        return r
    }

    /// GET_VRING_BASE: the ring stops; the reply's base (not yet recorded, as for enable).
    public func getVringBase(_ vq: UInt16) throws(DriveError) -> UInt16 {
        try send(Message(.getVringBase, payload: VringState(index: UInt32(vq), num: 0)))
        let m = try reply(to: .getVringBase)
        guard let s = m.decode(VringState.self) else { throw .closed("GET_VRING_BASE reply has no vring state payload") }
        return UInt16(truncatingIfNeeded: s.num)
    }
}
