import CSupport
import TraceFormat
import VhostUser
import VirtioProtocol

/// One vring relayed between the front-end's ring (`real`) and the shadow ring the back-end was
/// given. Each `step` moves what the driver published since the last step into the shadow ring
/// (descriptors and indirect tables copied, so the device only ever sees what was recorded) and
/// what the device published into the real used ring, writing the exact events in the order it
/// performed them: exposures before the shadow avail index that shows them to the device,
/// completions before the real used index that shows them to the driver.
struct RingRelay {
    typealias Failure = RelayFailure

    let vq: UInt16
    let n: UInt32
    /// The front-end's configuration the ring was started with.
    let config: RingConfig
    let real: SplitRingView
    /// avail.used_event and used.avail_event of the front-end's ring (EVENT_IDX), if mapped.
    let realUsedEvent: GuestRange?
    let realAvailEvent: GuestRange?
    let shadow: ShadowRing
    let shadowView: SplitRingView
    let eventIdx: Bool
    private(set) var lastAvail: UInt16
    private(set) var lastUsed: UInt16
    /// The suppression fields last copied each way (nil: not yet).
    private var availFlags: UInt16?, usedEvent: UInt16?, usedFlags: UInt16?, availEvent: UInt16?
    /// Per head, the `desc` / `indirect_desc` events recorded when its chain was last exposed: at
    /// its completion the front-end's copies are read again and a difference is the driver's write
    /// while the device owned them.
    private var exposed: [[TraceEvent]]
    /// Entries held in `exposed` in all, at most `recordBound`: a driver exposing long chains from
    /// every slot cannot make the relay remember N² descriptors (a chain past the bound is relayed
    /// and recorded, but not compared again at its completion).
    private var stored = 0
    private(set) var uncompared: UInt64 = 0
    private var arena: IndirectArena
    private var stamps: [UInt32], generation: UInt32 = 0
    private var heads: [UInt16] = [], elems: [UInt64] = []
    private(set) var buffersExposed: UInt64 = 0
    private(set) var buffersUsed: UInt64 = 0
    /// A receive ring's packet headers, read as the device returns them (nil: not a receive ring).
    private var receive: RxHeaderReader?

    init?(vq: UInt16, config c: RingConfig, memory: MemoryTable, shadow: ShadowRing, eventIdx: Bool, receive: RxHeaderReader? = nil) {
        guard let r = SplitRingView(memory: memory, size: c.size, desc: c.desc, avail: c.avail, used: c.used) else { return nil }
        let N = Int(c.size)
        self.vq = vq; n = c.size; config = c; real = r; self.shadow = shadow; self.eventIdx = eventIdx
        realUsedEvent = memory.user(c.avail &+ UInt64(4 + 2 * N), length: 2)
        realAvailEvent = memory.user(c.used &+ UInt64(4 + 8 * N), length: 2)
        shadowView = SplitRingView(size: c.size, desc: shadow.desc, avail: shadow.avail, used: shadow.used)
        // The shadow avail.idx is written only by the relay. The device may already be completing
        // (it got the kick before this runs), so the used side starts from the front-end's
        // used.idx, which the shadow's was set to and which only the relay moves.
        lastAvail = shadow.avail.load16Acquire(at: 2) ?? c.base
        lastUsed = r.usedIdx() ?? c.base
        exposed = Array(repeating: [], count: N)
        arena = IndirectArena(shadow: shadow, descriptors: N)
        stamps = Array(repeating: 0, count: N)
        self.receive = receive
    }

    /// The real ring's parts re-resolved in a new memory table (SET_MEM_TABLE while relaying).
    func remapped(config c: RingConfig, memory: MemoryTable) -> RingRelay? {
        guard var r = RingRelay(vq: vq, config: c, memory: memory, shadow: shadow, eventIdx: eventIdx, receive: receive) else { return nil }
        r.lastAvail = lastAvail; r.lastUsed = lastUsed
        r.availFlags = availFlags; r.usedEvent = usedEvent; r.usedFlags = usedFlags; r.availEvent = availEvent
        r.exposed = exposed; r.stored = stored; r.uncompared = uncompared; r.arena = arena
        r.buffersExposed = buffersExposed; r.buffersUsed = buffersUsed
        return r
    }

    /// Per-step bound on descriptor reads and copies (main and indirect): generous for any honest
    /// driver, and what caps a looping chain exposed from every slot.
    var workBound: Int { 65536 + 8 * Int(n) }
    var recordBound: Int { 65536 + 8 * Int(n) }

    private var usedEventOffset: Int { 4 + 2 * Int(n) }
    private var availEventOffset: Int { 4 + 8 * Int(n) }

    /// One relay pass. `kicked`/`called`: the front-end kicked / the back-end signalled since the
    /// last pass (taken before the indices are read, so what they announce is covered). Returns
    /// whether to kick the back-end and to interrupt the front-end.
    mutating func step(memory: MemoryTable, t: UInt64, kicked: Bool, called: Bool,
                       out: inout [TraceEvent]) throws(Failure) -> (kick: Bool, call: Bool) {
        try copySuppression(t: t, out: &out)
        var budget = workBound
        var kick = kicked
        guard let A = real.availIdx() else { throw .fault("reading the front-end's avail.idx faulted") }
        if A != lastAvail {
            let old = lastAvail
            try relayAvail(to: A, memory: memory, t: t, budget: &budget, out: &out)
            cs_fence_full()
            // The relay is the back-end's driver: it kicks when the device asked to hear about
            // what it just published (or when the front-end kicked).
            if eventIdx {
                if let e = shadow.used.load(UInt16.self, at: availEventOffset), SplitRing.needEvent(event: e, new: A, old: old) { kick = true }
            } else if let f = shadow.used.load(UInt16.self, at: 0), f & SplitRing.usedFlagNoNotify == 0 { kick = true }
        }
        if kicked { out.append(TraceEvent(.kick, vq: vq, timestamp: t)) }
        var call = called
        guard let U = shadow.used.load16Acquire(at: 2) else { throw .fault("reading the shadow used.idx faulted (the back-end shrank the relay's memory)") }
        if U != lastUsed {
            let old = lastUsed
            try relayUsed(to: U, memory: memory, t: t, out: &out)
            cs_fence_full()
            // And the front-end's device: it interrupts when the driver asked for it.
            if eventIdx {
                if let e = realUsedEvent?.load(UInt16.self, at: 0), SplitRing.needEvent(event: e, new: U, old: old) { call = true }
            } else if let f = real.avail.load(UInt16.self, at: 0), f & SplitRing.availFlagNoInterrupt == 0 { call = true }
        }
        if called { out.append(TraceEvent(.interrupt, vq: vq, timestamp: t)) }
        return (kick, call)
    }

    /// NO_INTERRUPT / used_event from the driver to the shadow ring, NO_NOTIFY / avail_event from
    /// the device to the real ring, each recorded when the other side can first see it.
    private mutating func copySuppression(t: UInt64, out: inout [TraceEvent]) throws(Failure) {
        guard let af = real.avail.load(UInt16.self, at: 0) else { throw .fault("reading the front-end's avail.flags faulted") }
        if af != availFlags {
            availFlags = af
            _ = shadow.avail.store(af, at: 0)
            out.append(TraceEvent(.availFlags, vq: vq, timestamp: t, p0: UInt64(af)))
        }
        if eventIdx, let ue = realUsedEvent?.load(UInt16.self, at: 0), ue != usedEvent {
            usedEvent = ue
            _ = shadow.avail.store(ue, at: usedEventOffset)
            out.append(TraceEvent(.usedEvent, vq: vq, timestamp: t, p0: UInt64(ue)))
        }
        guard let uf = shadow.used.load(UInt16.self, at: 0) else { throw .fault("reading the shadow used.flags faulted") }
        if uf != usedFlags {
            usedFlags = uf
            _ = real.used.store(uf, at: 0)
            out.append(TraceEvent(.usedFlags, vq: vq, timestamp: t, p0: UInt64(uf)))
        }
        if eventIdx, let ae = shadow.used.load(UInt16.self, at: availEventOffset), ae != availEvent {
            availEvent = ae
            _ = realAvailEvent?.store(ae, at: 0)
            out.append(TraceEvent(.availEvent, vq: vq, timestamp: t, p0: UInt64(ae)))
        }
    }

    // MARK: driver -> device

    private mutating func relayAvail(to A: UInt16, memory: MemoryTable, t: UInt64, budget: inout Int, out: inout [TraceEvent]) throws(Failure) {
        let k = Int(SplitRing.distance(from: lastAvail, to: A))
        // More than N new entries (the driver's VQ-INFLIGHT): only the last N slots still say anything.
        let from = k > Int(n) ? A &- UInt16(truncatingIfNeeded: n) : lastAvail
        let count = min(k, Int(n))
        guard real.availSlots(from: from, count: count, into: &heads) else { throw .fault("reading the front-end's avail ring faulted") }
        for (j, h) in heads.enumerated() {
            let pos = from &+ UInt16(truncatingIfNeeded: j)
            if Int(h) < Int(n) { try expose(head: h, memory: memory, t: t, budget: &budget, out: &out) }
            out.append(TraceEvent(.availEntry, vq: vq, aux: h, timestamp: t, p0: UInt64(pos)))
            _ = shadow.avail.store(h, at: 4 + 2 * Int(pos & real.mask))
        }
        out.append(TraceEvent(.availIdx, vq: vq, timestamp: t, p0: UInt64(A)))
        guard shadow.avail.store16Release(A, at: 2) else { throw .fault("writing the shadow avail.idx faulted") }
        buffersExposed &+= UInt64(count)
        lastAvail = A
    }

    /// Records the chain at `head` as it is now and copies it into the shadow table (indirect
    /// tables into the arena, the descriptor pointing there).
    private mutating func expose(head: UInt16, memory: MemoryTable, t: UInt64, budget: inout Int, out: inout [TraceEvent]) throws(Failure) {
        generation &+= 1
        if generation == 0 { for k in stamps.indices { stamps[k] = 0 }; generation = 1 }
        var rec = exposed[Int(head)]
        stored -= rec.count
        rec.removeAll(keepingCapacity: true)
        var i = head
        while Int(i) < Int(n) && stamps[Int(i)] != generation {
            stamps[Int(i)] = generation
            budget -= 1
            if budget < 0 { throw .workBound }
            guard let d = real.descriptor(i) else { throw .fault("reading descriptor \(i) faulted") }
            let e = TraceEvent(.desc, vq: vq, aux: i, timestamp: t, p0: d.addr, p1: d.packed)
            out.append(e); rec.append(e)
            var copy = d
            if d.isIndirect, let at = try arena.copy(parent: i, addr: d.addr, len: d.len, kind: .indirectDesc, vq: vq, memory: memory, t: t,
                                                     budget: &budget, out: &out, rec: &rec) {
                copy.addr = at
            }
            var raw = (copy.addr, copy.packed)
            let ok = withUnsafeBytes(of: &raw) { shadow.desc.write($0, at: 16 * Int(i)) }
            guard ok else { throw .fault("writing the shadow descriptor table faulted") }
            guard d.hasNext else { break }
            i = d.next
        }
        if stored + rec.count > recordBound {
            uncompared &+= 1
            rec.removeAll()
        }
        stored += rec.count
        exposed[Int(head)] = rec
    }

    // MARK: device -> driver

    /// What the relay leaves in a shadow used element once it has copied it, and in every element
    /// of a fresh shadow ring: id and len all ones, never a head (heads are below N <= 32768). An
    /// element still holding it when used.idx has moved past was not written by the device: with
    /// IN_ORDER, a buffer of a batch that the next written element retires. It is neither recorded
    /// nor copied (the driver's element stays as it was, as it would without the relay), and the
    /// checker retires the oldest buffer there.
    static let unwritten: UInt64 = .max

    private mutating func relayUsed(to U: UInt16, memory: MemoryTable, t: UInt64, out: inout [TraceEvent]) throws(Failure) {
        let k = Int(SplitRing.distance(from: lastUsed, to: U))
        let from = k > Int(n) ? U &- UInt16(truncatingIfNeeded: n) : lastUsed
        let count = min(k, Int(n))
        guard shadowView.usedElems(from: from, count: count, into: &elems) else { throw .fault("reading the shadow used ring faulted") }
        for (j, raw) in elems.enumerated() {
            let pos = from &+ UInt16(truncatingIfNeeded: j)
            guard raw != Self.unwritten else { receive?.skipped(); continue }
            // Copied: the slot is the relay's mark again until the device writes it next lap.
            guard shadow.used.store(Self.unwritten, at: 4 + 8 * Int(pos & real.mask)) else { throw .fault("writing the shadow used ring faulted") }
            let id = UInt32(truncatingIfNeeded: raw), len = UInt32(truncatingIfNeeded: raw >> 32)
            // The header is read from the buffers the chain was exposed with, before they are forgotten.
            let header = id < n ? receive?.header(vq: vq, pos: pos, len: len, chain: exposed[Int(id)], memory: memory, t: t) : nil
            if id < n { rewritesOf(head: Int(id), memory: memory, t: t, out: &out) }
            out.append(TraceEvent(.usedEntry, vq: vq, timestamp: t, p0: UInt64(pos), p1: UInt64(id), p2: UInt64(len)))
            if let h = header { out.append(h) }
            guard real.used.store(raw, at: 4 + 8 * Int(pos & real.mask)) else { throw .fault("writing the front-end's used ring faulted") }
        }
        out.append(TraceEvent(.usedIdx, vq: vq, timestamp: t, p0: UInt64(U)))
        guard real.used.store16Release(U, at: 2) else { throw .fault("writing the front-end's used.idx faulted") }
        buffersUsed &+= UInt64(count)
        lastUsed = U
    }

    /// The driver's writes, while the device owned the chain, to what was recorded at its exposure:
    /// each changed entry is written as the driver's event before the completion that ends the
    /// device's ownership (so it falls inside that ownership, where it happened).
    private mutating func rewritesOf(head: Int, memory: MemoryTable, t: UInt64, out: inout [TraceEvent]) {
        for e in exposed[head] {
            let now: RawDescriptor?
            if e.kind == .desc {
                now = real.descriptor(e.aux)
            } else {
                // The parent's recorded address is the driver's table.
                let parent = UInt16(truncatingIfNeeded: e.p2)
                let table = exposed[head].first { $0.kind == .desc && $0.aux == parent }?.p0
                now = table.flatMap { memory.guest($0 &+ 16 * UInt64(e.aux), length: 16) }.flatMap { SplitRingView.descriptor(in: $0, at: 0) }
            }
            guard let d = now, d.addr != e.p0 || d.packed != e.p1 else { continue }
            var w = e
            w.timestamp = t; w.p0 = d.addr; w.p1 = d.packed
            out.append(w)
        }
        stored -= exposed[head].count
        exposed[head].removeAll(keepingCapacity: true)
    }
}
