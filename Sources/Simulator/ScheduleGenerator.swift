import VirtioProtocol
import VirtqueueModel
import VhostModel
import TraceFormat

/// Plays a conformant driver and device against each other and emits the trace v1 events of what
/// they do: control-plane setup, then random interleavings of driver batches and device service
/// passes on every active queue, ending with all buffers returned. Deterministic for a seed.
/// With `config.fault`, one bug of that class is injected at a quiet moment and the trace ends.
///
/// The generator keeps its own bookkeeping (free lists, FIFO of exposed heads, need_event state):
/// it never asks the checker's model what is allowed, so the two can disagree and a test can see it.
public struct ScheduleGenerator {
    public let config: ScheduleConfig
    private var rng: SplitMix64
    private var time: UInt64 = 0
    private var queues: [SimQueue] = []
    private var emit: (TraceEvent) -> Void
    public private(set) var emitted: UInt64 = 0
    /// Whether the injected fault has been emitted (the trace ends right after it).
    public private(set) var faultInjected = false
    private var workers = 1

    struct SimQueue {
        let vq: Int
        let size: UInt32
        let isRX: Bool
        let active: Bool
        var free: [UInt16]
        var avail: UInt16
        var next: UInt16
        var used: UInt16
        /// Heads exposed and not yet read, in avail order.
        var exposed: [UInt16] = []
        var exposedStart = 0
        /// Heads read and not yet completed.
        var read: [UInt16] = []
        /// Descriptors and writable bytes of each head in flight.
        var chains: [UInt16: (descs: [UInt16], writable: UInt32)] = [:]
        var signalled: UInt16
        var usedEvent: UInt16
        var availFlags: UInt16 = 0
        var interruptOwed = false

        var inFlight: UInt32 { UInt32(avail &- used) }
        var pending: Int { exposed.count - exposedStart }
    }

    public init(config: ScheduleConfig, emit: @escaping (TraceEvent) -> Void) {
        self.config = config
        self.rng = SplitMix64(seed: config.seed)
        self.emit = emit
    }

    /// The header of the trace this generator writes (the control plane is in the events).
    public var header: TraceHeader {
        TraceHeader(profile: config.profile, layout: config.layout, flags: [], features: 0, workers: 0,
                    queueSizes: Array(repeating: 0, count: config.queueCount))
    }

    /// Emits the whole trace: at least `events` events (then drains), or fewer when a fault ends it.
    public mutating func run(events target: UInt64) {
        setup()
        let faultAt = target / 2
        while emitted < target {
            if let f = config.fault, !faultInjected, emitted >= faultAt, inject(f) { return }
            step()
        }
        if let f = config.fault, !faultInjected {
            // A short trace reached its end before a quiet moment for the fault: force one.
            for _ in 0..<10_000 where !faultInjected { if inject(f) { return }; step() }
        }
        drain()
    }

    // MARK: setup

    private var features: UInt64 {
        var f = Features([.version1])
        if config.indirect { f.bits |= FeatureBit.indirectDesc.mask }
        if config.eventIdx { f.bits |= FeatureBit.eventIdx.mask }
        if config.layout == .mq { f.bits |= FeatureBit.netMQ.mask | FeatureBit.netCtrlVQ.mask }
        if config.profile == .vhostUser { f.bits |= FeatureBit.protocolFeatures.mask }
        return f.bits
    }

    private mutating func setup() {
        let c = config
        let n = c.queueCount
        let dataQueues = c.layout == .mq ? n - 1 : n
        if c.profile == .vhostUser {
            put(.control(.setProtocolFeatures, value: ProtocolFeatureBit.mq.mask))
            put(.control(.getQueueNum, value: UInt64(n)))
        }
        switch c.profile {
        case .seedRFC1, .seedRFC2:
            put(.control(.setOwner, value: UInt64(c.pairs)))
            workers = OwnerSemantics.workers(requested: c.pairs, profile: c.profile)
        case .linuxUpstream:
            for p in 0..<c.pairs { put(.control(.setOwner, vq: UInt16(2 * p))) }
        case .linuxWorkers, .vhostUser:
            put(.control(.setOwner))
        }
        put(.control(.setFeatures, value: features))
        put(.control(.setMemTable, value: 1))
        if c.profile == .linuxWorkers && c.pairs > 1 {
            put(.control(.newWorker, value: 1))
        }
        for q in 0..<dataQueues {
            let base = 0x10_0000 * UInt64(q + 1)
            put(.control(.setVringNum, vq: UInt16(q), value: UInt64(c.queueSize)))
            put(TraceEvent(.setVringAddr, vq: UInt16(q), timestamp: tick(), p0: base, p1: base + 0x10_0000 / 4, p2: base + 0x10_0000 / 2))
            put(.control(.setVringBase, vq: UInt16(q), value: UInt64(c.startIndex)))
            put(.control(.setVringKick, vq: UInt16(q), value: UInt64(20 + q)))
            put(.control(.setVringCall, vq: UInt16(q), value: UInt64(60 + q)))
            if c.profile == .vhostUser { put(.control(.setVringEnable, vq: UInt16(q), value: 1)) }
            if c.profile == .linuxWorkers && c.pairs > 1 && (q / 2) % 2 == 1 {
                put(.control(.attachVringWorker, vq: UInt16(q), value: 1))
            }
            let role = c.layout.role(of: q, queueCount: n)
            var active = true
            if c.layout == .mq && c.profile != .vhostUser {
                if case .rx(let k) = role, k >= c.activePairs { active = false }
                if case .tx(let k) = role, k >= c.activePairs { active = false }
            }
            let isRX: Bool = { if case .rx = role { return true }; return false }()
            queues.append(SimQueue(vq: q, size: c.queueSize, isRX: isRX, active: active,
                                   free: (0..<UInt16(c.queueSize)).reversed().map { $0 },
                                   avail: c.startIndex, next: c.startIndex, used: c.startIndex,
                                   signalled: c.startIndex, usedEvent: 0)) // ring memory starts zeroed: used_event reads 0 until written
        }
        if c.layout == .mq && c.profile != .vhostUser && c.activePairs > 1 {
            put(TraceEvent(.mqPairsSet, timestamp: tick(), p0: UInt64(c.activePairs)))
            put(TraceEvent(.mqPairsAck, timestamp: tick(), p0: UInt64(NetCtrlMQ.ackOK)))
        }
    }

    // MARK: the random schedule

    private mutating func step() {
        let active = queues.indices.filter { queues[$0].active }
        let q = active[rng.below(active.count)]
        if rng.below(5) < 2 { driverBatch(q) } else { devicePass(q) }
    }

    private mutating func drain() {
        for q in queues.indices where queues[q].active {
            var guardLoops = 0
            while queues[q].inFlight > 0 && guardLoops < 1_000_000 {
                devicePass(q, completeAll: true)
                guardLoops += 1
            }
        }
        kickAll()
    }

    /// The worker the profile assigns to `vq` (vhost-user: the back-end's own thread numbering).
    private func worker(_ vq: Int) -> UInt16 {
        switch config.profile {
        case .seedRFC1, .seedRFC2: return UInt16(WorkerMapping.roundRobin(vq: vq, workers: workers))
        case .linuxUpstream: return UInt16(WorkerMapping.perPair(vq: vq))
        case .linuxWorkers: return config.pairs > 1 && (vq / 2) % 2 == 1 ? 1 : 0
        case .vhostUser: return UInt16(100 + vq % 3)
        }
    }

    private mutating func driverBatch(_ q: Int) {
        var s = queues[q]
        let vq = UInt16(s.vq)
        let want = 1 + rng.below(4)
        var posted = 0
        while posted < want {
            guard s.inFlight + UInt32(posted) < s.size, !s.free.isEmpty else { break }
            let useIndirect = config.indirect && rng.oneIn(3)
            let length = useIndirect ? 1 : 1 + rng.below(min(3, s.free.count))
            var descs: [UInt16] = []
            for _ in 0..<length { descs.append(s.free.removeLast()) }
            var writable: UInt32 = 0
            if useIndirect {
                // No chain longer than the queue size, indirect entries included (VQ-CHAIN-LENGTH).
                let entries = 1 + rng.below(min(3, Int(s.size)))
                for e in 0..<entries {
                    let len = UInt32(64 + rng.below(1500))
                    if s.isRX { writable += len }
                    var f: SplitRing.DescFlags = s.isRX ? [.write] : []
                    if e < entries - 1 { f.insert(.next) }
                    put(.indirectDesc(vq: vq, parent: descs[0], index: UInt16(e), addr: 0x8000_0000 + UInt64(e) * 0x1000, len: len, flags: f, next: UInt16(e + 1), t: tick()))
                }
                put(.desc(vq: vq, index: descs[0], addr: 0x4000_0000 + UInt64(descs[0]) * 0x100, len: UInt32(16 * entries), flags: .indirect, t: tick()))
            } else {
                for (i, d) in descs.enumerated() {
                    let len = UInt32(64 + rng.below(1500))
                    if s.isRX { writable += len }
                    var f: SplitRing.DescFlags = s.isRX ? [.write] : []
                    if i < descs.count - 1 { f.insert(.next) }
                    put(.desc(vq: vq, index: d, addr: 0x1000_0000 + UInt64(d) * 0x1000, len: len, flags: f,
                              next: i < descs.count - 1 ? descs[i + 1] : 0, t: tick()))
                }
            }
            put(.availEntry(vq: vq, pos: s.avail &+ UInt16(posted), head: descs[0], t: tick()))
            s.chains[descs[0]] = (descs, writable)
            s.exposed.append(descs[0])
            posted += 1
        }
        if posted > 0 {
            s.avail = s.avail &+ UInt16(posted)
            put(.availIdx(vq: vq, idx: s.avail, t: tick()))
            if rng.oneIn(2) { put(.simple(.kick, vq: vq, t: tick())) }
        }
        // The driver also changes what it wants to hear about.
        if config.eventIdx, rng.oneIn(3) {
            s.usedEvent = s.used &+ UInt16(rng.below(Int(s.inFlight) + 1))
            put(.simple(.usedEvent, vq: vq, value: UInt64(s.usedEvent), t: tick()))
        } else if !config.eventIdx, rng.oneIn(6) {
            s.availFlags = s.availFlags ^ SplitRing.availFlagNoInterrupt
            put(.simple(.availFlags, vq: vq, value: UInt64(s.availFlags), t: tick()))
        }
        queues[q] = s
        compact(q)
    }

    private mutating func devicePass(_ q: Int, completeAll: Bool = false) {
        var s = queues[q]
        let vq = UInt16(s.vq)
        let w = worker(s.vq)
        put(.simple(.serviceBegin, vq: vq, worker: w, t: tick()))
        let reads = completeAll ? s.pending : rng.below(s.pending + 1)
        for _ in 0..<reads {
            let head = s.exposed[s.exposedStart]
            s.exposedStart += 1
            put(.availRead(vq: vq, worker: w, pos: s.next, head: head, t: tick()))
            s.next = s.next &+ 1
            s.read.append(head)
        }
        let completions = completeAll ? s.read.count : rng.below(s.read.count + 1)
        if completions > 0 {
            var done: [UInt16] = []
            for i in 0..<completions {
                let head = s.read.remove(at: rng.below(s.read.count))
                let writable = s.chains[head]!.writable
                // A received packet starts with the virtio-net header (NET-RX-USED-LEN); RX chains here
                // are at least 64 writable bytes.
                let hdr = NetHeader.size(Features(features))
                let len = writable == 0 ? 0 : s.isRX ? hdr + UInt32(rng.below(Int(writable - hdr) + 1)) : UInt32(rng.below(Int(writable) + 1))
                put(.usedEntry(vq: vq, worker: w, pos: s.used &+ UInt16(i), id: UInt32(head), len: len, t: tick()))
                done.append(head)
            }
            let newUsed = s.used &+ UInt16(completions)
            put(.usedIdx(vq: vq, worker: w, idx: newUsed, t: tick()))
            // Same obligation the spec states: EVENT_IDX window since the last interrupt, or flags.
            let required = config.eventIdx ? SplitRing.needEvent(event: s.usedEvent, new: newUsed, old: s.signalled)
                : s.availFlags & SplitRing.availFlagNoInterrupt == 0
            if required { s.interruptOwed = true }
            s.used = newUsed
            for h in done { s.free += s.chains.removeValue(forKey: h)!.descs }
        }
        if s.interruptOwed || rng.oneIn(20) {
            put(.simple(.interrupt, vq: vq, worker: w, t: tick()))
            s.signalled = s.used
            s.interruptOwed = false
        }
        put(.simple(.serviceEnd, vq: vq, worker: w, t: tick()))
        queues[q] = s
        compact(q)
    }

    private mutating func compact(_ q: Int) {
        if queues[q].exposedStart > 1024 {
            queues[q].exposed.removeFirst(queues[q].exposedStart)
            queues[q].exposedStart = 0
        }
    }

    // MARK: faults

    /// Injects `f` if the moment suits it; returns whether it did (the trace then ends).
    private mutating func inject(_ f: Fault) -> Bool {
        let active = queues.indices.filter { queues[$0].active }
        let q = active[rng.below(active.count)]
        let s = queues[q]
        let vq = UInt16(s.vq)
        let w = worker(s.vq)
        switch f {
        case .inflight:
            // Quiet ring: write N fresh one-descriptor chains and publish N + 1 entries.
            guard s.inFlight == 0, s.pending == 0, s.read.isEmpty else { return false }
            for d in 0..<UInt16(truncatingIfNeeded: min(Int(s.size), 65535)) {
                put(.desc(vq: vq, index: d, addr: 0x2000_0000 + UInt64(d) * 0x100, len: 64, flags: s.isRX ? .write : [], t: tick()))
            }
            for i in 0...Int(s.size) { put(.availEntry(vq: vq, pos: s.avail &+ UInt16(truncatingIfNeeded: i), head: UInt16(i % Int(s.size)), t: tick())) }
            put(.availIdx(vq: vq, idx: s.avail &+ UInt16(truncatingIfNeeded: Int(s.size) + 1), t: tick()))
        case .availRead:
            guard s.pending == 0 else { return false }
            put(.simple(.serviceBegin, vq: vq, worker: w, t: tick()))
            put(.availRead(vq: vq, worker: w, pos: s.next, head: 0, t: tick()))
        case .usedId:
            guard let foreign = s.free.last else { return false }
            put(.simple(.serviceBegin, vq: vq, worker: w, t: tick()))
            put(.usedEntry(vq: vq, worker: w, pos: s.used, id: UInt32(foreign), len: 0, t: tick()))
        case .usedIdx:
            guard s.read.isEmpty else { return false }
            put(.simple(.serviceBegin, vq: vq, worker: w, t: tick()))
            put(.usedIdx(vq: vq, worker: w, idx: s.used &+ 1, t: tick()))
            put(.simple(.interrupt, vq: vq, worker: w, t: tick()))
        case .driverOwnership:
            guard let (head, chain) = s.chains.first else { return false }
            put(.desc(vq: vq, index: head, addr: 0x3000_0000, len: 64, flags: s.isRX ? .write : [], next: chain.descs.count > 1 ? chain.descs[1] : 0, t: tick()))
        case .descIndex, .chainLoop, .chainOrder, .indirectNext:
            guard s.free.count >= 2, s.inFlight + 1 < s.size else { return false }
            let a = s.free[s.free.count - 1], b = s.free[s.free.count - 2]
            switch f {
            case .descIndex: put(.desc(vq: vq, index: a, addr: 0x5000, len: 64, flags: .next, next: UInt16(truncatingIfNeeded: Int(s.size)), t: tick()))
            case .chainLoop: put(.desc(vq: vq, index: a, addr: 0x5000, len: 64, flags: .next, next: a, t: tick()))
            case .chainOrder:
                // On the control queue, whose chains are readable then writable: on RX or TX a
                // misordered chain also breaks the framing rules.
                let cq = UInt16(config.queueCount - 1)
                put(.control(.setVringNum, vq: cq, value: 8))
                put(TraceEvent(.setVringAddr, vq: cq, timestamp: tick(), p0: 0x7000_0000, p1: 0x7000_1000, p2: 0x7000_2000))
                put(.control(.setVringKick, vq: cq, value: 90))
                put(.desc(vq: cq, index: 0, addr: 0x5000, len: 64, flags: [.next, .write], next: 1, t: tick()))
                put(.desc(vq: cq, index: 1, addr: 0x6000, len: 64, flags: [], t: tick()))
                put(.availEntry(vq: cq, pos: 0, head: 0, t: tick()))
                put(.availIdx(vq: cq, idx: 1, t: tick()))
                kickAll()
                faultInjected = true
                return true
            default:
                put(.indirectDesc(vq: vq, parent: a, index: 0, addr: 0x7000, len: 64, flags: [], t: tick()))
                put(.desc(vq: vq, index: a, addr: 0x5000, len: 16, flags: [.indirect, .next], next: b, t: tick()))
            }
            put(.availEntry(vq: vq, pos: s.avail, head: a, t: tick()))
            put(.availIdx(vq: vq, idx: s.avail &+ 1, t: tick()))
        case .usedLen:
            guard let head = s.read.first else { return false }
            put(.simple(.serviceBegin, vq: vq, worker: w, t: tick()))
            put(.usedEntry(vq: vq, worker: w, pos: s.used, id: UInt32(head), len: s.chains[head]!.writable + 1, t: tick()))
            put(.usedIdx(vq: vq, worker: w, idx: s.used &+ 1, t: tick()))
            put(.simple(.interrupt, vq: vq, worker: w, t: tick()))
            put(.simple(.serviceEnd, vq: vq, worker: w, t: tick()))
        case .interruptMissed:
            guard let head = s.read.first else { return false }
            // Ask for the interrupt explicitly, then complete one buffer and end the pass silently.
            if config.eventIdx { put(.simple(.usedEvent, vq: vq, value: UInt64(s.used), t: tick())) }
            else { put(.simple(.availFlags, vq: vq, value: 0, t: tick())) }
            put(.simple(.serviceBegin, vq: vq, worker: w, t: tick()))
            put(.usedEntry(vq: vq, worker: w, pos: s.used, id: UInt32(head), len: s.isRX ? NetHeader.size(Features(features)) : 0, t: tick()))
            put(.usedIdx(vq: vq, worker: w, idx: s.used &+ 1, t: tick()))
            put(.simple(.serviceEnd, vq: vq, worker: w, t: tick()))
        case .singleConsumer:
            put(.simple(.serviceBegin, vq: vq, worker: w, t: tick()))
            put(.simple(.serviceBegin, vq: vq, worker: w &+ 1, t: tick()))
        case .mapping:
            let wrong: UInt16
            switch config.profile {
            case .linuxUpstream: wrong = UInt16((s.vq / 2 + 1) % config.pairs)
            default: wrong = UInt16((Int(w) + 1) % workers)
            }
            guard wrong != w else { return false }
            put(.simple(.serviceBegin, vq: vq, worker: wrong, t: tick()))
        case .ownerTwice:
            put(.control(.setOwner, vq: config.profile == .linuxUpstream ? 0 : TraceEvent.none, t: tick()))
        case .ringStopped:
            // vhost-user stops a ring with GET_VRING_BASE; kernel vhost by detaching the backend.
            if config.profile == .vhostUser { put(.control(.getVringBase, vq: vq, value: UInt64(s.next), t: tick())) }
            else { put(.control(.setBackend, vq: vq, value: UInt64.max, t: tick())) }
            put(.simple(.interrupt, vq: vq, worker: w, t: tick()))
        case .txqInactive:
            guard let idle = queues.first(where: { !$0.active && !$0.isRX }), let d = idle.free.last else { return false }
            let ivq = UInt16(idle.vq)
            put(.desc(vq: ivq, index: d, addr: 0x9000, len: 64, t: tick()))
            put(.availEntry(vq: ivq, pos: idle.avail, head: d, t: tick()))
            put(.availIdx(vq: ivq, idx: idle.avail &+ 1, t: tick()))
        case .size:
            put(.control(.setVringNum, vq: vq, value: 6, t: tick()))
        }
        kickAll()
        faultInjected = true
        return true
    }

    /// At the end of a trace the driver has notified everything it published (VQ-KICK-MISSED): a
    /// kick on every data queue, which is at worst spurious.
    private mutating func kickAll() {
        for s in queues { put(.simple(.kick, vq: UInt16(s.vq), t: tick())) }
    }

    // MARK: output

    private mutating func tick() -> UInt64 { time += 1 + UInt64(rng.below(50)); return time }

    private mutating func put(_ e: TraceEvent) {
        var e = e
        if e.timestamp == 0 { e.timestamp = tick() }
        emit(e)
        emitted += 1
    }
}
