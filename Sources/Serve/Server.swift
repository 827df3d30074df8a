import CSupport
import Checker
import Foundation
import Glibc
import TraceFormat
import VhostUser
import VirtioProtocol

/// `conformance serve`: the reference vhost-user net back-end. It listens on a Unix socket; each
/// front-end that connects is one session. The control thread (this one) answers the front-end's
/// messages; `effectiveWorkers` worker threads serve the vrings the mapping gives each. Every
/// event the device sees is traced exactly (`Specs/serve.md`) into the trace file, the checker,
/// or both.
public final class Server {
    public let options: ServeOptions
    let log: (String) -> Void
    private let device: Device
    private let eventLog: EventLog?
    private let checking: CheckingSink?
    private var channel: Channel?
    private var sessionsServed = 0
    private var sessionFailures: [String] = []
    private var peerErrors: [String] = []
    private var owner = false
    private var status: UInt8 = 0
    private var endReason = "no front-end connected"
    private let deadline: UInt64
    private var reportedVrings = Set<UInt64>()

    /// Features offered: split rings with EVENT_IDX, indirect descriptors, mergeable RX buffers, MQ.
    /// (No packed rings: the packed model is not in this build; no IN_ORDER, no offloads.)
    public static let offeredFeatures: UInt64 = FeatureBit.version1.mask | FeatureBit.protocolFeatures.mask | FeatureBit.netMQ.mask
        | FeatureBit.eventIdx.mask | FeatureBit.indirectDesc.mask | FeatureBit.netMrgRxbuf.mask
    /// Protocol features offered: MQ (GET_QUEUE_NUM), REPLY_ACK, CONFIG, STATUS.
    public static let offeredProtocolFeatures: UInt64 = ProtocolFeatureBit.mq.mask | ProtocolFeatureBit.replyAck.mask
        | ProtocolFeatureBit.config.mask | ProtocolFeatureBit.status.mask

    public init(options: ServeOptions, log: @escaping @Sendable (String) -> Void, onFinding: @escaping (Finding) -> Void = { _ in }) {
        self.options = options
        self.log = log
        let t0 = cs_now_ns()
        deadline = options.duration.map { t0 &+ UInt64(max(0, $0) * 1e9) } ?? .max
        var sink: TraceSink?
        var checking: CheckingSink?
        if options.tracing {
            let file: TraceSink = options.tracePath.map { TraceFileSink(path: $0) } ?? NullTraceSink()
            if options.check {
                let c = CheckingSink(writingTo: file, stopOnViolation: options.stopOnViolation, onFinding: onFinding)
                checking = c
                sink = c
            } else {
                sink = file
            }
        }
        self.checking = checking
        eventLog = sink.map { EventLog(sink: $0, t0: t0) }
        device = Device(options: options, log: eventLog, t0: t0, logLine: log)
    }

    /// The trace header: vhost-user, every vring's size set later by the front-end, exact.
    var header: TraceHeader {
        TraceHeader(profile: .vhostUser, layout: .mq, flags: [], features: 0, workers: 0,
                    queueSizes: Array(repeating: 0, count: options.vrings))
    }

    var stopRequested: Bool {
        (options.handleSignals && cs_stop_requested() != 0) || (eventLog?.stopRequested ?? false)
    }

    func ioBound(_ seconds: Double) -> IOBound {
        let handle = options.handleSignals
        return IOBound(deadline: min(deadline, cs_now_ns() &+ UInt64(seconds * 1e9)), stop: { handle && cs_stop_requested() != 0 })
    }

    // MARK: the run

    public func run() -> ServeResult {
        if options.handleSignals { cs_install_stop_handlers() }
        var result = ServeResult(options: options)
        if let l = eventLog {
            do { try l.sink.open(header) } catch {
                result.setupFailure = "cannot write the trace \(options.tracePath ?? ""): \(error)"
                return result
            }
            l.start()
        }
        let listener: Listener
        do { listener = try Listener(path: options.socketPath) } catch {
            result.setupFailure = "\(error)"
            eventLog?.close()
            return result
        }
        device.workers = (0..<options.effectiveWorkers).map { w in
            Worker(id: w, device: device, vrings: device.vrings.filter { device.workerOf[$0.index] == w })
        }
        for w in device.workers { w.start() }
        let mapping = device.workers.map { w in "worker \(w.id): vq \(w.vrings.map { String($0.index) }.joined(separator: ","))" }
        log("serve: listening on \(options.socketPath): \(options.pairs) queue pair(s), \(device.workers.count) worker(s) (\(options.mapping)): \(mapping.joined(separator: "; ")); data \(options.data.rawValue)")
        while !stopRequested && cs_now_ns() < deadline {
            do {
                channel = try listener.accept(within: ioBound(0.2))
            } catch {
                if case .timedOut = error { continue }
                if error == .stopped { break }
                result.setupFailure = "\(error)"
                break
            }
            sessionsServed += 1
            log("serve: front-end connected (session \(sessionsServed))")
            session()
            endSession()
            log("serve: session \(sessionsServed) ended: \(endReason)")
            if options.sessions > 0 && sessionsServed >= options.sessions { break }
        }
        for w in device.workers { w.stopAndJoin() }
        eventLog?.close()
        result.sessions = sessionsServed
        result.sessionFailures = sessionFailures
        result.peerErrors = peerErrors
        result.refusals = device.refusals
        result.unjudgedRefusal = device.unjudgedRefusal
        result.events = eventLog?.written ?? 0
        result.seconds = Double(cs_now_ns() &- device.t0) / 1e9
        if let f = eventLog?.sink.failure { result.traceFailure = f }
        if let c = checking {
            result.checked = true
            result.findings = c.findings
            result.totalFindings = c.totalFindings
            result.notJudged = c.notJudged
            result.checkerFailure = c.fatal
        }
        result.vqs = device.vrings.map { v in
            ServeResult.VQ(vq: v.index, role: v.isTX ? "TX[\(v.pair)]" : "RX[\(v.pair)]", worker: device.workerOf[v.index],
                           buffers: v.buffers, packets: v.packets, bytes: v.bytes, drops: v.drops, undelivered: v.undelivered, interrupts: v.interrupts, kicks: v.kicks)
        }
        result.workers = device.workers.map { ServeResult.WorkerStats(id: $0.id, vqs: $0.vrings.map(\.index), passes: $0.passes, buffers: $0.buffers, cpuSeconds: Double($0.cpuNs) / 1e9, wakeups: $0.wakeups) }
        return result
    }

    /// Runs `body` with every worker between passes.
    private func paused<T>(_ body: () -> T) -> T {
        for w in device.workers { w.pause() }
        defer { for w in device.workers { w.resume() } }
        return body()
    }

    private func emit(_ e: TraceEvent) { eventLog?.append(e) }

    private func control(_ kind: EventKind, vq: Int? = nil, value: UInt64 = 0, result: Int16 = 0) {
        emit(.control(kind, vq: vq.map(UInt16.init) ?? TraceEvent.none, value: value, result: result, t: device.now))
    }

    // MARK: a session

    private func session() {
        guard let ch = channel else { return }
        endReason = "the front-end closed the connection"
        while true {
            if stopRequested { endReason = eventLog?.stopRequested == true ? "stopped (the checker's first finding, or the trace failed)" : "interrupted"; break }
            if cs_now_ns() >= deadline { endReason = "--duration reached"; break }
            guard ch.readable(timeoutNs: 50_000_000) else { continue }
            let m: Message
            do { m = try ch.receive(within: ioBound(options.stallTimeout)) } catch {
                switch error {
                case .closed: endReason = "the front-end closed the connection"
                case .stopped: endReason = "interrupted"
                case .timedOut(let why):
                    if cs_now_ns() >= deadline { endReason = "--duration reached" } else { fail("the front-end stalled: \(why) for \(options.stallTimeout) s") }
                case .malformed, .io: fail("the front-end sent a message that cannot be served: \(error)")
                }
                break
            }
            if options.verbose { log("serve: <- \(m.name) flags=0x\(String(m.header.flags.rawValue, radix: 16)) size=\(m.payload.count) fds=\(m.fds.count)") }
            guard handle(m, ch) else { break }
        }
    }

    private func fail(_ why: String) {
        endReason = why
        if sessionFailures.count < 16 { sessionFailures.append(why) }
    }

    /// The session ends: rings stop, memory is unmapped, the device is as new (the next front-end
    /// starts from SET_OWNER); the trace says so with reset_owner.
    private func endSession() {
        paused {
            for v in device.vrings { v.reset() }
            for (k, q) in device.loop.enumerated() { device.vrings[2 * k].undelivered += UInt64(q.drain()) }
            device.memory.clear()
            device.features = 0
            device.protocolFeatures = 0
            if owner { control(.resetOwner) }
            owner = false
            status = 0
        }
        channel?.close()
        channel = nil
    }

    private func send(_ m: Message, _ ch: Channel) -> Bool {
        do { try ch.send(m, within: ioBound(options.stallTimeout)) } catch {
            switch error {
            case .closed: endReason = "the front-end closed the connection"
            case .stopped: endReason = "interrupted"
            default: fail("the front-end stopped reading: \(error)")
            }
            return false
        }
        return true
    }

    /// One front-end message: answered (a reply, or REPLY_ACK when asked), fds consumed. Returns
    /// false when the session must end.
    private func handle(_ m: Message, _ ch: Channel) -> Bool {
        var fds = m.fds
        defer { for fd in fds where fd >= 0 { close(fd) } }
        var ok = true
        var reply: Message?
        func short() { ok = false; device.note("\(m.name) with a \(m.payload.count)-byte payload is too short; refused", kind: "short") }
        guard let req = m.request else {
            device.note("unknown request \(m.header.request); refused", kind: "unknown-request")
            return m.wantsReply(protocolFeatures: device.protocolFeatures) ? send(.ack(m, success: false), ch) : true
        }
        switch req {
        case .getFeatures:
            reply = .reply(to: m, payload: U64Payload(Self.offeredFeatures))
            control(.getFeatures, value: Self.offeredFeatures)
        case .setFeatures:
            guard let f = m.decode(U64Payload.self) else { short(); break }
            ok = f.value & ~Self.offeredFeatures == 0
            if !ok { device.note("SET_FEATURES 0x\(String(f.value, radix: 16)) asks for features never offered (0x\(String(f.value & ~Self.offeredFeatures, radix: 16))); refused") }
            paused {
                if ok { device.features = f.value }
                control(.setFeatures, value: f.value, result: ok ? 0 : -Int16(Errno.einval.rawValue))
            }
        case .getProtocolFeatures:
            reply = .reply(to: m, payload: U64Payload(Self.offeredProtocolFeatures))
            control(.getProtocolFeatures, value: Self.offeredProtocolFeatures)
        case .setProtocolFeatures:
            guard let f = m.decode(U64Payload.self) else { short(); break }
            ok = f.value & ~Self.offeredProtocolFeatures == 0
            if ok { device.protocolFeatures = f.value }
            control(.setProtocolFeatures, value: f.value, result: ok ? 0 : -Int16(Errno.einval.rawValue))
        case .getQueueNum:
            reply = .reply(to: m, payload: U64Payload(UInt64(options.pairs)))
            control(.getQueueNum, value: UInt64(options.pairs))
        case .setOwner:
            paused { setOwner() }
        case .resetOwner:
            paused {
                for v in device.vrings { v.stop() }
                if owner { control(.resetOwner) }
                owner = false
            }
        case .setMemTable:
            guard let t = m.decode(MemoryTablePayload.self) else { short(); break }
            paused {
                if !owner { ok = false } else {
                    do {
                        try device.memory.replace(with: t.regions, fds: fds)
                    } catch {
                        ok = false
                        device.note("SET_MEM_TABLE refused: \(error)")
                    }
                }
                control(.setMemTable, value: UInt64(t.regions.count), result: ok ? 0 : -Int16(owner ? Errno.einval.rawValue : Errno.eperm.rawValue))
                if ok {
                    for (k, d) in t.regions.enumerated() { emit(TraceEvent(.memRegion, aux: UInt16(k), timestamp: device.now, p0: d.guestAddr, p1: d.size, p2: d.userAddr)) }
                }
                for v in device.vrings where v.started { resolve(v) }
            }
        case .setVringNum, .setVringBase, .getVringBase, .setVringEnable:
            guard let s = m.decode(VringState.self) else { short(); break }
            guard let v = vring(UInt64(s.index), m) else { ok = false; break }
            if req == .getVringBase {
                let base = paused { stop(v) }
                reply = .reply(to: m, payload: VringState(index: s.index, num: UInt32(base)))
                break
            }
            paused { ok = vringState(req, v, s.num) }
        case .setVringAddr:
            guard let a = m.decode(VringAddress.self) else { short(); break }
            guard let v = vring(UInt64(a.index), m) else { ok = false; break }
            paused {
                ok = owner && !v.started
                if ok { v.desc = a.desc; v.avail = a.avail; v.used = a.used; v.addrSet = true }
                emit(TraceEvent(.setVringAddr, vq: UInt16(v.index), aux: UInt16(bitPattern: ok ? 0 : -Int16(owner ? Errno.ebusy.rawValue : Errno.eperm.rawValue)),
                                timestamp: device.now, p0: a.desc, p1: a.avail, p2: a.used))
            }
        case .setVringKick, .setVringCall, .setVringErr:
            guard let f = m.decode(VringFile.self) else { short(); break }
            guard let v = vring(UInt64(f.index), m) else { ok = false; break }
            var fd: Int32 = -1
            if !f.noFd {
                guard fds.count == 1 else {
                    ok = false
                    device.note("\(m.name) for vq \(v.index) carries \(fds.count) fds (1 expected); refused")
                    break
                }
                fd = fds[0]; fds[0] = -1   // the vring keeps it
            }
            paused { ok = vringFile(req, v, fd: fd, noFd: f.noFd && f.otherBits == 0) }
        case .getConfig:
            guard let c = m.decode(ConfigPayload.self) else { short(); break }
            reply = .reply(to: m, payload: ConfigPayload(offset: c.offset, flags: c.flags, data: config(offset: Int(c.offset), size: c.data.count)))
        case .setConfig:
            ok = m.decode(ConfigPayload.self) != nil   // nothing in virtio-net's config is writable here
        case .setStatus:
            guard let s = m.decode(StatusPayload.self) else { short(); break }
            status = s.status
            control(.setStatus, value: UInt64(s.status))
        case .getStatus:
            reply = .reply(to: m, payload: StatusPayload(status: status))
            control(.getStatus, value: UInt64(status))
        case .getMaxMemSlots:
            reply = .reply(to: m, payload: U64Payload(UInt64(VhostUser.maxMemRegions)))
        case .setVringEndian:
            // Legacy cross-endian rings: only the host's (little-endian) order is served.
            if let s = m.decode(VringState.self) { ok = s.num == 0 } else { short() }
        case .sendRarp, .netSetMtu:
            break
        default:
            // Needs a protocol feature this back-end does not offer (logging, inflight, postcopy,
            // IOTLB, memory slots, backend requests...): refused.
            ok = false
            device.note("\(m.name) needs a protocol feature serve does not offer; refused", kind: "unsupported-\(m.header.request)")
            if req == .setBackendReqFd { control(.setBackendReqFd, result: -Int16(Errno.einval.rawValue)) }
            if req.alwaysReplies(protocolFeatures: device.protocolFeatures) {
                // Answered with an empty payload of the right request id: the front-end must not wait.
                reply = Message(header: MessageHeader(request: m.header.request, flags: [.version1, .reply], size: 0), payload: [])
            }
        }
        if let reply { return send(reply, ch) }
        if m.wantsReply(protocolFeatures: device.protocolFeatures) { return send(.ack(m, success: ok), ch) }
        return true
    }

    /// The vring a message names, or nil (the front-end's error, reported once per index).
    private func vring(_ index: UInt64, _ m: Message) -> Vring? {
        guard index < UInt64(options.vrings) else {
            if reportedVrings.count < 16, reportedVrings.insert(index).inserted {
                let e = "\(m.name) names vring \(index), but the device has \(options.vrings) (\(options.pairs) queue pairs, --queues): refused"
                peerErrors.append(e)
                log("serve: \(e)")
                // The trace cannot name that vring: a device-wide gap, so it never checks as conformant.
                emit(TraceEvent(.ringGap, timestamp: device.now, p0: UInt64(RingGapReason.beyondHeader.rawValue)))
            }
            return nil
        }
        return device.vrings[Int(index)]
    }

    /// SET_OWNER: the session's owner; the workers and their vrings are declared in the trace
    /// (vhost-user has no SET_OWNER argument: W is the command line's), so that VHOST-MAPPING and
    /// VHOST-SINGLE-CONSUMER judge this back-end's threads against its own mapping.
    private func setOwner() {
        let first = !owner
        owner = true
        control(.setOwner)
        guard first else { return }
        for w in device.workers where w.id > 0 { control(.newWorker, value: UInt64(w.id)) }
        for v in device.vrings { control(.attachVringWorker, vq: v.index, value: UInt64(device.workerOf[v.index])) }
    }

    private func vringState(_ req: VhostUserRequest, _ v: Vring, _ num: UInt32) -> Bool {
        let q = v.index
        switch req {
        case .setVringNum:
            let ok = owner && !v.started && SplitRing.isValidQueueSize(num) && num <= options.maxQueueSize
            if ok { v.size = num } else if owner && !v.started { device.note("SET_VRING_NUM \(num) on vq \(q): not a power of two in 1...\(options.maxQueueSize); refused") }
            control(.setVringNum, vq: q, value: UInt64(num), result: ok ? 0 : -Int16(!owner ? Errno.eperm.rawValue : v.started ? Errno.ebusy.rawValue : Errno.einval.rawValue))
            return ok
        case .setVringBase:
            // The 16-bit index of a split ring (bit 15 and above would carry a packed ring's wrap counter).
            let ok = owner && !v.started && num <= 0xFFFF
            if ok { v.base = UInt16(num) }
            control(.setVringBase, vq: q, value: UInt64(num & 0xFFFF), result: ok ? 0 : -Int16(!owner ? Errno.eperm.rawValue : v.started ? Errno.ebusy.rawValue : Errno.einval.rawValue))
            return ok
        case .setVringEnable:
            let ok = owner
            if ok { v.enableSent = num != 0 }
            control(.setVringEnable, vq: q, value: num != 0 ? 1 : 0, result: ok ? 0 : -Int16(Errno.eperm.rawValue))
            if ok && num == 0 && !v.isTX { v.undelivered += UInt64(device.loop[v.pair].drain()) }
            return ok
        default:
            return false
        }
    }

    private func vringFile(_ req: VhostUserRequest, _ v: Vring, fd: Int32, noFd: Bool) -> Bool {
        let q = v.index
        let value: UInt64 = fd >= 0 ? UInt64(fd) : VhostUser.vringNoFdMask
        guard owner else {
            if fd >= 0 { close(fd) }
            control(req == .setVringKick ? .setVringKick : req == .setVringCall ? .setVringCall : .setVringErr, vq: q, value: value, result: -Int16(Errno.eperm.rawValue))
            return false
        }
        switch req {
        case .setVringKick:
            if v.kickFd >= 0 { close(v.kickFd) }
            v.kickFd = fd
            v.polling = fd < 0
            control(.setVringKick, vq: q, value: value)
            // A new kick fd for a running ring changes how it is notified, not where it is.
            if !v.started { start(v) }
        case .setVringCall:
            if v.callFd >= 0 { close(v.callFd) }
            v.callFd = fd
            control(.setVringCall, vq: q, value: value)
        default:
            if v.errFd >= 0 { close(v.errFd) }
            v.errFd = fd
            control(.setVringErr, vq: q, value: value)
        }
        device.workers[device.workerOf[q]].wake()
        return true
    }

    /// The ring starts (vhost-user "Ring states": on SET_VRING_KICK) from its base.
    private func start(_ v: Vring) {
        v.started = true
        v.lastAvail = v.base
        v.lastUsed = v.base
        resolve(v)
    }

    /// Finds the ring's parts in the memory table (again, after SET_MEM_TABLE).
    private func resolve(_ v: Vring) {
        guard v.started else { return }
        let had = v.ring != nil
        v.ring = v.addrSet && v.size > 0 ? DeviceRing(memory: device.memory, size: v.size, desc: v.desc, avail: v.avail, used: v.used) : nil
        // Not served from here on (never resolved, or a new memory table no longer covers it).
        if v.ring == nil {
            let why = !v.addrSet ? "no SET_VRING_ADDR" : v.size == 0 ? "no SET_VRING_NUM" : "its addresses (desc 0x\(String(v.desc, radix: 16)), avail 0x\(String(v.avail, radix: 16)), used 0x\(String(v.used, radix: 16)), size \(v.size)) are not inside the memory table"
            device.note("vq \(v.index) \(had ? "can no longer be served (new memory table)" : "started but cannot be served"): \(why)", kind: "unresolved-\(v.index)")
            // Until a memory table covers it, what the driver does there is not seen.
            emit(TraceEvent(.ringGap, vq: UInt16(v.index), timestamp: device.now, p0: UInt64(RingGapReason.unmapped.rawValue)))
        }
    }

    /// GET_VRING_BASE: the ring stops; returns the index the next start continues from.
    private func stop(_ v: Vring) -> UInt16 {
        let base = v.stopBase
        v.stop()
        v.base = base
        if !v.isTX { v.undelivered += UInt64(device.loop[v.pair].drain()) }
        control(.getVringBase, vq: v.index, value: UInt64(base))
        return base
    }

    /// virtio-net config space (virtio 1.x "Device configuration layout"): mac, status (LINK_UP),
    /// max_virtqueue_pairs, mtu.
    private func config(offset: Int, size: Int) -> [UInt8] {
        var c = [UInt8](repeating: 0, count: 24)
        c[0...5] = [0x52, 0x54, 0x00, 0x5e, 0x12, 0x34]
        c[6] = 1
        c[8] = UInt8(options.pairs & 0xff); c[9] = UInt8(options.pairs >> 8)
        c[10] = 0xdc; c[11] = 0x05   // 1500
        return (0..<max(0, size)).map { offset + $0 < c.count && offset >= 0 ? c[offset + $0] : 0 }
    }
}
