import PolledSemantics
import TraceFormat
import VhostUser
import VirtioProtocol

/// The descriptor ring of a packed vring in the front-end's memory (SET_VRING_ADDR's `desc`; its
/// `avail` and `used` are the two event suppression structures, which the recorder does not read).
struct PackedRingView {
    let size: UInt32
    let ring: GuestRange

    init?(memory: MemoryTable, size: UInt32, desc: UInt64) {
        guard let r = memory.user(desc, length: 16 * UInt64(size)) else { return nil }
        self.size = size; ring = r
    }

    /// A ring already resolved (the relay's shadow ring).
    init(size: UInt32, ring: GuestRange) { self.size = size; self.ring = ring }

    /// A descriptor's flags, with acquire semantics: what the body read after it may rely on.
    func flags(_ slot: UInt16) -> PackedRing.Flags? {
        ring.load16Acquire(at: 16 * Int(slot) + 14).map { PackedRing.Flags(rawValue: $0) }
    }

    /// The descriptor's two words as they are in memory: addr, then len | id << 32 | flags << 48
    /// (what the events carry in p0 and p1).
    func raw(_ slot: UInt16) -> (addr: UInt64, word: UInt64)? {
        let o = 16 * Int(slot)
        guard let a = ring.load(UInt64.self, at: o), let w = ring.load(UInt64.self, at: o + 8) else { return nil }
        return (a, w)
    }

    /// addr (0), len (8), id (12): read after the flags.
    func body(_ slot: UInt16) -> (addr: UInt64, len: UInt32, id: UInt16)? {
        let o = 16 * Int(slot)
        guard let a = ring.load(UInt64.self, at: o), let l = ring.load(UInt32.self, at: o + 8), let i = ring.load(UInt16.self, at: o + 12) else { return nil }
        return (a, l, i)
    }
}

/// Follows one packed ring by polling, as the checker reads it (`Specs/model.md`, "Polled packed
/// rings"): per poll, the lists made available from its avail position (each descriptor's flags
/// read with acquire semantics before its body), then the used descriptors from its used position
/// (each skipping its buffer's list, or its IN_ORDER batch), then `poll avail=A used=U` with the
/// positions reached (index, wrap counter in bit 15). A ring whose exposure was overwritten before
/// it was read, whose slots were reused before they were read, or whose used descriptor names a
/// buffer it cannot tell gets a `ring_gap` and is not followed again until it restarts: where the
/// device's used position is cannot be read from memory.
struct PackedRingFollower {
    let vq: UInt16
    let size: UInt32
    let inOrder: Bool
    private(set) var a: UInt64
    private(set) var u: UInt64
    /// Lists listed and not seen used, in ring order; `maybeTorn`: the id was read where the
    /// device may already have written (every list of the current poll until its used position is known).
    /// `restart`: listed by a restart with lists in flight (`PackedResync`): the device may already
    /// have used it (out of order) and the driver made its id available again.
    private var inFlight: [(start: UInt64, count: Int, readId: UInt16, maybeTorn: Bool, restart: Bool)] = []
    private var firstPoll = true
    private var quietOwed = false
    private(set) var buffersExposed: UInt64 = 0
    private(set) var buffersUsed: UInt64 = 0

    enum Stop: Error { case gap(RingGapReason, String), fault(String), stopped }

    init(vq: UInt16, size: UInt32, base: RingBase, inOrder: Bool) {
        self.vq = vq; self.size = size; self.inOrder = inOrder
        a = PackedRing.position(base, size: size); u = a
    }

    func slot(_ p: UInt64) -> UInt16 { PackedRing.slot(p, size: size) }
    func wrap(_ p: UInt64) -> Bool { PackedRing.wrap(p, size: size) }

    /// One poll. Throws (nothing of the poll written) when the ring cannot be followed further.
    mutating func poll(_ v: PackedRingView, memory: MemoryTable, _ ctx: PollContext, workBound: Int, out: inout [TraceEvent]) throws(Stop) {
        var entries: [TraceEvent] = []
        var budget = WorkBudget(workBound, stop: ctx.stop)
        let w = UInt64(max(0, ctx.writeAhead))
        var a0 = a, u0 = u
        let exposed0 = exposedCount
        if lost {
            // After a gap: judging starts again at a poll that finds the ring drained; only that
            // poll is written (`poll avail=P used=P`, nothing listed).
            if let d = try drainedScan(v, budget: &budget) {
                a = d.end; u = d.end
                inFlight = []
                lost = false
                quietOwed = false
                firstPoll = false
                resync = nil
                out.append(TraceEvent(.poll, vq: vq, timestamp: ctx.t, p0: UInt64(PackedRing.encode(a, size: size)), p1: UInt64(PackedRing.encode(u, size: size)), flags: .sampled))
                return
            }
            // Or at a used position with lists in flight (`PackedResync`): a ring that never drains.
            guard try restartInFlight(v, ctx, writeAhead: UInt32(w), out: &out) else { return }
            // Then this poll goes on from there, as any other.
            a0 = a; u0 = u
        }
        // 1. The avail side.
        blocked = false
        try scanAvail(v, memory: memory, budget: &budget, t: ctx.t, into: &entries)
        if blocked {
            // What the driver made available at the recorder's avail position was used before it
            // was read. If the ring is drained now, everything made available up to its drained
            // position was used: the used descriptors from the used position to there are read
            // and written as they are, and the poll ends there (the checker counts that block,
            // judges nothing of it, and starts again where the ring is drained).
            // Only slots it can account for: used descriptors, and the later descriptors of lists it
            // listed. Any other slot still marked available could be a used descriptor whose flags a
            // device stores last (DPDK's batches): counted now, it would be missed.
            var rest = Set<UInt64>()
            for l in inFlight where l.count > 1 { for k in 1..<l.count { rest.insert(l.start + UInt64(k)) } }
            guard let d = try drainedScan(v, budget: &budget, available: { rest.contains($0) }), d.end >= a else {
                throw .gap(.lap, "descriptors at the recorder's avail position (slot \(slot(a))) were made available and used before it read them, and the ring was not found drained")
            }
            for x in d.used {
                entries.append(TraceEvent(.packedUsed, vq: vq, aux: slot(x.pos), timestamp: ctx.t, p1: TraceEvent.packPacked(len: x.len, id: x.id), flags: .sampled))
                entries.append(TraceEvent(.packedUsedFlags, vq: vq, aux: slot(x.pos), timestamp: ctx.t, p0: UInt64(x.flags.rawValue), flags: .sampled))
            }
            buffersUsed += UInt64(d.used.count)
            buffersExposed += UInt64(exposedCount - exposed0) + UInt64(max(0, d.used.count - inFlight.count))
            inFlight = []
            a = d.end; u = d.end
            out.append(contentsOf: entries)
            out.append(TraceEvent(.poll, vq: vq, timestamp: ctx.t, p0: UInt64(PackedRing.encode(a, size: size)), p1: UInt64(PackedRing.encode(u, size: size)), flags: .sampled))
            quietOwed = true
            firstPoll = false
            return
        }
        // 2. The used side.
        var rescanned = false
        var usedRead: [UInt64] = []
        while !inFlight.isEmpty {
            let q = u
            guard let f = v.flags(slot(q)) else { throw .fault("reading a descriptor's flags faulted") }
            if f.isUsed(wrap: wrap(q)) {
                guard let b = v.body(slot(q)) else { throw .fault("reading a used descriptor faulted") }
                var m = match(b.id)
                if let mm = m, mm.torn, !rescanned {
                    // Before trusting an id it may have read torn: the buffer the device used may have
                    // been made available after the avail side was read.
                    rescanned = true
                    try scanAvail(v, memory: memory, budget: &budget, t: ctx.t, into: &entries)
                    m = match(b.id)
                }
                guard let (i, _) = m else {
                    if !rescanned {
                        rescanned = true
                        try scanAvail(v, memory: memory, budget: &budget, t: ctx.t, into: &entries)
                        continue
                    }
                    throw .gap(.lap, "the used descriptor at slot \(slot(q)) names buffer id \(b.id), which the recorder cannot tell among those it saw made available (an exposure overwritten before it was read)")
                }
                rescanned = false
                let span: Int
                if inOrder {
                    span = inFlight[...i].reduce(0) { $0 + $1.count }
                    inFlight.removeFirst(i + 1)
                } else {
                    span = inFlight[i].count
                    inFlight.remove(at: i)
                }
                entries.append(TraceEvent(.packedUsed, vq: vq, aux: slot(q), timestamp: ctx.t, p1: TraceEvent.packPacked(len: b.len, id: b.id), flags: .sampled))
                entries.append(TraceEvent(.packedUsedFlags, vq: vq, aux: slot(q), timestamp: ctx.t, p0: UInt64(f.rawValue), flags: .sampled))
                usedRead.append(q)
                u = q + UInt64(span)
                buffersUsed += 1
            } else if f.contains(.avail) != wrap(q) {
                throw .gap(.lap, "the descriptor at the device's position (slot \(slot(q))) was used and made available again before the recorder read it")
            } else {
                break
            }
        }
        // 3. The lap guard on the used side: how far the driver has got now (probed, not listed)
        //    bounds what it may have rewritten; a used descriptor it may have reached is discarded.
        if !usedRead.isEmpty {
            var p = a
            while p < u + UInt64(size), let f = v.flags(slot(p)), f.isAvailable(wrap: wrap(p)) { p += 1 }
            let wd = UInt32(max(0, ctx.driverWriteAhead))
            if let q = usedRead.first, PackedSnapshotGuard.usedAtRisk(position: q, driverPositionAfter: p, size: size, driverWriteAhead: wd) {
                throw .gap(.lap, "the driver may have rewritten a used descriptor before it was read (its position \(p), write-ahead \(wd), ring of \(size))")
            }
        }
        // Ids read in this poll where the device could not yet have written are certain from now on.
        for k in inFlight.indices where inFlight[k].maybeTorn && inFlight[k].start >= a0 {
            let last = inFlight[k].start + UInt64(inFlight[k].count) - 1
            inFlight[k].maybeTorn = !PackedSnapshotGuard.bodyCertain(position: last, usedEnd: u, deviceWriteAhead: UInt32(w))
        }
        // 4. Written when something was new, at the ring's first poll, and the first quiet one after news.
        let news = a != a0 || u != u0 || entries.contains { $0.kind == .packedFlags }
        if news || firstPoll || quietOwed {
            out.append(contentsOf: entries)
            out.append(TraceEvent(.poll, vq: vq, timestamp: ctx.t, p0: UInt64(PackedRing.encode(a, size: size)), p1: UInt64(PackedRing.encode(u, size: size)), flags: .sampled))
        }
        quietOwed = news
        firstPoll = false
        buffersExposed += UInt64(exposedCount - exposed0)
    }
    private var exposedCount = 0
    /// The avail scan found, at the recorder's avail position, a descriptor already used.
    private var blocked = false
    /// A gap was written: the ring is followed again from a poll that finds it drained.
    private(set) var lost = false

    /// After a gap (the trace's `ring_gap`): what was listed is forgotten, and later polls look for
    /// a drained position from the used position on, or a restart with lists in flight.
    mutating func lose() {
        lost = true
        inFlight = []
        resync = nil
    }

    /// A restart being looked for (`PackedResync`): the candidate read at an earlier poll.
    private var resync: PackedResync?
    private var resyncCooldown = 0
    static let resyncCooldownPolls = 50
    private var resyncTime: UInt64 = 0
    /// Restarts with lists in flight written (the coverage figures count them in the checker).
    private(set) var restartsInFlight = 0

    /// Tries the candidate (or reads one). On a restart, writes the lists in flight at the used
    /// position found and `poll avail=A used=X` (the checker starts judging again there, the lists
    /// as buffers whose ids it holds no one to), and sets the follower there: true.
    private mutating func restartInFlight(_ v: PackedRingView, _ ctx: PollContext, writeAhead: UInt32, out: inout [TraceEvent]) throws(Stop) -> Bool {
        if var c = resync {
            let outcome = c.confirm { v.flags($0) }
            resync = c
            switch outcome {
            case .wait: return false
            case .expired: resync = nil; resyncCooldown = Self.resyncCooldownPolls; return false
            case .restart(let j):
                let lists = c.lists[j...]
                for l in lists {
                    for d in l.descs {
                        out.append(TraceEvent(.packedDesc, vq: vq, aux: slot(d.pos), timestamp: resyncTime, p0: d.addr, p1: TraceEvent.packPacked(len: d.len, id: d.id), flags: .sampled))
                        out.append(TraceEvent(.packedFlags, vq: vq, aux: slot(d.pos), timestamp: resyncTime, p0: UInt64(d.flags.rawValue), flags: .sampled))
                    }
                }
                let x = lists.first!.start
                out.append(TraceEvent(.poll, vq: vq, timestamp: ctx.t, p0: UInt64(PackedRing.encode(c.end, size: size)), p1: UInt64(PackedRing.encode(x, size: size)), flags: .sampled))
                u = x; a = c.end
                // Read beyond the device's reach: their ids are the driver's.
                inFlight = lists.map { ($0.start, $0.count, $0.id, false, true) }
                buffersExposed += UInt64(lists.count)
                lost = false
                quietOwed = true
                firstPoll = false
                resync = nil
                restartsInFlight += 1
                return true
            }
        }
        // A candidate reads every slot: not at every poll of a ring that offers none (a transmit
        // ring with little in flight), which would slow the polls of every other ring.
        if resyncCooldown > 0 { resyncCooldown -= 1; return false }
        resync = PackedResync(size: size, deviceWriteAhead: writeAhead, near: u, flags: { v.flags($0) }, body: { v.body($0) })
        resyncTime = ctx.t
        if resync == nil { resyncCooldown = Self.resyncCooldownPolls }
        return false
    }

    /// From the used position on, the used descriptors (each slot's flags before its id and len)
    /// up to the first descriptor not made available in its lap, and whether the ring is drained
    /// there (`PackedSnapshotGuard.drained`, its three flag reads in order). nil: not drained now.
    /// `available(q)`: whether a descriptor still marked available at position q may be passed (after
    /// a gap any: the restart counts nothing).
    private func drainedScan(_ v: PackedRingView, budget: inout WorkBudget, available: (UInt64) -> Bool = { _ in true }) throws(Stop) -> (end: UInt64, used: [(pos: UInt64, id: UInt16, len: UInt32, flags: PackedRing.Flags)])? {
        var used: [(pos: UInt64, id: UInt16, len: UInt32, flags: PackedRing.Flags)] = []
        var p = u
        var before: PackedRing.Flags = []
        while true {
            guard p < u + UInt64(size) else { return nil }   // a whole lap made available: not drained
            do { try budget.spend() } catch { throw error == .stopped ? .stopped : .gap(.workBound, "one poll needed more than its bound of descriptor reads") }
            guard let f = v.flags(slot(p)) else { throw .fault("reading a descriptor's flags faulted") }
            if f.isUsed(wrap: wrap(p)) {
                guard let b = v.body(slot(p)) else { throw .fault("reading a used descriptor faulted") }
                used.append((p, b.id, b.len, f))
            } else if f.isAvailable(wrap: wrap(p)) {
                guard available(p) else { return nil }
            } else {
                // Not made available in this lap: the driver has not got here.
                guard p > u, used.last?.pos == p - 1, let again = v.flags(slot(p - 1)),
                      PackedSnapshotGuard.drained(position: p, size: size, before: before, at: f, beforeAgain: again) else { return nil }
                return (p, used)
            }
            before = f
            p += 1
        }
    }

    /// Reads lists from the avail position on: complete ones are listed and passed; a list whose
    /// first descriptor is available and a later one not is listed up to that one, and ends the scan.
    private mutating func scanAvail(_ v: PackedRingView, memory: MemoryTable, budget: inout WorkBudget, t: UInt64, into out: inout [TraceEvent]) throws(Stop) {
        while a < u + UInt64(size) {
            do { try budget.spend() } catch { throw error == .stopped ? .stopped : .gap(.workBound, "one poll needed more than its bound of descriptor reads") }
            guard let f = v.flags(slot(a)) else { throw .fault("reading a descriptor's flags faulted") }
            if f.isUsed(wrap: wrap(a)) {
                // Made available and used before it was read (the device overwrites in place).
                // At the first poll this is also what a base whose wrap counter does not match the
                // ring's memory looks like; the drained test then fails and the ring gets a gap.
                blocked = true
                return
            }
            guard f.isAvailable(wrap: wrap(a)) else { return }
            var p = a
            var list: [TraceEvent] = []
            var lastId: UInt16 = 0
            while true {
                guard p < u + UInt64(size) else { return }   // runs past what the recorder may read
                guard let fl = v.flags(slot(p)) else { throw .fault("reading a descriptor's flags faulted") }
                guard fl.isAvailable(wrap: wrap(p)) else {
                    // Overwritten by a used descriptor before it was read: the list was used (the part
                    // read is dropped).
                    if fl.isUsed(wrap: wrap(p)) { blocked = true; return }
                    // Its first descriptor available, this one not: listed as read, the scan ends here.
                    out += list
                    out.append(TraceEvent(.packedFlags, vq: vq, aux: slot(p), timestamp: t, p0: UInt64(fl.rawValue), flags: .sampled))
                    return
                }
                do { try budget.spend() } catch { throw error == .stopped ? .stopped : .gap(.workBound, "one poll needed more than its bound of descriptor reads") }
                guard let b = v.body(slot(p)) else { throw .fault("reading a descriptor faulted") }
                list.append(TraceEvent(.packedDesc, vq: vq, aux: slot(p), timestamp: t, p0: b.addr, p1: TraceEvent.packPacked(len: b.len, id: b.id), flags: .sampled))
                if fl.contains(.indirect) { try indirect(parent: slot(p), addr: b.addr, len: b.len, memory: memory, budget: &budget, t: t, into: &list) }
                list.append(TraceEvent(.packedFlags, vq: vq, aux: slot(p), timestamp: t, p0: UInt64(fl.rawValue), flags: .sampled))
                lastId = b.id
                p += 1
                if !fl.contains(.next) { break }
            }
            out += list
            inFlight.append((a, Int(p - a), lastId, true, false))
            exposedCount += 1
            a = p
        }
    }

    /// Every entry of an indirect table (len / 16 of them, at most 65536), in order.
    private func indirect(parent: UInt16, addr: UInt64, len: UInt32, memory: MemoryTable, budget: inout WorkBudget, t: UInt64, into out: inout [TraceEvent]) throws(Stop) {
        let entries = Int(min(len / PackedRing.descriptorSize, SplitRing.maxIndirectEntries))
        guard entries > 0 else { return }
        guard let table = memory.guest(addr, length: UInt64(entries) * 16) else {
            throw .gap(.unmapped, "an indirect table at guest 0x\(String(addr, radix: 16)) is outside the mapped memory table")
        }
        for k in 0..<entries {
            do { try budget.spend() } catch { throw error == .stopped ? .stopped : .gap(.workBound, "one poll needed more than its bound of descriptor reads") }
            guard let e = SplitRingView.descriptor(in: table, at: 16 * k) else { throw .fault("reading an indirect table faulted") }
            // A packed table entry: addr, len, id (bits 32-47 of the second word), flags (48-63).
            out.append(TraceEvent(.packedIndirectDesc, vq: vq, aux: UInt16(truncatingIfNeeded: k), timestamp: t, p0: e.addr, p1: e.packed, p2: UInt64(parent), flags: .sampled))
        }
    }

    /// Which listed buffer a used descriptor naming `id` ends (nil: it cannot tell), and whether the
    /// answer rests on an id it may have read torn. Never trusts a possibly torn id where the choice
    /// changes where the next used descriptor goes.
    private func match(_ id: UInt16) -> (index: Int, torn: Bool)? {
        let cands = inFlight.indices.filter { inFlight[$0].readId == id }
        if let r = cands.first(where: { inFlight[$0].restart }) {
            // A restart's list may be one the device used before the restart: trusted only as the
            // one candidate, and only after the avail side is read again (`torn`), so that a list
            // made available since with the same id is seen.
            return cands.count == 1 ? (r, true) : nil
        }
        if inOrder {
            for (k, i) in cands.enumerated() {
                if !inFlight[i].maybeTorn { return (i, false) }
                let later = cands[(k + 1)...]
                if later.contains(where: { !inFlight[$0].maybeTorn }) { continue }
                return later.isEmpty ? (i, true) : nil
            }
            return nil
        }
        let certain = cands.filter { !inFlight[$0].maybeTorn }
        if certain.count == 1 { return (certain[0], false) }
        if !certain.isEmpty || cands.count != 1 { return nil }
        let c = inFlight[cands[0]].count
        return inFlight.allSatisfy({ !$0.maybeTorn || $0.count == c }) ? (cands[0], true) : nil
    }
}
