import VirtioProtocol
import VirtqueueModel
import VhostModel
import TraceFormat

/// Builds an exact trace of one split ring (vq 1, the first TX queue of a linux-upstream device)
/// that walks the model from a base index to a counterexample's pre-state, so that the broken
/// step can be appended. Every chain is one 64-byte device-readable descriptor whose table index
/// is its ring slot (in-flight <= N keeps slots distinct).
struct RingStory {
    let n: Int
    let vq: UInt16 = 1
    var avail: UInt16, next: UInt16, used: UInt16
    var events: [TraceEvent] = []
    private var t: UInt64 = 0

    /// Starts at `base` (SET_VRING_BASE) one entry early and runs one full round, so the trace
    /// has device reads on this vq (which makes the checker judge reads) and ends at base.
    init(n: Int, base: UInt16) {
        self.n = n
        let start = base &- 1
        avail = start; next = start; used = start
        emit(.control(.setVringBase, vq: vq, value: UInt64(start)))
        publish(1)
        begin()
        read(1)
        complete(1)
        emit(.simple(.interrupt, vq: vq, worker: 0))
        end()
    }

    mutating func emit(_ e: TraceEvent) {
        t += 10
        var e = e
        e.timestamp = t
        events.append(e)
    }

    func slot(_ p: UInt16) -> UInt16 { UInt16(Int(p) % n) }

    /// Driver publishes `count` entries. With `onlyFree`, it writes descriptors and avail entries
    /// only for positions whose slot is free (fewer than N in flight), then still moves avail.idx
    /// by `count`: the over-publication shows in the index alone.
    mutating func publish(_ count: Int, onlyFree: Bool = false) {
        for i in 0..<count {
            let p = avail &+ UInt16(truncatingIfNeeded: i)
            if onlyFree && Int(p &- used) >= n { continue }
            emit(.desc(vq: vq, index: slot(p), addr: 0x10000 + UInt64(slot(p)) * 0x1000, len: 64))
            emit(.availEntry(vq: vq, pos: p, head: slot(p)))
        }
        avail = avail &+ UInt16(truncatingIfNeeded: count)
        emit(.availIdx(vq: vq, idx: avail))
        emit(.simple(.kick, vq: vq))
    }

    mutating func begin() { emit(.simple(.serviceBegin, vq: vq, worker: 0)) }
    mutating func end() { emit(.simple(.serviceEnd, vq: vq, worker: 0)) }

    mutating func read(_ count: Int) {
        for _ in 0..<count {
            emit(.availRead(vq: vq, worker: 0, pos: next, head: slot(next)))
            next = next &+ 1
        }
    }

    mutating func complete(_ count: Int) {
        for i in 0..<count {
            let p = used &+ UInt16(truncatingIfNeeded: i)
            emit(.usedEntry(vq: vq, worker: 0, pos: p, id: UInt32(slot(p)), len: 0))
        }
        used = used &+ UInt16(truncatingIfNeeded: count)
        emit(.usedIdx(vq: vq, worker: 0, idx: used))
    }

    /// Brings the ring to (avail, next, used) from `used`: publish, then read inside an open pass.
    static func at(n: Int, avail: Int, next: Int, used: Int, features: UInt64 = 0, before: [TraceEvent] = []) -> RingStory {
        var s = RingStory(n: n, base: UInt16(truncatingIfNeeded: used))
        for e in before { s.emit(e) }
        let inflight = Int(UInt16(truncatingIfNeeded: avail) &- UInt16(truncatingIfNeeded: used))
        let read = Int(UInt16(truncatingIfNeeded: next) &- UInt16(truncatingIfNeeded: used))
        if inflight > 0 { s.publish(inflight) }
        s.begin()
        s.read(read)
        return s
    }

    func trace(expect rule: RuleID?, features: UInt64 = 0) -> WitnessTrace {
        WitnessTrace(header: TraceHeader(profile: .linuxUpstream, layout: .mq, flags: .preset, features: features, workers: 1,
                                         queueSizes: [UInt16(n), UInt16(n)]),
                     events: events, expectedRule: rule)
    }
}

enum RingTraces {
    /// Only states that satisfy the invariant can be reached by a trace; the refuted step starts there.
    static func pre(_ m: Model) -> (n: Int, a: Int, l: Int, u: Int)? {
        guard let n = m.int("N"), let a = m.int("avail"), let l = m.int("next"), let u = m.int("used"),
              SplitRing.isValidQueueSize(UInt32(n)) else { return nil }
        let c = RingCursor(size: UInt32(n), avail: UInt16(a), next: UInt16(l), used: UInt16(u))
        return c.invariantHolds ? (n, a, l, u) : nil
    }

    /// The driver moves avail.idx by k past the in-flight bound → VQ-INFLIGHT.
    static func overPublish(_ m: Model) -> WitnessTrace? {
        guard let (n, a, l, u) = pre(m), let k = m.int("k") else { return nil }
        var s = RingStory.at(n: n, avail: a, next: l, used: u)
        s.end()
        s.publish(k, onlyFree: true)
        return s.trace(expect: .vqInflight)
    }

    /// The device reads at next == avail, an entry never exposed → VQ-AVAIL-READ.
    static func readPastAvail(_ m: Model) -> WitnessTrace? {
        guard let (n, a, l, u) = pre(m) else { return nil }
        var s = RingStory.at(n: n, avail: a, next: l, used: u)
        s.read(1)
        s.end()
        return s.trace(expect: .vqAvailRead)
    }

    /// The device returns k entries, more than it has read → VQ-USED-IDX.
    static func completeUnread(_ m: Model) -> WitnessTrace? {
        guard let (n, a, l, u) = pre(m), let k = m.int("k") else { return nil }
        var s = RingStory.at(n: n, avail: a, next: l, used: u)
        s.complete(k)
        s.emit(.simple(.interrupt, vq: s.vq, worker: 0))
        s.end()
        return s.trace(expect: .vqUsedIdx)
    }

    /// A queue size that is not a power of two → VQ-SIZE (judged on the header).
    static func badSize(_ m: Model) -> WitnessTrace? {
        guard let n = m.int("N"), n > 0, n <= 0xffff else { return nil }
        return WitnessTrace(header: TraceHeader(profile: .linuxUpstream, layout: .mq, flags: .preset, workers: 1,
                                                queueSizes: [4, UInt16(n)]),
                            events: [.simple(.kick, vq: 0, t: 10)], expectedRule: .vqSize)
    }

    /// EVENT_IDX: used moves old → new over used_event, and the device ends its pass without
    /// interrupting (as the broken formula decided) → VQ-INTERRUPT-MISSED.
    static func missedInterrupt(_ m: Model) -> WitnessTrace? {
        guard let e = m.int("e"), let o = m.int("old"), let nw = m.int("new") else { return nil }
        let count = Int(UInt16(truncatingIfNeeded: nw) &- UInt16(truncatingIfNeeded: o))
        guard count >= 1 && count <= 64 else { return nil }
        let n = count <= 8 ? 8 : 64
        let ue = TraceEvent.simple(.usedEvent, vq: 1, value: UInt64(e))
        var s = RingStory.at(n: n, avail: o, next: o, used: o, before: [ue])
        s.publish(count)
        s.read(count)
        s.complete(count)
        s.end()
        return s.trace(expect: .vqInterruptMissed, features: FeatureBit.eventIdx.mask)
    }
}

/// Traces for the mapping and SET_OWNER variants: a preset device of the given profile in the
/// seed layout, with one chain served on the chosen vq by the chosen worker.
enum MappingTraces {
    static func serve(_ vq: UInt16, by worker: UInt16, t: inout UInt64, into ev: inout [TraceEvent], head: UInt16 = 0,
                      layout: QueueLayout = .seed) {
        func emit(_ e: TraceEvent) { t += 10; var e = e; e.timestamp = t; ev.append(e) }
        // RX buffers are device-writable and start with a header (NET-RX-FRAMING, NET-RX-USED-LEN):
        // vq 0 in the seed layout, the even vqs in the mq layout.
        let rx = layout == .seed ? vq == 0 : vq % 2 == 0
        emit(.desc(vq: vq, index: head, addr: 0x1000 * UInt64(vq + 1), len: 64, flags: rx ? .write : []))
        emit(.availEntry(vq: vq, pos: 0, head: head))
        emit(.availIdx(vq: vq, idx: 1))
        emit(.simple(.kick, vq: vq))
        emit(.simple(.serviceBegin, vq: vq, worker: worker))
        emit(.availRead(vq: vq, worker: worker, pos: 0, head: head))
        emit(.usedEntry(vq: vq, worker: worker, pos: 0, id: UInt32(head), len: rx ? 64 : 0))
        emit(.usedIdx(vq: vq, worker: worker, idx: 1))
        emit(.simple(.interrupt, vq: vq, worker: worker))
        emit(.simple(.serviceEnd, vq: vq, worker: worker))
    }

    static func header(_ profile: Profile, workers: Int, queues: Int) -> TraceHeader {
        TraceHeader(profile: profile, layout: .seed, flags: .preset, workers: UInt16(clamping: workers),
                    queueSizes: Array(repeating: 8, count: queues))
    }

    /// `worker` serves `vq` where the profile assigns another (or a non-existent) worker → VHOST-MAPPING
    /// (VHOST-OWNER-COMPAT when the worker lies beyond what a clamped SET_OWNER grants).
    static func wrongWorker(workers: Int, vq: Int, worker: Int, profile: Profile? = nil, queues: Int? = nil,
                            expect: RuleID = .vhostMapping) -> WitnessTrace? {
        guard workers >= 1, vq >= 0, vq < 64, worker >= 0, worker < 0xffff else { return nil }
        let p = profile ?? (workers <= Profile.seedRFC2MaxWorkers ? .seedRFC2 : .seedRFC1)
        var ev: [TraceEvent] = [], t: UInt64 = 0
        serve(UInt16(vq), by: UInt16(worker), t: &t, into: &ev)
        return WitnessTrace(header: header(p, workers: workers, queues: queues ?? max(vq + 1, 2)), events: ev, expectedRule: expect)
    }

    /// Every vq served by worker min(q, W-1) under seed-rfc1 → VHOST-MAPPING from vq W on.
    static func clampToLast(workers w: Int, queues: Int) -> WitnessTrace? {
        guard w >= 1, queues <= 64 else { return nil }
        var ev: [TraceEvent] = [], t: UInt64 = 0
        for q in 0..<queues { serve(UInt16(q), by: UInt16(min(q, w - 1)), t: &t, into: &ev) }
        return WitnessTrace(header: header(.seedRFC1, workers: w, queues: queues), events: ev, expectedRule: .vhostMapping)
    }

    /// The legacy SET_OWNER with one chain served by worker 0. A kernel granting zero workers would
    /// leave the kick unserved, which no trace can show as an event; the checker, like the
    /// property, holds the legacy call to exactly one worker and accepts worker 0: no finding.
    static func legacyOwner() -> WitnessTrace {
        var ev: [TraceEvent] = [], t: UInt64 = 0
        serve(1, by: 0, t: &t, into: &ev)
        return WitnessTrace(header: header(.seedRFC1, workers: 0, queues: 2), events: ev, expectedRule: nil)
    }

    /// linux-upstream with the first device's worker (0) serving a vq of a later pair → VHOST-MAPPING.
    static func upstreamSingleDevice(pairs: Int, vq: Int) -> WitnessTrace? {
        guard pairs <= 64, vq < 2 * pairs else { return nil }
        // All pairs enabled first (VQ_PAIRS_SET made available and acknowledged), so the only
        // thing wrong is who serves the vq.
        var ev: [TraceEvent] = [
            TraceEvent(.mqPairsSet, timestamp: 10, p0: UInt64(pairs)),
            TraceEvent(.mqPairsAck, timestamp: 20, p0: UInt64(NetCtrlMQ.ackOK)),
        ]
        var t: UInt64 = 20
        serve(UInt16(vq), by: 0, t: &t, into: &ev, layout: .mq)
        let features = FeatureBit.version1.mask | FeatureBit.netMQ.mask | FeatureBit.netCtrlVQ.mask
        return WitnessTrace(header: TraceHeader(profile: .linuxUpstream, layout: .mq, flags: .preset, features: features, workers: 1,
                                                queueSizes: Array(repeating: 8, count: 2 * pairs + 1)),
                            events: ev, expectedRule: .vhostMapping)
    }

    /// Legacy SET_OWNER (what an old kernel sees), then a second worker serves TX[0] → VHOST-OWNER-COMPAT.
    static func legacyOwnerExtraWorker(txQueues: Int) -> WitnessTrace {
        var ev: [TraceEvent] = [], t: UInt64 = 0
        serve(1, by: 1, t: &t, into: &ev)
        return WitnessTrace(header: header(.seedRFC2, workers: 0, queues: 1 + min(max(txQueues, 1), 16)), events: ev, expectedRule: .vhostOwnerCompat)
    }

    static func workersHeader() -> TraceHeader {
        TraceHeader(profile: .linuxWorkers, layout: .mq, flags: .preset, workers: 1, queueSizes: [8, 8])
    }

    /// FREE_WORKER succeeds on a worker still attached to vq 1 → VHOST-WORKER-LIFECYCLE.
    static func freeAttached() -> WitnessTrace {
        let ev: [TraceEvent] = [
            .control(.newWorker, value: 1, t: 10),
            .control(.attachVringWorker, vq: 1, value: 1, t: 20),
            .control(.freeWorker, value: 1, t: 30),
        ]
        return WitnessTrace(header: workersHeader(), events: ev, expectedRule: .vhostWorkerLifecycle)
    }

    /// vq 1 is switched to worker 1 while worker 0 is inside a service pass; worker 1 starts
    /// its own pass → VHOST-SINGLE-CONSUMER.
    static func attachWithoutFlush() -> WitnessTrace {
        var t: UInt64 = 0
        var ev: [TraceEvent] = []
        func emit(_ e: TraceEvent) { t += 10; var e = e; e.timestamp = t; ev.append(e) }
        emit(.control(.newWorker, value: 1))
        emit(.desc(vq: 1, index: 0, addr: 0x1000, len: 64))
        emit(.desc(vq: 1, index: 1, addr: 0x2000, len: 64))
        emit(.availEntry(vq: 1, pos: 0, head: 0))
        emit(.availEntry(vq: 1, pos: 1, head: 1))
        emit(.availIdx(vq: 1, idx: 2))
        emit(.simple(.kick, vq: 1))
        emit(.simple(.serviceBegin, vq: 1, worker: 0))
        emit(.availRead(vq: 1, worker: 0, pos: 0, head: 0))
        emit(.control(.attachVringWorker, vq: 1, value: 1))
        emit(.simple(.serviceBegin, vq: 1, worker: 1))
        emit(.availRead(vq: 1, worker: 1, pos: 1, head: 1))
        return WitnessTrace(header: workersHeader(), events: ev, expectedRule: .vhostSingleConsumer)
    }
}
