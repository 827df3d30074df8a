import CSupport
import TraceFormat
import VhostUser
import VirtioProtocol

/// One packed vring relayed between the front-end's ring (`real`) and the shadow ring the
/// back-end was given: the relay is the device of the real ring and the driver of the shadow one.
/// Both rings have the same positions at every moment (slot and wrap counter): a list the driver
/// made available at position p is copied to the shadow at p, a used descriptor the device wrote
/// at q is copied to the real ring at q, so ownership on one ring mirrors ownership on the other.
/// Each `step` writes the exact events in the order it performed them: a list's descriptors and
/// its first descriptor's flags before the shadow flags store that shows it to the device, a used
/// descriptor before the real flags store that shows it to the driver (`Specs/recorder.md`,
/// "Interposing").
struct PackedRingRelay {
    typealias Failure = RelayFailure

    let vq: UInt16
    let n: UInt32
    /// The front-end's configuration the ring was started with (`avail`, `used`: the driver and
    /// device event suppression structures).
    let config: RingConfig
    let real: PackedRingView
    let realDriverEvent: GuestRange
    let realDeviceEvent: GuestRange
    let shadow: ShadowRing
    let shadowView: PackedRingView
    let eventIdx: Bool
    let inOrder: Bool
    /// The next position to read on the real ring (everything before it is published in the
    /// shadow), and the next position the device marks used.
    private(set) var a: UInt64
    private(set) var u: UInt64

    /// A buffer made available and not yet used: its first position, its descriptors, its id and
    /// the indirect table entries recorded at its exposure (with each table's driver address).
    struct Buffer {
        var start: UInt64
        var count: Int
        var id: UInt16
        var tables: [(addr: UInt64, entries: [TraceEvent])] = []
    }
    /// In exposure order (IN_ORDER batches retire from the front).
    private var inFlight: [Buffer] = []
    /// Per slot, the descriptor's two words as recorded at its exposure: when the slot returns to
    /// the driver the front-end's copy is read again and a difference is the driver's write while
    /// the device owned it.
    private var recorded: [(addr: UInt64, word: UInt64)]
    /// A list whose first descriptor is available and a later one not yet (the driver broke the
    /// order): what was read and recorded of it, the rest read at later steps.
    private struct Partial {
        var start: UInt64
        var next: UInt64
        var shadowWords: [(addr: UInt64, word: UInt64)]
        var buffer: Buffer
    }
    private var partial: Partial?
    private var arena: IndirectArena
    /// The event suppression structures last copied each way (nil: not yet).
    private var driverEvent: UInt32?, deviceEvent: UInt32?
    /// Indirect entries held for comparison, at most `recordBound` (as for split rings).
    private var stored = 0
    private(set) var uncompared: UInt64 = 0
    private(set) var buffersExposed: UInt64 = 0
    private(set) var buffersUsed: UInt64 = 0

    /// `start`: the positions the ring starts from (both the base's on a fresh ring).
    init?(vq: UInt16, config c: RingConfig, memory: MemoryTable, shadow: ShadowRing, eventIdx: Bool, inOrder: Bool,
          start: (a: UInt64, u: UInt64)) {
        guard shadow.format == .packed, shadow.size == c.size, let r = PackedRingView(memory: memory, size: c.size, desc: c.desc),
              let de = memory.user(c.avail, length: 4), let ve = memory.user(c.used, length: 4) else { return nil }
        self.vq = vq; n = c.size; config = c; real = r; realDriverEvent = de; realDeviceEvent = ve
        self.shadow = shadow; self.eventIdx = eventIdx; self.inOrder = inOrder
        shadowView = PackedRingView(size: c.size, ring: shadow.desc)
        a = start.a; u = start.u
        recorded = Array(repeating: (0, 0), count: Int(c.size))
        arena = IndirectArena(shadow: shadow, descriptors: Int(c.size))
    }

    /// The real ring's parts re-resolved in a new memory table (SET_MEM_TABLE while relaying).
    func remapped(config c: RingConfig, memory: MemoryTable) -> PackedRingRelay? {
        guard var r = PackedRingRelay(vq: vq, config: c, memory: memory, shadow: shadow, eventIdx: eventIdx, inOrder: inOrder, start: (a, u)) else { return nil }
        r.inFlight = inFlight; r.recorded = recorded; r.partial = partial; r.arena = arena
        r.driverEvent = driverEvent; r.deviceEvent = deviceEvent
        r.stored = stored; r.uncompared = uncompared; r.buffersExposed = buffersExposed; r.buffersUsed = buffersUsed
        return r
    }

    /// Per-step bound on descriptor reads and copies (ring and indirect), as for split rings.
    var workBound: Int { 65536 + 8 * Int(n) }
    var recordBound: Int { 65536 + 8 * Int(n) }

    func slot(_ p: UInt64) -> UInt16 { PackedRing.slot(p, size: n) }
    func wrap(_ p: UInt64) -> Bool { PackedRing.wrap(p, size: n) }

    /// Writes every slot of a shadow ring the device has not seen as used in the lap before the
    /// one it holds at the ring's start position `p`: neither available nor used there, whatever
    /// wrap counter the device starts with (a zeroed slot would read as used in a lap of wrap 0).
    static func initShadow(_ s: ShadowRing, start p: UInt64) {
        let N = UInt64(s.size)
        for q in p..<(p + N) {
            let o = 16 * Int(q % N)
            _ = s.desc.store(UInt64(0), at: o)
            _ = s.desc.store(UInt64(PackedRing.Flags.usedMark(wrap: !PackedRing.wrap(q, size: s.size)).rawValue) << 48, at: o + 8)
        }
        _ = s.avail.store(UInt32(0), at: 0)
        _ = s.used.store(UInt32(0), at: 0)
    }

    /// One relay pass. `kicked`/`called`: the front-end kicked / the back-end signalled since the
    /// last pass (taken before the rings are read, so what they announce is covered). Returns
    /// whether to kick the back-end and to interrupt the front-end.
    mutating func step(memory: MemoryTable, t: UInt64, kicked: Bool, called: Bool,
                       out: inout [TraceEvent]) throws(Failure) -> (kick: Bool, call: Bool) {
        try copySuppression(t: t, out: &out)
        var budget = workBound
        var kick = kicked
        let oldA = a
        try relayAvail(memory: memory, t: t, budget: &budget, out: &out)
        if a != oldA {
            cs_fence_full()
            // The relay is the back-end's driver: it kicks when the Device Event Suppression asks
            // for what it just published (or when the front-end kicked).
            if let e = shadow.used.load(UInt32.self, at: 0), PackedRing.notificationRequired(Self.suppression(e), eventIdx: eventIdx, old: oldA, new: a, size: n) { kick = true }
        }
        if kicked { out.append(TraceEvent(.kick, vq: vq, timestamp: t)) }
        var call = called
        let oldU = u
        try relayUsed(memory: memory, t: t, budget: &budget, out: &out)
        if u != oldU {
            cs_fence_full()
            // And the front-end's device: it interrupts when the Driver Event Suppression asks for it.
            if let e = realDriverEvent.load(UInt32.self, at: 0), PackedRing.notificationRequired(Self.suppression(e), eventIdx: eventIdx, old: oldU, new: u, size: n) { call = true }
        }
        if called { out.append(TraceEvent(.interrupt, vq: vq, timestamp: t)) }
        return (kick, call)
    }

    /// `pvirtq_event_suppress` read as one 32-bit word: off_wrap low, flags high.
    static func suppression(_ w: UInt32) -> PackedRing.EventSuppression {
        PackedRing.EventSuppression(offWrap: UInt16(truncatingIfNeeded: w), flags: UInt16(truncatingIfNeeded: w >> 16))
    }

    /// The Driver Event Suppression from the driver to the shadow ring, the Device Event
    /// Suppression from the device to the real ring, each recorded when the other side can first see it.
    private mutating func copySuppression(t: UInt64, out: inout [TraceEvent]) throws(Failure) {
        guard let d = realDriverEvent.load(UInt32.self, at: 0) else { throw .fault("reading the front-end's driver event suppression faulted") }
        if d != driverEvent {
            driverEvent = d
            _ = shadow.avail.store(d, at: 0)
            out.append(TraceEvent(.driverEvent, vq: vq, timestamp: t, p0: UInt64(d & 0xffff), p1: UInt64(d >> 16)))
        }
        guard let e = shadow.used.load(UInt32.self, at: 0) else { throw .fault("reading the shadow device event suppression faulted") }
        if e != deviceEvent {
            deviceEvent = e
            guard realDeviceEvent.store(e, at: 0) else { throw .fault("writing the front-end's device event suppression faulted") }
            out.append(TraceEvent(.deviceEvent, vq: vq, timestamp: t, p0: UInt64(e & 0xffff), p1: UInt64(e >> 16)))
        }
    }

    // MARK: driver -> device

    /// Lists made available from `a` on, each read (every descriptor's flags with acquire
    /// semantics, then its body), recorded and copied to the same shadow slots, its first
    /// descriptor's flags stored last with release semantics. Reads stop at `u + N`: past that
    /// the slots are the device's.
    private mutating func relayAvail(memory: MemoryTable, t: UInt64, budget: inout Int, out: inout [TraceEvent]) throws(Failure) {
        let end = u + UInt64(n)
        while true {
            var cur = partial ?? Partial(start: a, next: a, shadowWords: [], buffer: Buffer(start: a, count: 0, id: 0))
            let reported = partial != nil
            var events: [TraceEvent] = []
            var complete = false
            var headFlags: PackedRing.Flags = []
            while cur.next < end {
                let p = cur.next, s = slot(p)
                budget -= 1
                if budget < 0 { throw .workBound }
                guard let f = real.flags(s) else { throw .fault("reading the flags of descriptor \(s) faulted") }
                guard f.isAvailable(wrap: wrap(p)) else { break }
                guard let w = real.raw(s) else { throw .fault("reading descriptor \(s) faulted") }
                let len = UInt32(truncatingIfNeeded: w.word), id = UInt16(truncatingIfNeeded: w.word >> 32)
                // The flags as the acquire load read them (a later plain read could differ).
                let word = w.word & 0x0000_FFFF_FFFF_FFFF | UInt64(f.rawValue) << 48
                events.append(TraceEvent(.packedDesc, vq: vq, aux: s, timestamp: t, p0: w.addr, p1: TraceEvent.packPacked(len: len, id: id)))
                var copyAddr = w.addr
                if f.contains(.indirect) {
                    var entries: [TraceEvent] = []
                    if let at = try arena.copy(parent: s, addr: w.addr, len: len, kind: .packedIndirectDesc, vq: vq, memory: memory, t: t,
                                               budget: &budget, out: &events, rec: &entries) {
                        copyAddr = at
                    }
                    if !entries.isEmpty {
                        if stored + entries.count > recordBound { uncompared &+= 1 } else {
                            stored += entries.count
                            cur.buffer.tables.append((w.addr, entries))
                        }
                    }
                }
                if p == cur.start { headFlags = f } else { events.append(TraceEvent(.packedFlags, vq: vq, aux: s, timestamp: t, p0: UInt64(f.rawValue))) }
                recorded[Int(s)] = (w.addr, word)
                cur.shadowWords.append((copyAddr, word))
                cur.buffer.id = id
                cur.next = p + 1
                if !f.contains(.next) { complete = true; break }
            }
            if cur.next == cur.start { return }   // nothing made available at `a`
            out += events
            // The first descriptor's store is what made the list available: recorded after the
            // rest, once (a list seen incomplete has it recorded when first seen).
            if !reported { out.append(TraceEvent(.packedFlags, vq: vq, aux: slot(cur.start), timestamp: t, p0: UInt64(headFlags.rawValue))) }
            guard complete else {
                // Its first descriptor available and a later one not (or the list runs to the
                // device's slots): the device is not shown it until it is complete.
                partial = cur
                return
            }
            partial = nil
            try publish(cur)
        }
    }

    /// Copies a complete list to the shadow ring: every descriptor but the first whole, then the
    /// first one's addr, len and id, then its flags with release semantics (the driver's rule).
    private mutating func publish(_ l: Partial) throws(Failure) {
        for (k, w) in l.shadowWords.enumerated().reversed() {
            let o = 16 * Int(slot(l.start + UInt64(k)))
            if k == 0 {
                guard shadow.desc.store(w.addr, at: o), shadow.desc.store(UInt32(truncatingIfNeeded: w.word), at: o + 8),
                      shadow.desc.store(UInt16(truncatingIfNeeded: w.word >> 32), at: o + 12),
                      shadow.desc.store16Release(UInt16(truncatingIfNeeded: w.word >> 48), at: o + 14) else {
                    throw .fault("writing the shadow descriptor ring faulted")
                }
            } else {
                guard shadow.desc.store(w.addr, at: o), shadow.desc.store(w.word, at: o + 8) else { throw .fault("writing the shadow descriptor ring faulted") }
            }
        }
        var b = l.buffer
        b.start = l.start; b.count = l.shadowWords.count
        inFlight.append(b)
        buffersExposed &+= 1
        a = l.start + UInt64(b.count)
    }

    // MARK: device -> driver

    /// Used descriptors from `u` on (each slot's flags with acquire semantics, then id and len),
    /// recorded and copied to the same real slots, flags last with release semantics. Each skips
    /// its buffer's descriptors (IN_ORDER: its batch's, up to the buffer its id names).
    private mutating func relayUsed(memory: MemoryTable, t: UInt64, budget: inout Int, out: inout [TraceEvent]) throws(Failure) {
        while true {
            let s = slot(u)
            budget -= 1
            if budget < 0 { throw .workBound }
            guard let f = shadowView.flags(s) else { throw .fault("reading the shadow descriptor ring faulted (the back-end shrank the relay's memory)") }
            guard f.isUsed(wrap: wrap(u)) else { return }
            guard let b = shadowView.body(s) else { throw .fault("reading the shadow descriptor ring faulted") }
            let used = TraceEvent(.packedUsed, vq: vq, aux: s, timestamp: t, p1: TraceEvent.packPacked(len: b.len, id: b.id))
            let mark = TraceEvent(.packedUsedFlags, vq: vq, aux: s, timestamp: t, p0: UInt64(f.rawValue))
            guard u < a else {
                // Nothing is in flight: the slot is the driver's. Recorded (the checker names it),
                // not copied into the front-end's ring.
                out.append(used); out.append(mark)
                throw .lost("the back-end marked slot \(s) used with nothing made available there")
            }
            guard let k = inFlight.firstIndex(where: { $0.id == b.id }) else {
                // The device's slot, but which buffer it ends, and so where the next used
                // descriptor goes, is unknown: relayed as written, and the ring is not relayed further.
                out.append(used); out.append(mark)
                try copyUsed(s, len: b.len, id: b.id, flags: f)
                throw .lost("the used descriptor at slot \(s) names buffer id \(b.id), which is not in flight")
            }
            let retired = inOrder ? Array(inFlight[...k]) : [inFlight[k]]
            let span = retired.reduce(0) { $0 + $1.count }
            rewrites(positions: u, count: span, of: retired, memory: memory, t: t, out: &out)
            out.append(used); out.append(mark)
            try copyUsed(s, len: b.len, id: b.id, flags: f)
            if inOrder { inFlight.removeFirst(k + 1) } else { inFlight.remove(at: k) }
            u += UInt64(span)
            buffersUsed &+= UInt64(retired.count)
        }
    }

    private func copyUsed(_ s: UInt16, len: UInt32, id: UInt16, flags: PackedRing.Flags) throws(Failure) {
        let o = 16 * Int(s)
        guard real.ring.store(len, at: o + 8), real.ring.store(id, at: o + 12), real.ring.store16Release(flags.rawValue, at: o + 14) else {
            throw .fault("writing the front-end's descriptor ring faulted")
        }
    }

    /// The driver's writes, while the device owned them, to the descriptors at positions
    /// [from, from + count) (which return to the driver now) and to the indirect tables of the
    /// buffers used: each change is written as the driver's event before the used descriptor that
    /// ends the device's ownership (so it falls inside that ownership, where it happened).
    private mutating func rewrites(positions from: UInt64, count: Int, of buffers: [Buffer], memory: MemoryTable, t: UInt64, out: inout [TraceEvent]) {
        for q in from..<(from + UInt64(count)) {
            let s = slot(q)
            guard let now = real.raw(s) else { continue }
            let was = recorded[Int(s)]
            if now.addr != was.addr || now.word & 0x0000_FFFF_FFFF_FFFF != was.word & 0x0000_FFFF_FFFF_FFFF {
                out.append(TraceEvent(.packedDesc, vq: vq, aux: s, timestamp: t, p0: now.addr,
                                      p1: TraceEvent.packPacked(len: UInt32(truncatingIfNeeded: now.word), id: UInt16(truncatingIfNeeded: now.word >> 32))))
            }
            if now.word >> 48 != was.word >> 48 {
                out.append(TraceEvent(.packedFlags, vq: vq, aux: s, timestamp: t, p0: now.word >> 48))
            }
        }
        for b in buffers {
            for table in b.tables {
                stored -= table.entries.count
                for e in table.entries {
                    guard let r = memory.guest(table.addr &+ 16 * UInt64(e.aux), length: 16), let d = SplitRingView.descriptor(in: r, at: 0),
                          d.addr != e.p0 || d.packed != e.p1 else { continue }
                    var w = e
                    w.timestamp = t; w.p0 = d.addr; w.p1 = d.packed
                    out.append(w)
                }
            }
        }
    }
}
