import CSupport
import Glibc
import TraceFormat
import VhostUser
import VirtioProtocol

/// The vhost-user recording proxy. Single-threaded: one loop relays messages in both directions
/// and polls the rings between them, so the memory map never changes under a poll. Every socket
/// and eventfd operation is bounded by the stall timeout, the capture's deadline and SIGINT/SIGTERM;
/// every read of the front-end's memory is guarded; every poll's work is bounded. The recorder
/// never sends a peer anything the other peer did not send.
public final class Recorder {
    let options: RecordOptions
    let sink: TraceSink
    let log: (String) -> Void

    var frontend: Channel?
    var backend: Channel?
    let memory: MemoryTable
    /// `--interpose`: the ring relay (nil for the passive recorder).
    let interposer: Interposer?
    var rings = RingTable()
    var header: TraceHeader
    var eventCount: UInt64 = 0
    /// --max-events refused a group: nothing more is written.
    var maxEventsReached = false
    var result = RecordResult(end: .frontendClosed)
    var stopReason: RecordResult.End?
    /// SET_VRING_ENABLE 0 events held until the back-end has surely processed them.
    var held: [TraceEvent] = []
    var awaitingVringBase: [UInt16] = []
    /// Requests whose reply is still due, by request id (a reply nobody asked for is not recorded).
    var outstanding: [UInt32: Int] = [:]
    var relays: [NotificationRelay] = []
    var features: UInt64 = 0
    var protocolFeatures: UInt64 = 0
    var reportedVrings = Set<UInt64>()
    var scratch: [TraceEvent] = []
    /// The fds and readiness of a wait, and which relays have a notification to pass on: kept
    /// between passes, so that a wait allocates nothing.
    private var waitFds: [Int32] = []
    private var waitReady: [UInt8] = []
    private var readyRelays: [Bool] = []
    /// The last pass over the rings wrote something (news, or the quiet poll that closes it).
    var busy = false
    /// Lines logged per kind of repeated peer misbehaviour; past `repeatLimit` they are only counted,
    /// so a flood costs neither stderr nor memory.
    var repeats: [String: Int] = [:]
    var gapsLogged: [UInt16: Int] = [:]
    static let repeatLimit = 5
    /// Bounds on what a peer can make the recorder remember.
    static let maxPeerErrors = 16
    static let maxOutstandingKinds = 64
    static let maxAwaitingVringBase = 4096

    let t0 = cs_now_ns()
    var now: UInt64 { cs_now_ns() - t0 }
    /// Absolute CLOCK_MONOTONIC deadline of the capture (`duration`), or `.max`.
    let deadline: UInt64
    private var lastFlush: UInt64 = 0
    /// A poll's stop condition: SIGINT/SIGTERM, or half a second past the capture's deadline (made
    /// once; a closure per poll was an allocation per ring per pass).
    private let pollStop: () -> Bool

    public init(options: RecordOptions, sink: TraceSink, log: @escaping (String) -> Void) {
        self.options = options; self.sink = sink; self.log = log
        let end = options.duration.map { cs_now_ns() &+ UInt64(max(0, $0) * 1e9) } ?? .max
        deadline = end
        let handle = options.handleSignals
        let hard = end == .max ? UInt64.max : end &+ 500_000_000
        pollStop = { (handle && cs_stop_requested() != 0) || cs_now_ns() > hard }
        header = TraceHeader(profile: .vhostUser, layout: .mq, flags: options.interpose ? [] : .sampled, features: 0, workers: 1,
                             queueSizes: Array(repeating: 0, count: max(1, min(options.queues, TraceHeader.maxQueueCount))))
        // The relay writes the front-end's used ring; the passive recorder only reads.
        memory = MemoryTable(writable: options.interpose)
        interposer = options.interpose ? Interposer(vrings: header.queueCount, log: log) : nil
    }

    /// Runs one capture into the trace file at `options.outputPath`.
    public static func run(_ options: RecordOptions, log: @escaping (String) -> Void) -> RecordResult {
        Recorder(options: options, sink: TraceFileSink(path: options.outputPath), log: log).run()
    }

    var stopRequested: Bool { options.handleSignals && cs_stop_requested() != 0 }

    /// The bound of one socket operation: the stall timeout, the capture's deadline, the stop flag.
    func ioBound(_ seconds: Double) -> IOBound {
        let handle = options.handleSignals
        return IOBound(deadline: min(deadline, cs_now_ns() &+ UInt64(seconds * 1e9)), stop: { handle && cs_stop_requested() != 0 })
    }

    // MARK: the capture

    public func run() -> RecordResult {
        if options.handleSignals { cs_install_stop_handlers() }
        // The header goes to disk before anyone connects: whatever ends the capture, a trace exists.
        do { try sink.open(header) } catch {
            return RecordResult(end: .setupFailed("cannot write the trace \(options.outputPath): \(error)"))
        }
        result.queueCount = header.queueCount
        capture()
        finish()
        return result
    }

    private func capture() {
        // The back-end must already listen; say so before a front-end is kept waiting.
        var st = stat()
        guard stat(options.connectPath, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK else {
            result.end = .setupFailed("no back-end socket at \(options.connectPath) (start the back-end first)")
            return
        }
        let listener: Listener
        do { listener = try Listener(path: options.listenPath) } catch {
            result.end = .setupFailed("\(error)")
            return
        }
        log("record: waiting for the front-end on \(options.listenPath)")
        do {
            frontend = try listener.accept(within: ioBound(options.acceptTimeout))
        } catch {
            // Nothing was captured either way: a trace without a session proves nothing.
            result.end = .setupFailed(error == .stopped ? "interrupted before a front-end connected on \(options.listenPath)"
                : "no front-end connected within \(options.acceptTimeout) s on \(options.listenPath)")
            return
        }
        do {
            backend = try Connector.connect(options.connectPath, within: ioBound(options.backendRetry))
        } catch {
            frontend?.close()
            result.end = error == .stopped ? .signal : .setupFailed("cannot connect to the back-end: \(error)")
            return
        }
        log("record: relaying \(options.listenPath) <-> \(options.connectPath), writing \(options.outputPath)")
        if interposer != nil { log(InterposeFeatures.announcement) }
        interposer?.gapLogged = { [weak self] vq, line in self?.note("ring_gap vq \(vq)", line) }
        while true {
            session()
            frontend?.close(); backend?.close()
            frontend = nil; backend = nil
            closeRelays()
            interposer?.endSession()
            let end = stopReason ?? .frontendClosed
            if case .failed(let why) = end { result.sessionFailures.append(why) }
            result.end = end
            guard options.reconnect, sessionMayFollow(end) else { break }
            endSession()
            log("record: waiting for the front-end to reconnect (--reconnect)")
            do {
                frontend = try listener.accept(within: ioBound(options.acceptTimeout))
            } catch {
                if error == .stopped { result.end = .signal }
                else if cs_now_ns() >= deadline { result.end = .duration }
                else { log("record: no front-end reconnected within \(options.acceptTimeout) s; capture ends") }
                break
            }
            do {
                backend = try Connector.connect(options.connectPath, within: ioBound(options.backendRetry))
            } catch {
                frontend?.close(); frontend = nil
                result.end = error == .stopped ? .signal : .failed("cannot reconnect to the back-end within \(options.backendRetry) s: \(error)")
                if case .failed(let why) = result.end { result.sessionFailures.append(why) }
                log("record: \(result.end)")
                break
            }
            stopReason = nil
            log("record: new session")
        }
    }

    private func sessionMayFollow(_ end: RecordResult.End) -> Bool {
        switch end {
        case .frontendClosed, .backendClosed, .failed: return true
        default: return false
        }
    }

    /// A disconnect resets the back-end's device; the next session starts from SET_OWNER.
    private func endSession() {
        rings.stopAll()
        memory.clear()
        awaitingVringBase = []
        outstanding = [:]
        features = 0
        protocolFeatures = 0
        emitControl(.control(.resetOwner, t: now))
    }

    private func finish() {
        for (kind, n) in repeats.sorted(by: { $0.key < $1.key }) where n > Recorder.repeatLimit {
            log("record: \(n) \(kind) message(s) in all")
        }
        flushHeld(poll: false)
        writeCaptureEnd()
        sink.close()
        result.events = eventCount
        result.seconds = Double(now) / 1e9
        if let f = sink.failure { result.traceFailure = f }
        if let ip = interposer {
            for vq in ip.problems.keys.sorted() {
                for p in ip.problems[vq]! {
                    result.ringProblems.append("vq \(vq): ring_gap reason=\(p.reason.rawValue) (\(p.reason)) \(p.count)×, last: \(p.detail)")
                }
            }
        }
        for r in rings.followers {
            for p in r.problems {
                result.ringProblems.append("vq \(r.vq): ring_gap reason=\(p.reason.rawValue) (\(p.reason)) \(p.count)×, last: \(p.detail)")
            }
        }
    }

    private func session() {
        var nextProgress = now + UInt64(options.progressInterval * 1e9)
        let interval = max(0, options.pollIntervalMicros) * 1000
        // When the sockets and relays were last looked at (0: never).
        var lastLook: UInt64 = 0
        while stopReason == nil {
            if stopRequested { stopReason = .signal; break }
            let t0 = cs_now_ns()
            if t0 >= deadline { stopReason = .duration; break }
            if sink.stopRequested { stopReason = .sinkStopped; break }
            if let f = sink.failure { result.traceFailure = f; stopReason = .failed(f); break }
            // A pass that found something new is followed at once: the wait is for quiet rings. A
            // sleep of 20 µs costs a context switch and often lasts several times that, which a
            // ring turning at millions of buffers a second does not leave (256 entries are 128 µs
            // at 2 M/s). Such a pass, and with --busy-poll every pass, looks at the sockets and
            // relays only once a poll interval: a ppoll that finds nothing cost more than the
            // ring's news it came between.
            let spinning = busy || options.busyPoll
            if !spinning || lastLook == 0 || t0 &- lastLook >= UInt64(interval) {
                lastLook = t0
                let anyPolled = rings.anyPolled || (interposer?.relayedCount ?? 0) > 0
                let ready = wait(timeout: !anyPolled ? 50_000_000 : spinning ? 0 : interval)
                if ready.frontend { relay(fromFrontend: true) }
                if stopReason != nil { break }
                if ready.backend { relay(fromFrontend: false) }
                if stopReason != nil { break }
                serviceRelays(readyRelays)
            }
            pollRings()
            let t = now
            if t &- lastFlush >= 500_000_000 { sink.flush(); lastFlush = t }
            if options.progressInterval > 0 && t >= nextProgress {
                nextProgress = t + UInt64(options.progressInterval * 1e9)
                progress(t)
            }
        }
        // What the rings hold now still belongs to the capture (unless a peer is gone and its
        // memory may be reused).
        switch stopReason {
        case .duration, .signal, .maxEvents, .sinkStopped: pollRings()
        default: break
        }
        flushHeld(poll: false)
        sink.flush()
        switch stopReason ?? .frontendClosed {
        case .frontendClosed: log("record: the front-end closed the connection; \(options.reconnect ? "session" : "capture") ends")
        case .backendClosed: log("record: the back-end closed the connection; \(options.reconnect ? "session" : "capture") ends")
        case .duration: log("record: --duration reached")
        case .maxEvents: log("record: --max-events reached")
        case .signal: log("record: interrupted; capture ends")
        case .sinkStopped: log("record: stopped at the first finding")
        case .failed(let why): log("record: \(why); \(options.reconnect ? "session" : "capture") ends")
        case .setupFailed(let why): log("record: \(why)")
        }
    }

    /// Waits for a message from either peer or a notification to relay, at most `timeout` ns.
    /// Which relays have something to pass on is left in `readyRelays`.
    private func wait(timeout: Int) -> (frontend: Bool, backend: Bool) {
        readyRelays.removeAll(keepingCapacity: true)
        guard let f = frontend, let b = backend else { return (false, false) }
        waitFds.removeAll(keepingCapacity: true)
        waitFds.append(f.fd)
        waitFds.append(b.fd)
        for r in relays { waitFds.append(r.readFd) }
        if let ip = interposer { waitFds.append(contentsOf: ip.waitFds) }
        waitReady.removeAll(keepingCapacity: true)
        waitReady.append(contentsOf: repeatElement(0, count: waitFds.count))
        let t = cs_now_ns()
        let left = deadline > t ? Int(min(UInt64(Int.max), deadline - t)) : 0
        let n = cs_wait_many(waitFds, Int32(waitFds.count), min(timeout, left), &waitReady)
        if n < 0 { stopReason = .failed("poll failed: \(String(cString: strerror(errno)))") }
        // Relays with notifications still pending are retried at every look.
        for (k, r) in relays.enumerated() { readyRelays.append(waitReady[k + 2] != 0 || r.pending > 0) }
        return (waitReady[0] != 0, waitReady[1] != 0)
    }

    /// Logs `line` unless `kind` was already logged `repeatLimit` times.
    func note(_ kind: String, _ line: @autoclosure () -> String) {
        let n = repeats[kind, default: 0]
        if n < Recorder.repeatLimit { log(line()) }
        if n == Recorder.repeatLimit { log("record: (further \(kind) messages are counted, not shown)") }
        repeats[kind] = n &+ 1
    }

    private func progress(_ t: UInt64) {
        let followed = rings.followers.lazy.filter(\.isPolled).count + (interposer?.relayedCount ?? 0)
        let used = rings.followers.reduce(UInt64(0)) { $0 + $1.buffersUsed } + (interposer?.buffersUsed ?? 0)
        log("record: \(String(format1: Double(t) / 1e9)) s, \(eventCount) events, \(followed) ring(s) followed, \(used) buffers used")
    }

    // MARK: rings

    func pollRings() {
        let before = eventCount
        defer { busy = eventCount != before }
        if let ip = interposer {
            for vq in ip.relays.keys.sorted() { relayRing(vq) }
            return
        }
        for i in rings.indices where rings[at: i].isPolled { pollRing(at: i) }
    }

    /// The one way a ring is read: rings that are stopped, not followed (packed) or unmapped are
    /// never polled, whatever path asks (a kick, a held disable, GET_VRING_BASE, the end).
    func pollRing(_ vq: UInt16) {
        if interposer != nil { return relayRing(vq) }
        guard let i = rings.index(of: vq) else { return }
        pollRing(at: i)
    }

    private func pollRing(at i: Int) {
        guard rings[at: i].isPolled else { return }
        let ctx = PollContext(t: now, writeAhead: options.writeAhead, driverWriteAhead: options.driverWriteAhead ?? options.writeAhead,
                              stop: pollStop)
        let gaps = rings[at: i].gapCount
        scratch.removeAll(keepingCapacity: true)
        rings[at: i].poll(memory: memory, ctx, out: &scratch)
        write(scratch)
        // (Every gap is logged at once, here or where the ring started or was remapped.)
        if rings[at: i].gapCount != gaps { logNewProblem(rings[at: i].vq) }
    }

    /// Says why a ring's observations broke, for gaps written since the last call (the first few
    /// per ring in full, the rest counted).
    func logNewProblem(_ vq: UInt16) {
        guard rings.contains(vq) else { return }
        let count = rings[vq].gapCount
        guard count > gapsLogged[vq, default: 0], let g = rings[vq].lastGap else { return }
        gapsLogged[vq] = count
        note("ring_gap vq \(vq)", "record: vq \(vq): \(g.detail) (ring_gap reason=\(g.reason.rawValue))")
    }

    // MARK: output

    /// Writes control events in message order; a held disable of the same vring (or any, before a
    /// device-wide event) goes first, so the trace keeps the order the back-end processed them.
    func emitControl(_ e: TraceEvent) {
        if e.vq == TraceEvent.none { flushHeld(poll: true) } else { flushHeld(vq: e.vq) }
        write([e])
    }

    func flushHeld(poll: Bool) {
        guard !held.isEmpty else { return }
        let events = held
        held = []
        for var e in events {
            if poll { pollRing(e.vq) }
            e.timestamp = now
            write([e])
        }
    }

    func flushHeld(vq: UInt16) {
        guard held.contains(where: { $0.vq == vq }) else { return }
        let mine = held.filter { $0.vq == vq }
        held.removeAll { $0.vq == vq }
        pollRing(vq)
        for var e in mine {
            e.timestamp = now
            write([e])
        }
    }

    /// Writes a group of events whole (a snapshot is never cut by --max-events).
    func write(_ events: [TraceEvent]) {
        guard !events.isEmpty else { return }
        // Once one group did not fit, none after it is written: a later, smaller snapshot of the
        // same ring would describe positions relative to the one left out.
        if maxEventsReached { return }
        // --max-events counts the closing `capture_end` too.
        if let max = options.maxEvents, eventCount + UInt64(events.count) + 1 > max {
            maxEventsReached = true
            if stopReason == nil { stopReason = .maxEvents }
            return
        }
        sink.write(contentsOf: events)
        eventCount += UInt64(events.count)
    }
}

extension Recorder {
    /// The trace's last event says why the capture ended: its end is not a quiescent point of the
    /// session, so the checker does not hold the peers to notifications still owed there.
    func writeCaptureEnd() {
        let reason: CaptureEndReason
        switch result.end {
        case .frontendClosed: reason = .frontendClosed
        case .backendClosed: reason = .backendClosed
        case .duration: reason = .duration
        case .maxEvents: reason = .maxEvents
        case .signal: reason = .signal
        case .sinkStopped: reason = .firstFinding
        case .failed: reason = .failure
        case .setupFailed: return
        }
        sink.write(TraceEvent(.captureEnd, vq: TraceEvent.none, timestamp: now, p0: UInt64(reason.rawValue)))
        eventCount += 1
    }
}

extension String {
    init(format1 v: Double) {
        let tenths = Int((v * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}
