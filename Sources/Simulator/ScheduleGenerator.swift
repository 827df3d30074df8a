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
        if config.packed { f.bits |= FeatureBit.ringPacked.mask }
        if config.inOrder { f.bits |= FeatureBit.inOrder.mask }
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
            put(.control(.setVringBase, vq: UInt16(q), value: UInt64(c.packed ? packedBase.packedRaw : c.startIndex)))
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
                                   free: c.packed ? [] : (0..<UInt16(c.queueSize)).reversed().map { $0 },
                                   avail: c.startIndex, next: c.startIndex, used: c.startIndex,
                                   signalled: c.startIndex, usedEvent: 0)) // ring memory starts zeroed: used_event reads 0 until written
            if c.packed {
                let p0 = PackedRing.position(packedBase, size: c.queueSize)
                packedQueues.append(PackedSim(vq: q, size: c.queueSize, isRX: isRX, active: active, a: p0, u: p0, next: p0,
                                              freeIds: (0..<UInt16(truncatingIfNeeded: min(Int(c.queueSize), 65535))).reversed().map { $0 }))
            }
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
        if config.packed {
            if rng.below(5) < 2 { packedDriverBatch(q) } else { packedDevicePass(q) }
            return
        }
        if rng.below(5) < 2 { driverBatch(q) } else { devicePass(q) }
    }

    private mutating func drain() {
        if config.packed {
            for q in packedQueues.indices where packedQueues[q].active {
                var guardLoops = 0
                while packedQueues[q].a > packedQueues[q].u && guardLoops < 1_000_000 {
                    packedDevicePass(q, completeAll: true)
                    guardLoops += 1
                }
            }
            return
        }
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

    // MARK: packed rings

    /// The ring base of every packed ring: the start index modulo the size, wrap counter 1 when
    /// the start index is even (so both counters are exercised from the first lap).
    private var packedBase: RingBase {
        RingBase(index: UInt16(UInt32(config.startIndex) % max(1, config.queueSize)), wrap: config.startIndex & 1 == 0)
    }

    struct PackedSim {
        struct Buf { var id: UInt16; var start: UInt64; var count: Int; var writable: UInt32 }
        let vq: Int
        let size: UInt32
        let isRX: Bool
        let active: Bool
        /// The driver's position, the device's used position, and its next position to take.
        var a: UInt64, u: UInt64, next: UInt64
        var freeIds: [UInt16]
        /// Made available, in ring order, not yet taken by the device.
        var exposed: [Buf] = []
        var exposedStart = 0
        /// Taken, not yet used, in ring order.
        var taken: [Buf] = []
        var driverEvent = PackedRing.EventSuppression.initial
        var deviceEvent = PackedRing.EventSuppression.initial
        func slot(_ p: UInt64) -> UInt16 { PackedRing.slot(p, size: size) }
        func wrap(_ p: UInt64) -> Bool { PackedRing.wrap(p, size: size) }
        var free: UInt64 { u + UInt64(size) - a }
        var pending: Int { exposed.count - exposedStart }
    }
    private var packedQueues: [PackedSim] = []

    /// The driver makes 1-4 buffers available: each a list of 1-3 descriptors (or, with
    /// INDIRECT_DESC, one descriptor pointing to a table), the list's first descriptor's flags last.
    private mutating func packedDriverBatch(_ q: Int) {
        var s = packedQueues[q]
        let vq = UInt16(s.vq)
        let want = 1 + rng.below(4)
        var posted = 0
        let before = s.a
        while posted < want, s.free > 0, let id = s.freeIds.popLast() {
            let useIndirect = config.indirect && rng.oneIn(3)
            let count = useIndirect ? 1 : 1 + rng.below(Int(min(3, s.free)))
            let start = s.a
            var writable: UInt32 = 0
            var flags: [PackedRing.Flags] = []
            for k in 0..<count {
                let p = start + UInt64(k)
                let len = UInt32(64 + rng.below(1500))
                var f = PackedRing.Flags.available(wrap: s.wrap(p))
                if k < count - 1 { f.insert(.next) }
                if useIndirect {
                    let entries = 1 + rng.below(3)
                    for e in 0..<entries {
                        let el = UInt32(64 + rng.below(1500))
                        if s.isRX { writable += el }
                        put(.packedIndirectDesc(vq: vq, parent: s.slot(p), index: UInt16(e), addr: 0x8000_0000 + UInt64(e) * 0x1000, len: el,
                                                flags: s.isRX ? .write : [], t: tick()))
                    }
                    f.insert(.indirect)
                    put(.packedDesc(vq: vq, slot: s.slot(p), addr: 0x4000_0000 + UInt64(s.slot(p)) * 0x100, len: UInt32(16 * entries), id: id, t: tick()))
                } else {
                    if s.isRX { f.insert(.write); writable += len }
                    put(.packedDesc(vq: vq, slot: s.slot(p), addr: 0x1000_0000 + UInt64(s.slot(p)) * 0x1000, len: len, id: id, t: tick()))
                }
                flags.append(f)
            }
            // The rest of the list first, its first descriptor last.
            for k in Array(1..<count) + [0] { put(.packedFlags(vq: vq, slot: s.slot(start + UInt64(k)), flags: flags[k], t: tick())) }
            s.a += UInt64(count)
            s.exposed.append(PackedSim.Buf(id: id, start: start, count: count, writable: writable))
            posted += 1
        }
        // The driver's notification check over what it just made available (ENABLE, or DESC naming
        // a position in it), and now and then a spurious kick.
        if posted > 0 && (PackedRing.notificationRequired(s.deviceEvent, eventIdx: config.eventIdx, old: before, new: s.a, size: s.size) || rng.oneIn(4)) {
            put(.simple(.kick, vq: vq, t: tick()))
        }
        // The driver also changes what it wants to hear about.
        if rng.oneIn(4) {
            let inFlight = s.a - s.u
            let e: PackedRing.EventSuppression
            switch rng.below(config.eventIdx ? 3 : 2) {
            case 0: e = PackedRing.EventSuppression(flags: PackedRing.EventFlags.enable.rawValue)
            case 1: e = PackedRing.EventSuppression(flags: PackedRing.EventFlags.disable.rawValue)
            default:
                let p = s.u + UInt64(rng.below(Int(inFlight) + 1))
                e = PackedRing.EventSuppression(offWrap: s.slot(p) | (s.wrap(p) ? PackedRing.wrapBit : 0), flags: PackedRing.EventFlags.desc.rawValue)
            }
            s.driverEvent = e
            put(.eventSuppression(.driverEvent, vq: vq, e, t: tick()))
        }
        packedQueues[q] = s
    }

    /// One service pass: take some available lists in ring order, use some of what was taken
    /// (out of order, or with IN_ORDER oldest first in batches), writing each used descriptor's id
    /// and len and then its flags (sometimes the first one's last, as DPDK does), and notify when
    /// the driver asked for it.
    private mutating func packedDevicePass(_ q: Int, completeAll: Bool = false) {
        var s = packedQueues[q]
        let vq = UInt16(s.vq)
        let w = worker(s.vq)
        put(.simple(.serviceBegin, vq: vq, worker: w, t: tick()))
        let reads = completeAll ? s.pending : rng.below(s.pending + 1)
        for _ in 0..<reads {
            let b = s.exposed[s.exposedStart]
            s.exposedStart += 1
            for k in 0..<b.count { put(.packedRead(vq: vq, worker: w, slot: s.slot(b.start + UInt64(k)), t: tick())) }
            s.next = b.start + UInt64(b.count)
            s.taken.append(b)
        }
        let old = s.u
        var groups: [(id: UInt16, len: UInt32, count: Int, ids: [UInt16])] = []
        if config.inOrder {
            // Batches of the oldest taken buffers; one used descriptor each, with the last one's id.
            var left = completeAll ? s.taken.count : rng.below(s.taken.count + 1)
            while left > 0 {
                let k = 1 + rng.below(left)
                let batch = s.taken.prefix(k)
                let last = batch.last!
                let len = last.writable == 0 ? 0 : UInt32(rng.below(Int(last.writable) + 1))
                groups.append((last.id, len, batch.reduce(0) { $0 + $1.count }, batch.map(\.id)))
                s.taken.removeFirst(k)
                left -= k
            }
        } else {
            let n = completeAll ? s.taken.count : rng.below(s.taken.count + 1)
            for _ in 0..<n {
                let b = s.taken.remove(at: rng.below(s.taken.count))
                let len = b.writable == 0 ? 0 : UInt32(rng.below(Int(b.writable) + 1))
                groups.append((b.id, len, b.count, [b.id]))
            }
        }
        if !groups.isEmpty {
            // Used descriptors go where the previous one's list (batch) ends.
            var positions: [UInt64] = []
            var p = s.u
            for g in groups {
                positions.append(p)
                put(.packedUsed(vq: vq, worker: w, slot: s.slot(p), id: g.id, len: g.len, t: tick()))
                p += UInt64(g.count)
            }
            let firstLast = groups.count > 1 && rng.oneIn(2)
            let order = firstLast ? Array(1..<groups.count) + [0] : Array(0..<groups.count)
            for k in order {
                var f = PackedRing.Flags.usedMark(wrap: s.wrap(positions[k]))
                if groups[k].len > 0 { f.insert(.write) }
                put(.packedUsedFlags(vq: vq, worker: w, slot: s.slot(positions[k]), flags: f, t: tick()))
            }
            s.u = p
            for g in groups { s.freeIds += g.ids }
        }
        // The same obligation the spec states: ENABLE, or DESC naming a position just used.
        if (s.u != old && PackedRing.notificationRequired(s.driverEvent, eventIdx: config.eventIdx, old: old, new: s.u, size: s.size)) || rng.oneIn(20) {
            put(.simple(.interrupt, vq: vq, worker: w, t: tick()))
        }
        put(.simple(.serviceEnd, vq: vq, worker: w, t: tick()))
        // The device changes what it wants to hear about (DPDK polls with DISABLE; a sleeping device
        // asks with ENABLE or, with EVENT_IDX, DESC naming a position the driver has yet to reach).
        if rng.oneIn(6) {
            let e: PackedRing.EventSuppression
            switch rng.below(config.eventIdx ? 3 : 2) {
            case 0: e = PackedRing.EventSuppression(flags: PackedRing.EventFlags.enable.rawValue)
            case 1: e = PackedRing.EventSuppression(flags: PackedRing.EventFlags.disable.rawValue)
            default:
                let p = s.a + UInt64(rng.below(Int(s.size)))
                e = PackedRing.EventSuppression(offWrap: s.slot(p) | (s.wrap(p) ? PackedRing.wrapBit : 0), flags: PackedRing.EventFlags.desc.rawValue)
            }
            s.deviceEvent = e
            put(.eventSuppression(.deviceEvent, vq: vq, e, t: tick()))
        }
        if s.exposedStart > 1024 { s.exposed.removeFirst(s.exposedStart); s.exposedStart = 0 }
        packedQueues[q] = s
    }

    /// Injects a packed fault if the moment suits it.
    private mutating func injectPacked(_ f: Fault) -> Bool {
        let active = packedQueues.indices.filter { packedQueues[$0].active }
        let q = active[rng.below(active.count)]
        let s = packedQueues[q]
        let vq = UInt16(s.vq)
        let w = worker(s.vq)
        let quiet = s.pending == 0 && s.taken.isEmpty
        switch f {
        case .packedSize:
            put(.control(.setVringNum, vq: vq, value: 40000, t: tick()))
        case .packedDriverOwnership:
            // With something in flight, a flags store on the descriptor at the device's position.
            guard s.a > s.u else { return false }
            put(.packedFlags(vq: vq, slot: s.slot(s.u), flags: .available(wrap: s.wrap(s.u)), t: tick()))
        case .packedFlagsLast:
            guard s.a > s.u else { return false }
            put(.packedDesc(vq: vq, slot: s.slot(s.u), addr: 0x3000_0000, len: 64, id: 0, t: tick()))
        case .packedChainHeadLast:
            guard s.free >= 2, let id = s.freeIds.last else { return false }
            put(.packedDesc(vq: vq, slot: s.slot(s.a), addr: 0x5000, len: 64, id: id, t: tick()))
            put(.packedDesc(vq: vq, slot: s.slot(s.a + 1), addr: 0x6000, len: 64, id: id, t: tick()))
            put(.packedFlags(vq: vq, slot: s.slot(s.a), flags: PackedRing.Flags.available(wrap: s.wrap(s.a)).union(.next), t: tick()))
        case .packedWrapCounter:
            guard s.free >= 1, let id = s.freeIds.last else { return false }
            put(.packedDesc(vq: vq, slot: s.slot(s.a), addr: 0x5000, len: 64, id: id, t: tick()))
            put(.packedFlags(vq: vq, slot: s.slot(s.a), flags: .available(wrap: !s.wrap(s.a)), t: tick()))
        case .packedBufferId:
            guard s.free >= 1, let b = s.exposed[s.exposedStart...].first ?? s.taken.first else { return false }
            put(.packedDesc(vq: vq, slot: s.slot(s.a), addr: 0x5000, len: 64, id: b.id, t: tick()))
            put(.packedFlags(vq: vq, slot: s.slot(s.a), flags: PackedRing.Flags.available(wrap: s.wrap(s.a)).union(s.isRX ? .write : []), t: tick()))
        case .packedDeviceOwnership:
            // Nothing in flight: the device writes a used descriptor into a slot the driver owns.
            guard s.a == s.u else { return false }
            put(.simple(.serviceBegin, vq: vq, worker: w, t: tick()))
            put(.packedUsed(vq: vq, worker: w, slot: s.slot(s.u), id: 0, len: 0, t: tick()))
        case .packedDeviceOrder:
            // Two lists available and not taken: the device takes the second first.
            guard s.pending >= 2 else { return false }
            let second = s.exposed[s.exposedStart + 1]
            put(.simple(.serviceBegin, vq: vq, worker: w, t: tick()))
            put(.packedRead(vq: vq, worker: w, slot: s.slot(second.start), t: tick()))
        case .packedUsedId:
            // Everything taken: a used descriptor naming an id no buffer in flight has.
            guard s.pending == 0, !s.taken.isEmpty, let foreign = s.freeIds.last else { return false }
            put(.simple(.serviceBegin, vq: vq, worker: w, t: tick()))
            put(.packedUsed(vq: vq, worker: w, slot: s.slot(s.u), id: foreign, len: 0, t: tick()))
            put(.packedUsedFlags(vq: vq, worker: w, slot: s.slot(s.u), flags: .usedMark(wrap: s.wrap(s.u)), t: tick()))
        case .packedIndirectFlags:
            guard s.free >= 1, let id = s.freeIds.last else { return false }
            put(.packedIndirectDesc(vq: vq, parent: s.slot(s.a), index: 0, addr: 0x7000, len: 64, flags: [.next, .write], t: tick()))
            put(.packedIndirectDesc(vq: vq, parent: s.slot(s.a), index: 1, addr: 0x7100, len: 64, flags: .write, t: tick()))
            put(.packedDesc(vq: vq, slot: s.slot(s.a), addr: 0x5000, len: 32, id: id, t: tick()))
            put(.packedFlags(vq: vq, slot: s.slot(s.a), flags: PackedRing.Flags.available(wrap: s.wrap(s.a)).union(.indirect), t: tick()))
        case .packedEventFlags:
            put(.eventSuppression(.driverEvent, vq: vq, PackedRing.EventSuppression(offWrap: 0, flags: PackedRing.EventFlags.reserved.rawValue), t: tick()))
        case .packedInterruptMissed:
            // Ask to be notified, then the device uses the oldest buffer taken and ends its pass silently.
            guard quiet == false, s.pending == 0, !config.inOrder || !s.taken.isEmpty, let b = s.taken.first else { return false }
            put(.eventSuppression(.driverEvent, vq: vq, PackedRing.EventSuppression(flags: PackedRing.EventFlags.enable.rawValue), t: tick()))
            put(.simple(.serviceBegin, vq: vq, worker: w, t: tick()))
            put(.packedUsed(vq: vq, worker: w, slot: s.slot(s.u), id: b.id, len: 0, t: tick()))
            put(.packedUsedFlags(vq: vq, worker: w, slot: s.slot(s.u), flags: .usedMark(wrap: s.wrap(s.u)), t: tick()))
            put(.simple(.serviceEnd, vq: vq, worker: w, t: tick()))
        case .packedKickMissed:
            // The device asks to hear about everything (ENABLE); the driver kicks once (so the trace
            // shows its kicks), makes one more buffer available and never kicks for it.
            guard s.free >= 1, let id = s.freeIds.last else { return false }
            put(.eventSuppression(.deviceEvent, vq: vq, PackedRing.EventSuppression(flags: PackedRing.EventFlags.enable.rawValue), t: tick()))
            put(.simple(.kick, vq: vq, t: tick()))
            put(.packedDesc(vq: vq, slot: s.slot(s.a), addr: 0x5000, len: 64, id: id, t: tick()))
            put(.packedFlags(vq: vq, slot: s.slot(s.a), flags: PackedRing.Flags.available(wrap: s.wrap(s.a)).union(s.isRX ? .write : []), t: tick()))
            faultInjected = true
            return true
        default:
            return false
        }
        // What a fault made available is notified (a spurious kick at worst), so the trace breaks only its rule.
        for p in packedQueues where p.active { put(.simple(.kick, vq: UInt16(p.vq), t: tick())) }
        faultInjected = true
        return true
    }

    // MARK: faults

    /// Injects `f` if the moment suits it; returns whether it did (the trace then ends).
    private mutating func inject(_ f: Fault) -> Bool {
        if config.packed { return injectPacked(f) }
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
        default:
            // A packed fault on a split configuration: `adapt` makes the configuration packed.
            return false
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
