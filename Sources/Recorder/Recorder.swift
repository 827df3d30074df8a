import CSupport
import Checker
import Glibc
import TraceFormat
import VirtioProtocol

/// What `conformance record` (and `check --live`) should do.
public struct RecordOptions: Sendable {
    /// Socket the front-end connects to (created by the recorder).
    public var listenPath: String
    /// The back-end's socket (it must be listening).
    public var connectPath: String
    /// Trace output (binary, `.trace`).
    public var outputPath: String
    /// Stop after this many seconds of capture (nil: until a peer disconnects or SIGINT/SIGTERM).
    public var duration: Double?
    /// Stop after writing this many events.
    public var maxEvents: UInt64?
    /// Virtqueue count for the header; by default one more than the highest vring index the
    /// front-end configured before the first data-plane event.
    public var queues: Int?
    /// Pause between two polls of the rings. Shorter polls see more intermediate states and
    /// cost more CPU; the peers never wait for the recorder either way.
    public var pollIntervalMicros: Int = 20
    /// Seconds to wait for the front-end to connect.
    public var acceptTimeout: Double = 60
    /// Seconds between progress lines on stderr (0: none).
    public var progressInterval: Double = 1
    /// Check events as they are recorded.
    public var check = false
    /// With `check`: end the capture at the first finding.
    public var stopOnViolation = false
    /// Log every relayed message on stderr.
    public var verbose = false
    /// After a peer disconnects, wait for the front-end to connect again (up to `acceptTimeout`),
    /// reconnect to the back-end and go on in the same trace; the disconnect is written as
    /// `reset_owner`, since a vhost-user back-end resets the device when its front-end leaves.
    public var reconnect = false
    /// Interpose on the kick and call eventfds to record `kick` and `interrupt` events: the back-end
    /// gets the recorder's eventfds, and each notification is passed on as it arrives. The peers
    /// then hold different fds than without the recorder (same semantics, a little latency), so
    /// this is off by default.
    public var relayNotifications = false
    /// SIGINT/SIGTERM end the capture cleanly (the CLI wants this; a library caller may not).
    public var handleSignals = true

    public init(listenPath: String, connectPath: String, outputPath: String) {
        self.listenPath = listenPath; self.connectPath = connectPath; self.outputPath = outputPath
    }
}

/// How a capture ended and what it produced.
public struct RecordResult: Sendable {
    public enum End: Sendable, Equatable {
        case frontendClosed, backendClosed, duration, maxEvents, signal, violation
        /// The capture could not go on: a malformed message, an I/O error. The trace is still valid.
        case failed(String)
        /// Nothing was captured: the sockets could not be set up.
        case setupFailed(String)
    }
    public var end: End
    public var events: UInt64 = 0
    public var seconds: Double = 0
    public var findings: [Finding] = []
    public var totalFindings = 0
    public var queueCount = 0
    /// Rings the recorder could not follow (unmappable, fell behind), with the reason.
    public var ringProblems: [String] = []

    /// Exit status per the CLI contract: 0 captured (and, when checked, conformant),
    /// 1 a rule was broken, 2 setup or input failure.
    public var exitStatus: Int32 {
        switch end {
        case .setupFailed: return 2
        case .failed: return totalFindings > 0 ? 1 : 2
        default: return totalFindings > 0 ? 1 : 0
        }
    }
}

/// The vhost-user recording proxy. Single-threaded: one loop forwards messages in both
/// directions and polls the rings between them, so the memory map never changes under a poll.
public final class Recorder {
    let options: RecordOptions
    let log: (String) -> Void
    let onFinding: (Finding) -> Void

    private var frontend: Int32 = -1
    private var backend: Int32 = -1
    private let memory = GuestMemory()
    private var rings: [UInt16: RingPoller] = [:]
    private var dataPlaneBroken: String?

    // Output: events are held until the queue count is known, then streamed.
    private var pending: [TraceEvent] = []
    private var writer: TraceWriter?
    private var checker: Checker?
    private var header: TraceHeader?
    private var highestVring = -1
    private var eventCount: UInt64 = 0
    private var result = RecordResult(end: .frontendClosed)
    private var stopReason: RecordResult.End?
    private var seenRules = Set<RuleID>()
    private var droppedOutOfRange = 0

    // Events held until the back-end has certainly processed the message (see `deferUntilReply`).
    private var deferred: [TraceEvent] = []
    private var awaitingVringBase: [UInt16] = []
    private var awaitingAck: [UInt32] = []
    /// Notification relays: (fd the recorder reads, fd it writes, vq, kick or call).
    private struct Relay { let readFd: Int32; let writeFd: Int32; let vq: UInt16; let kick: Bool }
    private var relays: [Relay] = []
    private var protocolFeatures: UInt64 = 0
    private var features: UInt64 = 0

    private let t0 = cs_now_ns()
    private var now: UInt64 { cs_now_ns() - t0 }

    public init(options: RecordOptions, log: @escaping (String) -> Void, onFinding: @escaping (Finding) -> Void = { _ in }) {
        self.options = options; self.log = log; self.onFinding = onFinding
    }

    /// Runs one capture: accept the front-end, connect to the back-end, relay until the end.
    public static func run(_ options: RecordOptions, log: @escaping (String) -> Void, onFinding: @escaping (Finding) -> Void = { _ in }) -> RecordResult {
        Recorder(options: options, log: log, onFinding: onFinding).run()
    }

    public func run() -> RecordResult {
        if options.handleSignals { cs_install_stop_handlers() }
        // The back-end must already listen; say so before a front-end is kept waiting.
        var st = stat()
        guard stat(options.connectPath, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK else {
            return RecordResult(end: .setupFailed("no back-end socket at \(options.connectPath) (start the back-end first)"))
        }
        // Fail before anyone connects if the output cannot be written.
        guard let probe = fopen(options.outputPath, "wb") else {
            return RecordResult(end: .setupFailed("cannot create \(options.outputPath): \(String(cString: strerror(errno)))"))
        }
        fclose(probe)
        removeStaleSocket(options.listenPath)
        let listener = cs_unix_listen(options.listenPath)
        guard listener >= 0 else {
            return RecordResult(end: .setupFailed("cannot listen on \(options.listenPath): \(String(cString: strerror(errno)))"))
        }
        defer { close(listener); unlink(options.listenPath) }
        log("record: waiting for the front-end on \(options.listenPath)")
        frontend = cs_unix_accept(listener, Int32(options.acceptTimeout * 1000))
        guard frontend >= 0 else {
            let why = errno == ETIMEDOUT ? "no front-end connected within \(options.acceptTimeout) s" : String(cString: strerror(errno))
            finishTrace()
            return RecordResult(end: .setupFailed("\(why) on \(options.listenPath)"))
        }
        backend = cs_unix_connect(options.connectPath)
        guard backend >= 0 else {
            let why = String(cString: strerror(errno))
            close(frontend)
            finishTrace()
            return RecordResult(end: .setupFailed("cannot connect to the back-end at \(options.connectPath): \(why)"))
        }
        log("record: relaying \(options.listenPath) <-> \(options.connectPath), writing \(options.outputPath)")
        // With the queue count given, events stream (and are checked) from the first one;
        // otherwise they wait for the first data-plane event, when the vrings are known.
        if options.queues != nil { commitHeader() }
        while true {
            loop()
            close(frontend); close(backend)
            frontend = -1; backend = -1
            if !options.reconnect { closeRelays() }
            guard options.reconnect, result.end == .frontendClosed || result.end == .backendClosed else { break }
            // A disconnect resets the back-end's device; the next session starts from SET_OWNER.
            endSession()
            log("record: waiting for the front-end to reconnect (--reconnect)")
            frontend = cs_unix_accept(listener, Int32(options.acceptTimeout * 1000))
            guard frontend >= 0 else {
                log("record: no front-end reconnected within \(options.acceptTimeout) s; capture ends")
                break
            }
            backend = cs_unix_connect(options.connectPath)
            guard backend >= 0 else {
                result.end = .failed("cannot reconnect to the back-end at \(options.connectPath): \(String(cString: strerror(errno)))")
                log("record: \(result.end)")
                close(frontend); frontend = -1
                break
            }
            stopReason = nil
            log("record: new session")
        }
        finishTrace()
        result.events = eventCount
        result.seconds = Double(now) / 1e9
        result.queueCount = header?.queueCount ?? 0
        result.ringProblems = rings.values.sorted { $0.vq < $1.vq }.compactMap(\.problem)
        if let d = dataPlaneBroken { result.ringProblems.insert(d, at: 0) }
        if droppedOutOfRange > 0 {
            result.ringProblems.append("\(droppedOutOfRange) event(s) on vrings beyond the header's \(result.queueCount) queues were left out (use --queues)")
        }
        return result
    }

    private func removeStaleSocket(_ path: String) {
        var st = stat()
        if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
    }

    // MARK: main loop

    private func loop() {
        let deadline = options.duration.map { UInt64($0 * 1e9) }
        var nextProgress = UInt64(options.progressInterval * 1e9)
        let interval = max(0, options.pollIntervalMicros) * 1000
        while stopReason == nil {
            if options.handleSignals && cs_stop_requested() != 0 { stopReason = .signal; break }
            let anyActive = rings.values.contains { $0.active }
            let ready = relays.isEmpty ? cs_wait2(frontend, backend, anyActive ? interval : 50_000_000)
                                       : waitWithRelays(anyActive ? interval : 50_000_000)
            if ready < 0 { stopReason = .failed("poll failed: \(String(cString: strerror(errno)))"); break }
            if ready & 1 != 0 { relay(from: frontend, to: backend, fromFrontend: true) }
            if stopReason != nil { break }
            if ready & 2 != 0 { relay(from: backend, to: frontend, fromFrontend: false) }
            if stopReason != nil { break }
            pollRings()
            let t = now
            if let deadline, t >= deadline { stopReason = .duration }
            if options.progressInterval > 0 && t >= nextProgress {
                nextProgress = t + UInt64(options.progressInterval * 1e9)
                progress(t)
            }
        }
        // What the rings hold now still belongs to the capture (unless a peer is gone and
        // the memory may be reused).
        if stopReason == .duration || stopReason == .signal || stopReason == .maxEvents { pollRings() }
        flushDeferred(poll: false)
        result.end = stopReason ?? .frontendClosed
        switch result.end {
        case .frontendClosed: log("record: the front-end closed the connection; \(options.reconnect ? "session" : "capture") ends")
        case .backendClosed: log("record: the back-end closed the connection; \(options.reconnect ? "session" : "capture") ends")
        case .duration: log("record: --duration reached")
        case .maxEvents: log("record: --max-events reached")
        case .signal: log("record: interrupted; capture ends")
        case .violation: log("record: stopping at the first violation (--stop-on-violation)")
        case .failed(let why): log("record: \(why); the trace holds everything up to this point")
        case .setupFailed: break
        }
    }

    /// Forgets the session's rings, memory and pending replies, and marks the reset in the trace.
    private func endSession() {
        closeRelays()
        for k in rings.keys { rings[k]!.stopped = true; rings[k]!.resolve(memory: memory) }
        memory.clear()
        flushDeferred(poll: false)
        awaitingVringBase = []
        awaitingAck = []
        protocolFeatures = 0
        dataPlaneBroken = nil
        emit(.control(.resetOwner, t: now))
    }

    private func progress(_ t: UInt64) {
        let active = rings.values.filter { $0.active }.count
        let used = rings.values.reduce(UInt64(0)) { $0 + $1.buffersUsed }
        var line = "record: \(String(format1: Double(t) / 1e9)) s, \(eventCount + UInt64(pending.count)) events, \(active) ring(s) followed, \(used) buffers used"
        if options.check { line += ", \(result.totalFindings) finding(s)" }
        log(line)
    }

    private func pollRings() {
        guard dataPlaneBroken == nil else { return }
        let t = now
        for key in rings.keys.sorted() where rings[key]!.active {
            pollRing(key, at: t)
        }
    }

    private func pollRing(_ vq: UInt16, at t: UInt64) {
        guard var r = rings[vq], r.active else { return }
        r.poll(memory: memory, now: t) { emit($0) }
        if let p = r.problem, rings[vq]?.problem == nil { log("record: \(p)") }
        rings[vq] = r
    }

    // MARK: relaying

    private func relay(from src: Int32, to dst: Int32, fromFrontend: Bool) {
        let msg: VhostUserMessage
        do { msg = try MessageIO.read(src) } catch {
            switch error {
            case .closed: stopReason = fromFrontend ? .frontendClosed : .backendClosed
            default: stopReason = .failed("\(fromFrontend ? "front-end" : "back-end"): \(error)")
            }
            return
        }
        if options.verbose {
            log("record: \(fromFrontend ? "front-end ->" : "<- back-end") \(msg.name) flags=0x\(String(msg.flags, radix: 16)) size=\(msg.payload.count) fds=\(msg.fds.count)")
        }
        // Look first (mapping needs the fds before they are passed on), then forward unchanged.
        if fromFrontend { observeRequest(msg) } else { observeReply(msg) }
        var out = msg
        if fromFrontend && options.relayNotifications { out = interpose(msg) }
        do { try MessageIO.write(dst, out) } catch {
            // The other peer is gone: the same end as if it had closed first.
            if case .closed = error { stopReason = fromFrontend ? .backendClosed : .frontendClosed }
            else { stopReason = .failed("\(error)") }
        }
        msg.closeFds()
        // An interposed eventfd (`out.fds`) stays open: its relay owns it.
        if fromFrontend { afterForward(msg) }
    }

    /// SET_VRING_KICK/CALL with an fd: the back-end gets a fresh eventfd of the recorder's, which
    /// keeps a duplicate of the front-end's fd and passes each notification on.
    private func interpose(_ m: VhostUserMessage) -> VhostUserMessage {
        guard m.known == .setVringKick || m.known == .setVringCall, m.fds.count == 1, let v = m.u64(0),
              v & VhostUser.vringNoFdMask == 0 else { return m }
        let vq = UInt16(v & VhostUser.vringIndexMask)
        let kick = m.known == .setVringKick
        // Replace an earlier relay of the same kind on this vq.
        relays.removeAll { r in
            guard r.vq == vq && r.kick == kick else { return false }
            close(r.readFd); close(r.writeFd); return true
        }
        let mine = cs_eventfd(), theirs = dup(m.fds[0])
        guard mine >= 0, theirs >= 0 else {
            if mine >= 0 { close(mine) }
            if theirs >= 0 { close(theirs) }
            log("record: cannot relay notifications of vq \(vq): \(String(cString: strerror(errno))); passing the fd through")
            return m
        }
        // Kick: front-end writes theirs, the recorder reads it and writes mine (the back-end's).
        // Call: back-end writes mine, the recorder reads it and writes theirs.
        relays.append(kick ? Relay(readFd: theirs, writeFd: mine, vq: vq, kick: true)
                           : Relay(readFd: mine, writeFd: theirs, vq: vq, kick: false))
        var out = m
        out.fds = [mine]
        return out
    }

    /// Waits on both sockets and every relayed eventfd; passes notifications on. Returns the
    /// socket readiness bits as `cs_wait2` does.
    private func waitWithRelays(_ timeout: Int) -> Int32 {
        let fds = [frontend, backend] + relays.map(\.readFd)
        var ready = [UInt8](repeating: 0, count: fds.count)
        let n = cs_wait_many(fds, Int32(fds.count), timeout, &ready)
        if n < 0 { return -1 }
        for (i, r) in relays.enumerated() where ready[i + 2] != 0 {
            let count = cs_eventfd_take(r.readFd)
            guard count > 0 else { continue }
            _ = cs_eventfd_add(r.writeFd, UInt64(count))
            // Only started rings: a notification outside that window is relayed but not recorded,
            // since the trace could not place it against the ring's state.
            guard let ring = rings[r.vq], ring.active else { continue }
            if r.kick { pollRing(r.vq, at: now) }   // the exposure the kick announces comes first
            emit(TraceEvent(r.kick ? .kick : .interrupt, vq: r.vq, timestamp: now))
        }
        return Int32(ready[0]) | Int32(ready[1]) << 1
    }

    private func closeRelays() {
        for r in relays { close(r.readFd); close(r.writeFd) }
        relays = []
    }

    private func ring(_ index: UInt64) -> UInt16? {
        guard index < UInt64(TraceEvent.none) else { return nil }
        let vq = UInt16(index)
        if rings[vq] == nil { rings[vq] = RingPoller(vq: vq) }
        highestVring = max(highestVring, Int(vq))
        return vq
    }

    private func observeRequest(_ m: VhostUserMessage) {
        if m.needsReply && protocolFeatures & ProtocolFeatureBit.replyAck.mask != 0 { awaitingAck.append(m.request) }
        guard let req = m.known else { return }
        let t = now
        func short() { log("record: \(m.name) with a \(m.payload.count)-byte payload is too short; forwarded, not recorded") }
        switch req {
        case .setOwner:
            emit(.control(.setOwner, t: t))
        case .resetOwner:
            for k in rings.keys { rings[k]!.stopped = true }
            emit(.control(.resetOwner, t: t))
        case .setFeatures:
            guard let f = m.u64(0) else { return short() }
            features = f
            if f & FeatureBit.ringPacked.mask != 0 && dataPlaneBroken == nil {
                dataPlaneBroken = "VIRTIO_F_RING_PACKED negotiated: the recorder follows split rings only; data plane not recorded"
                log("record: \(dataPlaneBroken!)")
            }
            emit(.control(.setFeatures, value: f, t: t))
        case .setProtocolFeatures:
            guard let f = m.u64(0) else { return short() }
            protocolFeatures = f
            emit(.control(.setProtocolFeatures, value: f, t: t))
        case .setMemTable:
            setMemTable(m, t: t)
        case .addMemReg:
            guard m.payload.count >= 40, m.fds.count == 1 else { return short() }
            do {
                try memory.add(guestAddr: m.u64(8)!, size: m.u64(16)!, userAddr: m.u64(24)!, mmapOffset: m.u64(32)!, fd: m.fds[0])
            } catch { log("record: ADD_MEM_REG: \(error); rings in that region are not recorded") }
            reresolve()
        case .remMemReg:
            guard m.payload.count >= 40 else { return short() }
            memory.remove(guestAddr: m.u64(8)!, size: m.u64(16)!)
            reresolve()
        case .setVringNum:
            guard let i = m.u32(0), let n = m.u32(4), let vq = ring(UInt64(i)) else { return short() }
            rings[vq]!.size = n
            emit(.control(.setVringNum, vq: vq, value: UInt64(n), t: t))
        case .setVringAddr:
            // struct vhost_vring_addr: index, flags, desc, used, avail, log.
            guard m.payload.count >= 40, let i = m.u32(0), let vq = ring(UInt64(i)) else { return short() }
            let d = m.u64(8)!, u = m.u64(16)!, a = m.u64(24)!
            rings[vq]!.descAddr = d; rings[vq]!.usedAddr = u; rings[vq]!.availAddr = a; rings[vq]!.addrSet = true
            emit(TraceEvent(.setVringAddr, vq: vq, timestamp: t, p0: d, p1: a, p2: u))
        case .setVringBase:
            guard let i = m.u32(0), let n = m.u32(4), let vq = ring(UInt64(i)) else { return short() }
            rings[vq]!.base = UInt16(truncatingIfNeeded: n)
            emit(.control(.setVringBase, vq: vq, value: UInt64(n & 0xffff), t: t))
        case .getVringBase:
            guard let i = m.u32(0), let vq = ring(UInt64(i)) else { return short() }
            awaitingVringBase.append(vq)
        case .setVringKick, .setVringCall:
            guard let v = m.u64(0), let vq = ring(v & VhostUser.vringIndexMask) else { return short() }
            emit(.control(req == .setVringKick ? .setVringKick : .setVringCall, vq: vq, value: v & VhostUser.vringNoFdMask, t: t))
        case .setVringEnable:
            guard let i = m.u32(0), let n = m.u32(4), let vq = ring(UInt64(i)) else { return short() }
            let e = TraceEvent.control(.setVringEnable, vq: vq, value: n != 0 ? 1 : 0, t: t)
            // Enabling counts from the moment it is sent, disabling only once the back-end has
            // surely processed it: completions seen in between are then never blamed on a
            // disabled ring, whatever the sampling delay.
            if n != 0 { emit(e) } else { deferred.append(e) }
        default:
            break
        }
    }

    /// Starts polling once the message that starts a ring has gone to the back-end.
    private func afterForward(_ m: VhostUserMessage) {
        guard m.known == .setVringKick, let v = m.u64(0) else { return }
        let vq = UInt16(v & VhostUser.vringIndexMask)
        guard var r = rings[vq] else { return }
        r.kickSet = true
        if let h = header, Int(vq) >= h.queueCount {
            log("record: vq \(vq) is beyond the header's \(h.queueCount) queues; not recorded (use --queues)")
            return
        }
        r.start(memory: memory)
        if let p = r.problem, dataPlaneBroken == nil { log("record: vq \(vq) not recorded: \(p)") }
        rings[vq] = r
    }

    private func reresolve() {
        for k in rings.keys { rings[k]!.resolve(memory: memory) }
    }

    private func setMemTable(_ m: VhostUserMessage, t: UInt64) {
        memory.clear()
        guard let n = m.u32(0), n <= UInt32(VhostUser.maxMemRegions), m.payload.count >= 8 + 32 * Int(n) else {
            log("record: SET_MEM_TABLE payload is malformed; forwarded, data plane not recorded")
            reresolve()
            return
        }
        if m.fds.count != Int(n) {
            log("record: SET_MEM_TABLE names \(n) regions but carries \(m.fds.count) fds; data plane not recorded")
        } else {
            do {
                for k in 0..<Int(n) {
                    let o = 8 + 32 * k
                    try memory.add(guestAddr: m.u64(o)!, size: m.u64(o + 8)!, userAddr: m.u64(o + 16)!, mmapOffset: m.u64(o + 24)!, fd: m.fds[k])
                }
            } catch {
                memory.clear()
                log("record: SET_MEM_TABLE: \(error); forwarded, data plane not recorded")
            }
        }
        emit(.control(.setMemTable, value: UInt64(n), t: t))
        reresolve()
    }

    private func observeReply(_ m: VhostUserMessage) {
        // Any reply means the back-end has processed every earlier request (it handles them in order).
        flushDeferred(poll: true)
        guard let req = m.known else { return }
        let t = now
        switch req {
        case .getQueueNum where m.isReply:
            if let n = m.u64(0) { emit(.control(.getQueueNum, value: n & 0xffff, t: t)) }
        case .getVringBase where m.isReply:
            guard !awaitingVringBase.isEmpty, let num = m.u32(4) else { return }
            let vq = awaitingVringBase.removeFirst()
            // Everything the device published before it stopped is recorded before the stop.
            pollRing(vq, at: t)
            rings[vq]?.stopped = true
            rings[vq]?.resolve(memory: memory)
            emit(.control(.getVringBase, vq: vq, value: UInt64(num & 0xffff), t: t))
        default:
            // A REPLY_ACK answer to a request sent with NEED_REPLY: non-zero means the back-end refused it.
            if m.isReply, let k = awaitingAck.firstIndex(of: m.request) {
                awaitingAck.remove(at: k)
                if let v = m.u64(0), v != 0 { log("record: the back-end refused \(m.name) (REPLY_ACK \(v)); the trace records it as sent") }
            }
        }
    }

    private func flushDeferred(poll: Bool) {
        guard !deferred.isEmpty else { return }
        let events = deferred
        deferred = []
        for var e in events {
            if poll { pollRing(e.vq, at: now) }
            e.timestamp = now
            emit(e)
        }
    }

    // MARK: output

    private func emit(_ e: TraceEvent) {
        if let maxEvents = options.maxEvents, eventCount + UInt64(pending.count) >= maxEvents {
            if stopReason == nil { stopReason = .maxEvents }
            return
        }
        if header == nil {
            if e.kind.plane == .control { pending.append(e); return }
            commitHeader()
        }
        write(e)
    }

    private func commitHeader() {
        let count = max(options.queues ?? 0, highestVring + 1, 1)
        let h = TraceHeader(profile: .vhostUser, layout: .mq, flags: .sampled, features: 0, workers: 1,
                            queueSizes: Array(repeating: 0, count: count))
        header = h
        do { writer = try TraceWriter(path: options.outputPath, header: h) } catch {
            stopReason = .failed("\(error)")
        }
        if options.check { checker = Checker(header: h) }
        let held = pending
        pending = []
        for e in held { write(e) }
    }

    private func write(_ e: TraceEvent) {
        guard let h = header else { return }
        if e.vq != TraceEvent.none && Int(e.vq) >= h.queueCount { droppedOutOfRange += 1; return }
        let offset = UInt64(h.encodedSize) + eventCount * UInt64(TraceEvent.size)
        writer?.write(e)
        let index = eventCount
        eventCount += 1
        if checker != nil { report(checker!.process(e, index: index, offset: offset)) }
    }

    private func report(_ fs: [Finding]) {
        for f in fs {
            result.totalFindings += 1
            // First finding per rule in full, the rest counted (as `check` does).
            if seenRules.insert(f.rule).inserted {
                result.findings.append(f)
                onFinding(f)
                checker?.suppressed.insert(f.rule)
            }
            if options.stopOnViolation && stopReason == nil { stopReason = .violation }
        }
    }

    private func finishTrace() {
        if header == nil { commitHeader() }
        if let c = checker {
            var c = c
            report(c.finish())
            checker = c
            result.totalFindings += c.suppressedCount
        }
        writer?.close()
        writer = nil
    }
}

extension String {
    init(format1 v: Double) {
        let tenths = Int((v * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}
