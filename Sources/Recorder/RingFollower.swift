import PolledSemantics
import TraceFormat
import VhostUser
import VirtioProtocol

/// A vring as the front-end configured it (the latest SET_VRING_NUM / ADDR / BASE).
struct RingConfig: Equatable {
    var size: UInt32 = 0
    var desc: UInt64 = 0
    var avail: UInt64 = 0
    var used: UInt64 = 0
    var addrSet = false
    var base: UInt16 = 0
    /// Bits 16-31 of SET_VRING_BASE's num: for packed rings QEMU sends its used position there
    /// (index, wrap counter in bit 31), DPDK virtio-user nothing.
    var baseUsed: UInt16 = 0
}

/// What a poll needs from the capture: the time stamp, the write-ahead bound, the stop condition.
struct PollContext {
    var t: UInt64
    /// W: entries a driver (device) may have written beyond the index it published.
    var writeAhead: Int
    /// The driver's write-ahead on packed rings (`RecordOptions.driverWriteAhead`).
    var driverWriteAhead: Int
    var stop: () -> Bool
}

/// Follows one split ring by polling the front-end's memory and writes what it sees as snapshots
/// (`Specs/trace-format.md` "Sampled traces", `Specs/recorder.md` "Sampling"). Per poll:
/// the avail side [lastAvail, A) with each chain read as it is now, then the used side
/// [lastUsed, U), then `poll avail=A used=U`; a poll whose entries may have been overwritten while
/// they were read (the lap guard), that faulted, or that exceeded the work bound is discarded and
/// becomes a `ring_gap` followed by a starting observation.
struct RingFollower {
    enum Phase: Equatable {
        /// Not started, or stopped by GET_VRING_BASE / RESET_OWNER / the end of a session.
        case stopped
        /// Started, in a format the recorder does not follow (packed, an invalid size): never polled.
        case notFollowed
        /// Started, but its parts are not inside the mapped memory; waits for a table that covers it.
        case unmapped
        /// The next poll takes a starting observation (`first`: the ring's start after its kick).
        case starting(first: Bool)
        case following
    }

    let vq: UInt16
    var config = RingConfig()
    /// The configuration the ring was started with (later NUM/ADDR/BASE apply at the next start).
    private var started = RingConfig()
    private(set) var phase: Phase = .stopped
    private var view: SplitRingView?
    private(set) var lastAvail: UInt16 = 0
    private(set) var lastUsed: UInt16 = 0
    /// The last poll saw something new, so the next quiet one is written (it closes the snapshot).
    private var quietOwed = false
    /// A gap was written and no poll has followed it yet.
    private var inGap = false
    private var walker = ChainWalker()
    private var heads: [UInt16] = []
    private var elems: [UInt64] = []

    /// Why this ring was not (fully) followed, one line per reason with how often; for the summary.
    private(set) var problems: [(reason: RingGapReason, detail: String, count: Int)] = []
    /// Gaps written so far, and the latest one.
    private(set) var gapCount = 0
    private(set) var lastGap: (reason: RingGapReason, detail: String)?
    private(set) var buffersExposed: UInt64 = 0
    private(set) var buffersUsed: UInt64 = 0
    /// A packed ring is followed by its own follower (positions with wrap counters, no indices).
    private var packed: PackedRingFollower?
    private var packedView: PackedRingView?

    init(vq: UInt16) { self.vq = vq }

    /// Whether polls read this ring.
    var isPolled: Bool {
        switch phase {
        case .following, .starting: return true
        default: return false
        }
    }

    /// Per-poll bound on descriptor reads: generous for any honest driver (every slot exposed,
    /// with chains and indirect tables averaging several entries each), and what caps a looping
    /// chain walked from every slot or indirect tables of 65536 entries.
    var workBound: Int { 65536 + 4 * Int(started.size) }

    // MARK: lifecycle

    /// The front-end's SET_VRING_KICK reached the back-end: the ring starts (again) from its base.
    mutating func start(memory: MemoryTable, packed isPacked: Bool, inOrder: Bool = false, t: UInt64, out: inout [TraceEvent]) {
        started = config
        view = nil
        quietOwed = false
        inGap = false
        packed = nil
        packedView = nil
        if isPacked {
            // Packed rings: any size up to 32768, the base's index in bits 0-14 and wrap in bit 15.
            let base = RingFormat.packed.base(UInt64(started.base))
            guard RingFormat.packed.isValidQueueSize(started.size), UInt32(base.index) < started.size else {
                phase = .notFollowed
                gap(.formatNotFollowed, "queue size \(started.size) with base \(started.base) is not a packed ring the recorder can follow", t: t, out: &out)
                return
            }
            guard started.addrSet, let v = PackedRingView(memory: memory, size: started.size, desc: started.desc) else {
                // Not followed later either: a packed ring cannot be picked up in the middle.
                phase = .notFollowed
                gap(.unmapped, started.addrSet ? "the descriptor ring at 0x\(hex(started.desc)) (size \(started.size)) is not inside the mapped memory table" : "no SET_VRING_ADDR before the ring started", t: t, out: &out)
                return
            }
            packedView = v
            packed = PackedRingFollower(vq: vq, size: started.size, base: base, inOrder: inOrder)
            phase = .following
            return
        }
        guard SplitRing.isValidQueueSize(started.size) else {
            phase = .notFollowed
            gap(.formatNotFollowed, "queue size \(started.size) is not a valid split ring size", t: t, out: &out)
            return
        }
        phase = .starting(first: true)
        resolve(memory: memory, t: t, out: &out)
    }

    mutating func stop() {
        phase = .stopped
        view = nil
        packed = nil
        packedView = nil
    }

    /// The memory table changed: find the ring's parts again.
    mutating func memoryChanged(_ memory: MemoryTable, t: UInt64, out: inout [TraceEvent]) {
        if packed != nil, phase == .following {
            packedView = PackedRingView(memory: memory, size: started.size, desc: started.desc)
            if packedView == nil {
                packed = nil
                phase = .notFollowed
                gap(.unmapped, "the descriptor ring is no longer inside the mapped memory table", t: t, out: &out)
            }
            return
        }
        switch phase {
        case .following, .starting, .unmapped: resolve(memory: memory, t: t, out: &out)
        default: break
        }
    }

    private mutating func resolve(memory: MemoryTable, t: UInt64, out: inout [TraceEvent]) {
        let s = started
        view = s.addrSet ? SplitRingView(memory: memory, size: s.size, desc: s.desc, avail: s.avail, used: s.used) : nil
        if view == nil {
            if phase != .unmapped {
                let why = s.addrSet
                    ? "ring addresses (desc 0x\(hex(s.desc)), avail 0x\(hex(s.avail)), used 0x\(hex(s.used)), size \(s.size)) are not inside the mapped memory table"
                    : "no SET_VRING_ADDR before the ring started"
                phase = .unmapped
                gap(.unmapped, why, t: t, out: &out)
            }
        } else if phase == .unmapped {
            phase = .starting(first: false)
        }
    }

    // MARK: polling

    mutating func poll(memory: MemoryTable, _ ctx: PollContext, out: inout [TraceEvent]) {
        if var p = packed, let v = packedView, phase == .following {
            do {
                try p.poll(v, memory: memory, ctx, workBound: workBound, out: &out)
                packed = p
                buffersExposed = p.buffersExposed
                buffersUsed = p.buffersUsed
            } catch {
                switch error {
                case .stopped: return
                case .fault(let why):
                    packed = nil
                    phase = .notFollowed
                    gap(.memoryFault, why, t: ctx.t, out: &out)
                case .gap(let reason, let why):
                    // Followed again from a poll that finds the ring drained.
                    p.lose()
                    packed = p
                    gap(reason, why, t: ctx.t, out: &out)
                }
            }
            return
        }
        guard let v = view else { return }
        switch phase {
        case .starting(let first): startingObservation(v, memory: memory, first: first, ctx, out: &out)
        case .following: snapshot(v, memory: memory, force: false, ctx, out: &out)
        default: return
        }
    }

    /// A ring's first poll after its start or a gap (`Specs/trace-format.md` "Starting
    /// observations"). First the used ring's slots, as they are now (`used_slot`: with IN_ORDER a
    /// device may leave slots inside a batch unwritten). Then, at the start with used.idx still at the
    /// base, every buffer in flight sits at a position in [base, A0): those are read as a normal poll
    /// from (base, base). Otherwise used.idx, avail.idx and used.idx again, until both used.idx reads
    /// agree: the A0 - U0 buffers were in flight at one instant; only `poll avail=A0 used=U0` is written.
    private mutating func startingObservation(_ v: SplitRingView, memory: MemoryTable, first: Bool, _ ctx: PollContext, out: inout [TraceEvent]) {
        guard let u0 = v.usedIdx() else {
            if !inGap { gap(.memoryFault, "reading the ring's indices faulted", t: ctx.t, out: &out) }
            phase = .starting(first: false)
            return
        }
        if first && u0 == started.base {
            guard emitUsedSlots(v, ctx, out: &out) else { return }
            lastAvail = started.base
            lastUsed = started.base
            phase = .following
            snapshot(v, memory: memory, force: true, ctx, out: &out)
            return
        }
        // Used.idx must not move while avail.idx is read; a busy ring gets a few tries per poll.
        for _ in 0..<Self.startAttempts {
            guard let u1 = v.usedIdx(), let a0 = v.availIdx(), let u2 = v.usedIdx() else {
                if !inGap { gap(.memoryFault, "reading the ring's indices faulted", t: ctx.t, out: &out) }
                phase = .starting(first: false)
                return
            }
            guard u1 == u2 else { continue }
            guard emitUsedSlots(v, ctx, out: &out) else { return }
            out.append(TraceEvent(.poll, vq: vq, timestamp: ctx.t, p0: UInt64(a0), p1: UInt64(u1), flags: .sampled))
            lastAvail = a0
            lastUsed = u1
            quietOwed = false
            inGap = false
            phase = .following
            return
        }
        // Not this poll: the next one tries again (the ring stays in a gap until then).
        phase = .starting(first: false)
    }

    static let startAttempts = 8

    /// `used_slot` for every slot of the used ring, as it is now.
    private mutating func emitUsedSlots(_ v: SplitRingView, _ ctx: PollContext, out: inout [TraceEvent]) -> Bool {
        guard v.usedElems(from: 0, count: Int(v.size), into: &elems) else {
            if !inGap { gap(.memoryFault, "reading the used ring faulted", t: ctx.t, out: &out) }
            phase = .starting(first: false)
            return false
        }
        for (slot, raw) in elems.enumerated() {
            out.append(TraceEvent(.usedSlot, vq: vq, timestamp: ctx.t, p0: UInt64(slot), p1: raw & 0xFFFF_FFFF, p2: raw >> 32, flags: .sampled))
        }
        return true
    }

    private enum Discard: Error { case gap(RingGapReason, String), fault(String), stopped }

    /// One poll from (lastAvail, lastUsed), the steps of `Specs/recorder.md` "Sampling".
    private mutating func snapshot(_ v: SplitRingView, memory: MemoryTable, force: Bool, _ ctx: PollContext, out: inout [TraceEvent]) {
        // The poll's events go straight after what `out` holds; a discarded poll takes them back.
        let mark = out.count
        let n = Int(v.size), w = ctx.writeAhead
        var budget = WorkBudget(workBound, stop: ctx.stop)
        do throws(Discard) {
            // 1. The avail side.
            guard let a = v.availIdx() else { throw .fault("reading avail.idx faulted") }
            let m = Int(a &- lastAvail)
            if m > n {
                throw .gap(.lap, "avail.idx moved by \(m) since the last poll (queue size \(n))")
            }
            if m > 0 {
                guard v.availSlots(from: lastAvail, count: m, into: &heads) else { throw .fault("reading the avail ring faulted") }
                for (k, head) in heads.enumerated() {
                    do { try budget.spend() } catch { throw error == .stopped ? .stopped : .gap(.workBound, workMessage(n)) }
                    do {
                        try walker.walk(head: head, ring: v, memory: memory, vq: vq, t: ctx.t, budget: &budget, into: &out)
                    } catch {
                        switch error {
                        case .fault: throw .fault("reading a descriptor faulted")
                        case .unmappedIndirect(let addr):
                            throw .gap(.unmapped, "an indirect table at guest 0x\(hex(addr)) is outside the mapped memory table")
                        case .budget(.stopped): throw .stopped
                        case .budget(.bound): throw .gap(.workBound, workMessage(n))
                        }
                    }
                    out.append(TraceEvent(.availEntry, vq: vq, aux: head, timestamp: ctx.t, p0: UInt64(lastAvail &+ UInt16(k)), flags: .sampled))
                }
            }
            guard let a2 = v.availIdx() else { throw .fault("reading avail.idx faulted") }
            // 2. The used side.
            guard let u = v.usedIdx() else { throw .fault("reading used.idx faulted") }
            let c = Int(u &- lastUsed)
            if c > n {
                throw .gap(.lap, "used.idx moved by \(c) since the last poll (queue size \(n))")
            }
            if c > 0 {
                guard v.usedElems(from: lastUsed, count: c, into: &elems) else { throw .fault("reading the used ring faulted") }
                for (k, raw) in elems.enumerated() {
                    out.append(TraceEvent(.usedEntry, vq: vq, timestamp: ctx.t, p0: UInt64(lastUsed &+ UInt16(k)),
                                              p1: raw & 0xFFFF_FFFF, p2: raw >> 32, flags: .sampled))
                }
            }
            guard let u2 = v.usedIdx() else { throw .fault("reading used.idx faulted") }
            // 3. The lap guard (`SnapshotGuard`, one definition with the checker's): could a slot read
            //    in this poll have been rewritten before it was read?
            guard let a3 = v.availIdx() else { throw .fault("reading avail.idx faulted") }
            if SnapshotGuard.availSideAtRisk(prevAvail: lastAvail, avail: a, availAgain: a2, used: u, size: UInt32(n), writeAhead: UInt32(w)) {
                throw .gap(.lap, "\(m) avail entries read while used.idx passed them and the driver published \(Int(a2 &- a)) more (queue size \(n), write-ahead \(w))")
            }
            if SnapshotGuard.usedSideAtRisk(prevUsed: lastUsed, used: u, usedAgain: u2, availAfter: a3, size: UInt32(n), writeAhead: UInt32(w)) {
                throw .gap(.lap, "\(c) used elements read while the device published \(Int(u2 &- u)) more (queue size \(n), write-ahead \(w))")
            }
            // 4. Written only when something was new (the entries are in `out` already), plus the
            //    first quiet poll after that.
            let news = m > 0 || c > 0
            if news || force || quietOwed {
                out.append(TraceEvent(.poll, vq: vq, timestamp: ctx.t, p0: UInt64(a), p1: UInt64(u), flags: .sampled))
                inGap = false
            }
            quietOwed = news
            lastAvail = a
            lastUsed = u
            buffersExposed += UInt64(m)
            buffersUsed += UInt64(c)
        } catch {
            out.removeSubrange(mark...)
            switch error {
            case .stopped:
                return   // the capture is ending; nothing of this poll is written
            case .fault(let why):
                gap(.memoryFault, why, t: ctx.t, out: &out)
                phase = .starting(first: false)
            case .gap(let reason, let why):
                gap(reason, why, t: ctx.t, out: &out)
                startingObservation(v, memory: memory, first: false, ctx, out: &out)
            }
        }
    }

    private func workMessage(_ n: Int) -> String {
        "one poll needed more than \(workBound) descriptor reads (queue size \(n)): looping chains or huge indirect tables"
    }

    private mutating func gap(_ reason: RingGapReason, _ detail: String, t: UInt64, out: inout [TraceEvent]) {
        out.append(TraceEvent(.ringGap, vq: vq, timestamp: t, p0: UInt64(reason.rawValue), flags: .sampled))
        inGap = true
        quietOwed = false
        gapCount += 1
        lastGap = (reason, detail)
        if let k = problems.firstIndex(where: { $0.reason == reason }) {
            problems[k].count += 1
            problems[k].detail = detail
        } else {
            problems.append((reason, detail, 1))
        }
    }

    private func hex(_ v: UInt64) -> String { String(v, radix: 16) }
}
