import VirtioProtocol
import VirtqueueModel

/// Judges one split ring that was observed by polling shared memory.
///
/// A poll reads avail.idx, then the avail entries and chains of the positions it had not seen,
/// then used.idx, then the new used elements (`Specs/model.md`, "Polled observations"). Between
/// two polls the driver and the device may have done anything legal. This type looks for an order
/// of the observed exposures and completions that a legal run could have produced, and feeds that
/// order, one step at a time, to the exact model (`SplitVirtqueue`), which judges every step. A
/// finding is reported only when no such order exists, and a chain's content is judged only when
/// the poll read it while the device certainly owned it.
///
/// Why a greedy search decides it: every constraint is "this step may come only after that one"
/// (a completion after its exposure, an exposure after the completion that freed its descriptors
/// or made room, and the windows the polls put around each step), and taking any enabled step never
/// disables another. So if some legal order exists, applying enabled steps in any order finds one;
/// when no step is enabled, the next exposure and the next completion wait on each other and no
/// future observation can help (except a completion that a later poll's exposure may still explain).
public struct PolledRing: PolledRingModel {
    public let size: UInt32
    public let base: UInt16
    public private(set) var indirectAllowed: Bool
    public private(set) var eventIdx: Bool
    public private(set) var inOrder: Bool
    /// The exact model, fed the legal order found so far (nil before the first poll).
    public var ring: SplitVirtqueue? { started ? model : nil }
    /// `ring`, held directly with `started` saying whether it exists: through an optional, every
    /// `model.step(...)` moved the whole model out and back.
    private var model = PolledRing.idle
    private var started = false
    /// What `model` holds while there is no ring (shared, never used).
    private static let idle = SplitVirtqueue(size: 1)
    public private(set) var coverage = PolledCoverage()

    /// Index of the poll being read; polls before it are closed.
    private var poll = 0
    private var prevAvail: UInt16 = 0
    private var prevUsed: UInt16 = 0
    /// A poll's observations did not follow on from the previous one: nothing more is judged.
    public private(set) var broken: String?
    /// The trace has no `poll` events (an old recorder's).
    private var legacy = false
    /// The trace has `poll` events: they alone close polls.
    private var snapshots = false
    /// The ring's observations broke (`ring_gap`): the next poll is a starting observation.
    private var afterGap = false
    /// The last poll's used elements could not be trusted: its used.idx, with the next poll's
    /// avail.idx, is where judging starts again.
    private var resyncUsed: UInt16?

    // The open poll.
    /// Every descriptor read of the exposures not yet placed, in observation order: `readPool[k]` is
    /// read number `readBase + k`. Reads from `openReadStart` on belong to no avail entry yet.
    private var readPool: [DescriptorRead] = []
    private var readBase = 0
    private var openReadStart = 0
    private var openExposures: [ObservedExposure] = []
    private var openCompletions: [(pos: UInt16, id: UInt32, len: UInt32, ref: UInt64)] = []
    // Legacy traces (no `poll` events): per poll the old recorder wrote `(desc* avail_entry)+
    // avail_idx` if avail.idx moved, then `used_entry+ used_idx` if used.idx moved.
    private var legacyAvail: UInt16?
    private var legacyUsed: UInt16?
    private var legacyPolls = LegacyPolls()

    // Observed and not yet placed in the order, oldest first.
    private var exposures: [ObservedExposure] = []
    private var exposureHead = 0
    private var completions: [ObservedCompletion] = []
    private var completionHead = 0
    /// Polls of the pending completions, per id (for "is this chain's completion already observed?").
    private var pendingPolls: PendingPolls
    /// The descriptors the exposure being tried was read with (`exposureBlocker`).
    private var readOverlay: ReadOverlay
    /// Last element read in each used slot (id << 32 | len), and whether one was.
    private var lastElement: [UInt64]
    private var lastElementKnown: [Bool]
    /// Heads of buffers in flight before observation began that have since completed (their heads
    /// were distinct, so the ones still in flight have other heads).
    private var revealed: [Bool]
    private var revealedCount = 0
    /// Whether the buffers in flight before observation began were all in flight at one instant
    /// (a starting observation whose two reads of used.idx agreed), so their heads are distinct.
    private var unknownSimultaneous = true

    public init(size: UInt32, base: UInt16, indirectAllowed: Bool, eventIdx: Bool, inOrder: Bool) {
        self.size = size
        self.base = base
        self.indirectAllowed = indirectAllowed
        self.eventIdx = eventIdx
        self.inOrder = inOrder
        lastElement = Array(repeating: 0, count: Int(size))
        lastElementKnown = Array(repeating: false, count: Int(size))
        revealed = Array(repeating: false, count: Int(size))
        pendingPolls = PendingPolls(size: size)
        readOverlay = ReadOverlay(size: size)
    }

    public mutating func setFeatures(indirect: Bool, eventIdx: Bool, inOrder: Bool) {
        indirectAllowed = indirect; self.eventIdx = eventIdx; self.inOrder = inOrder
        if started { model.indirectAllowed = indirect; model.eventIdx = eventIdx; model.inOrder = inOrder }
    }

    /// SET_VRING_BASE while observed: the device's next index moves (exact-model semantics).
    public mutating func setBase(_ b: UInt16) { if started { model.setBase(b) } }
    public mutating func setBase(_ b: RingBase) { setBase(b.index) }
    public mutating func setFeatures(_ f: RingFeatures) { setFeatures(indirect: f.indirect, eventIdx: f.eventIdx, inOrder: f.inOrder) }
    public var format: RingFormat { .split }

    /// Forgets the indirect tables no chain in flight uses (the checker's budget over all rings).
    public mutating func forgetIdleIndirectTables() { if started { model.forgetIdleIndirectTables() } }
    public var indirectEntriesHeld: Int { started ? model.indirectEntriesHeld : 0 }
    public var indirectTablesHeld: Int { started ? model.indirectTablesHeld : 0 }

    /// The device interrupted the driver (a relayed call notification).
    public mutating func interrupt() { if started { model.interrupt() } }

    // MARK: observations

    public typealias Observation = PolledObservation
    public typealias PollOutcome = PolledSemantics.PollOutcome

    /// Feeds one observation; returns the outcome of the poll it closed, if it closed one.
    public mutating func observe(_ o: Observation, ref: UInt64) -> PollOutcome? {
        var closed: PollOutcome?
        switch o {
        case .descriptor(let r):
            closed = legacyStart(.availPart)
            readPool.append(r)
        case .availEntry(let pos, let head):
            closed = legacyStart(.availPart)
            let end = readBase + readPool.count
            openExposures.append(ObservedExposure(pos: pos, head: head, readStart: openReadStart, readCount: end - openReadStart, ref: ref, poll: poll))
            openReadStart = end
        case .usedEntry(let pos, let id, let len):
            closed = legacyStart(.usedPart)
            openCompletions.append((pos, id, len, ref))
        case .poll(let a, let u):
            // A trace with `poll` events delimits its polls itself.
            snapshots = true
            legacyPolls.reset()
            closed = endPoll(avail: a, used: u)
        case .usedSlot(let slot, let id, let len):
            if UInt32(slot) < size {
                lastElement[Int(slot)] = UInt64(id) << 32 | UInt64(len)
                lastElementKnown[Int(slot)] = true
            }
        case .legacyAvailIndex(let idx):
            legacy = true
            closed = legacyStart(.availDone)
            legacyAvail = idx
        case .legacyUsedIndex(let idx):
            legacy = true
            closed = legacyStart(.usedDone)
            legacyUsed = idx
        case .packedDescriptor, .packedIndirect, .packedFlags, .packedUsed, .packedUsedFlags:
            var out = PollOutcome()
            out.foreign = true
            closed = out
        }
        return closed
    }

    /// Legacy traces: an observation that cannot belong to the open poll closes it first.
    private mutating func legacyStart(_ next: LegacyPolls.Part) -> PollOutcome? {
        if snapshots { return nil }
        var g = legacyPolls
        guard g.closesPoll(before: next) else { legacyPolls = g; return nil }
        let closed = closeLegacyPoll()
        _ = legacyPolls.closesPoll(before: next)
        return closed
    }

    /// Closes an open legacy poll (the checker calls this before a control event). A poll whose
    /// avail or used part was cut short (a trace ending mid-poll) is dropped, not judged.
    public mutating func closeLegacyPoll() -> PollOutcome? {
        defer { legacyAvail = nil; legacyUsed = nil; legacyPolls.reset() }
        if legacyPolls.part == .none { return nil }
        guard legacyPolls.complete else {
            dropOpenReads(); openExposures = []; openCompletions = []
            return nil
        }
        let a = legacyAvail ?? (!started ? base : prevAvail)
        let u = legacyUsed ?? (!started ? base : prevUsed)
        return endPoll(avail: a, used: u)
    }

    // MARK: closing a poll

    /// The `poll` event: `avail` was read before the avail-side reads of this poll, `used` after them.
    private mutating func endPoll(avail a: UInt16, used u: UInt16, ref ref0: UInt64 = 0) -> PollOutcome {
        var out = PollOutcome()
        // Emptied keeping their buffers: a new array per poll was an allocation and a free per poll.
        defer {
            dropOpenReads()
            openExposures.removeAll(keepingCapacity: true)
            openCompletions.removeAll(keepingCapacity: true)
            poll += 1
        }
        if broken != nil { return out }
        if !started {
            let fromBase = !afterGap && (!openExposures.isEmpty || !openCompletions.isEmpty || (a == base && u == base))
            afterGap = false
            if fromBase {
                model = makeRing(start: base, availStart: nil); started = true
                prevAvail = base; prevUsed = base
            } else {
                // Observation begins with buffers in flight whose heads were not read. A starting
                // observation reads used.idx before avail.idx, so exactly a - u buffers were made
                // available before it and not completed before it: their heads are unknown.
                guard openExposures.isEmpty && openCompletions.isEmpty else {
                    out.anomaly = "the ring's starting observation (avail.idx \(a), used.idx \(u)) lists entries, but a start after a gap has none"
                    broken = out.anomaly
                    return out
                }
                guard restart(used: u, avail: a, slotsRead: true) else {
                    out.anomaly = "the ring's starting observation has avail.idx \(a) behind used.idx \(u)"
                    broken = out.anomaly
                    return out
                }
                // Read at one instant (used.idx the same before and after avail.idx): all in flight then.
                let k = SplitRing.distance(from: u, to: a)
                if UInt32(k) > size {
                    out.violations.append(PolledViolation(ref: ref0, violation: Violation(.vqInflight,
                        "when observation began, avail.idx was \(a) and used.idx \(u): \(k) buffers in flight at once, more than the queue size \(size)")))
                }
                return out
            }
        }
        if let usedBefore = resyncUsed {
            // The previous poll's entries could not be trusted; its used.idx was read before this
            // poll's avail.idx, so the two make a starting observation.
            resyncUsed = nil
            openExposures = []
            guard restart(used: usedBefore, avail: a, simultaneous: false) else {
                out.anomaly = "after a resynchronization avail.idx \(a) is behind used.idx \(usedBefore)"
                broken = out.anomaly
                return out
            }
        }
        // The poll must continue exactly where the previous one ended.
        let expectA = SplitRing.distance(from: prevAvail, to: a), expectU = SplitRing.distance(from: prevUsed, to: u)
        let availOK = openExposures.count == Int(expectA) && openExposures.enumerated().allSatisfy { $0.element.pos == prevAvail &+ UInt16($0.offset) }
        let usedOK = openCompletions.count == Int(expectU) && openCompletions.enumerated().allSatisfy { $0.element.pos == prevUsed &+ UInt16($0.offset) }
        let availRisk = legacy && SnapshotGuard.availSideAtRisk(prevAvail: prevAvail, avail: a, availAgain: a, used: u, size: size)
        let usedRisk = legacy && SnapshotGuard.usedSideAtRisk(prevUsed: prevUsed, used: u, usedAgain: u, availAfter: nil, size: size)
        if availRisk || usedRisk {
            coverage.exposures += UInt64(openExposures.count)
            coverage.completions += UInt64(openCompletions.count)
            // Old recorders did not guard against laps; the checker applies the guard with what
            // such a trace says (no second reads of the indices), and starts again from this poll.
            out.resynchronized = "avail.idx moved \(prevAvail) -> \(a) and used.idx \(prevUsed) -> \(u) in one poll of a ring of \(size): entries may have been overwritten before they were read, so this poll's \(usedRisk ? "entries were" : "avail entries were") not judged"
            if usedRisk {
                finish()
                resyncUsed = u
                prevAvail = a; prevUsed = u
                return out
            }
            openExposures = []
            _ = restart(used: prevUsed, avail: a, simultaneous: false)
            coverage.completions -= UInt64(openCompletions.count)   // counted again below
        } else if !(availOK && usedOK) {
            out.anomaly = "a poll (avail.idx \(a), used.idx \(u)) does not list exactly the avail positions [\(prevAvail), \(a)) and used positions [\(prevUsed), \(u)) it saw move"
            broken = out.anomaly
            return out
        }
        // avail.idx was read before used.idx, so at that moment at least a - u buffers were in flight.
        let inFlightLow = SplitRing.distance(from: u, to: a)
        if UInt32(inFlightLow) > size && inFlightLow < 0x8000 {
            out.violations.append(PolledViolation(ref: openExposures.last?.ref ?? openCompletions.last?.ref ?? 0, violation: Violation(.vqInflight,
                "a poll read avail.idx \(a) and then used.idx \(u): at least \(inFlightLow) buffers were in flight at once, more than the queue size \(size)")))
        }
        out.exposed = Int(expectA)
        out.completed = openCompletions.count
        coverage.exposures += UInt64(openExposures.count)
        coverage.completions += UInt64(openCompletions.count)
        exposures += openExposures
        for c in openCompletions {
            let slot = Int(UInt32(c.pos) & (size - 1))
            let v = UInt64(c.id) << 32 | UInt64(c.len)
            let same = lastElementKnown[slot] && lastElement[slot] == v
            completions.append(ObservedCompletion(pos: c.pos, id: c.id, len: c.len, ref: c.ref, poll: poll,
                                                  batchEnd: c.pos &+ 1 == u, mayBeStale: same || !lastElementKnown[slot], sameAsLastLap: same))
            pendingPolls.append(c.id, poll: poll)
            lastElement[slot] = v
            lastElementKnown[slot] = true
        }
        prevAvail = a; prevUsed = u
        out.violations += advance()
        out.violations += checkReadsAgainstOwners(openExposures)
        compact()
        return out
    }

    /// The ring's observations break (`ring_gap`): the next poll is a starting observation.
    public mutating func gap() {
        finish()
        lastElementKnown = Array(repeating: false, count: Int(size))
        started = false
        model = Self.idle
        afterGap = true
        resyncUsed = nil
        dropOpenReads(); openExposures = []; openCompletions = []
        legacyAvail = nil; legacyUsed = nil; legacyPolls.reset()
    }

    /// Starts judging afresh from a starting observation: used.idx `u` read before avail.idx `a`
    /// (`simultaneous`: and read again, unchanged, after it). What was pending is left undecided;
    /// which heads were in flight is forgotten.
    private mutating func restart(used u: UInt16, avail a: UInt16, simultaneous: Bool = true, slotsRead: Bool = false) -> Bool {
        guard SplitRing.distance(from: u, to: a) < 0x8000 else { return false }
        if started { coverage.restarts += 1 }
        finish()
        exposures = []; exposureHead = 0
        model = makeRing(start: u, availStart: a); started = true
        prevAvail = a; prevUsed = u
        if !slotsRead { lastElementKnown = Array(repeating: false, count: Int(size)) }
        revealed = Array(repeating: false, count: Int(size))
        revealedCount = 0
        unknownSimultaneous = simultaneous
        return true
    }

    /// Observation of the ring ends (trace end, ring stopped, restarted or resized): completions
    /// still unexplained may have been explained by an exposure after the last poll.
    public mutating func finish() {
        coverage.completionsUndecided += UInt64(completions.count - completionHead)
        completions = []; completionHead = 0; pendingPolls.removeAll()
    }

    private func makeRing(start: UInt16, availStart: UInt16?) -> SplitVirtqueue {
        SplitVirtqueue(size: size, start: start, availStart: availStart, indirectAllowed: indirectAllowed, eventIdx: eventIdx, inOrder: inOrder)
    }

    // MARK: the search for a legal order

    private var nextExposure: ObservedExposure? { exposureHead < exposures.count ? exposures[exposureHead] : nil }
    private var nextCompletion: ObservedCompletion? { completionHead < completions.count ? completions[completionHead] : nil }

    /// Exposures seen by poll p happened before that poll read avail.idx, completions seen by poll q
    /// after poll q-1 read used.idx: an exposure of poll p precedes every completion of a poll > p,
    /// and a completion of poll q precedes every exposure of a poll > q + 1.
    private func windowAllows(completion c: ObservedCompletion) -> Bool { nextExposure.map { $0.poll >= c.poll } ?? true }
    private func windowAllows(exposure e: ObservedExposure) -> Bool { nextCompletion.map { $0.poll >= e.poll - 1 } ?? true }

    private mutating func advance() -> [PolledViolation] {
        var out: [PolledViolation] = []
        while nextExposure != nil || nextCompletion != nil {
            if let c = nextCompletion, windowAllows(completion: c), inOrder, case .ready(let k) = inOrderStep() {
                out += completeInOrder(count: k)
            } else if let c = nextCompletion, windowAllows(completion: c), !inOrder, model.canComplete(c.id) {
                out += complete(c)
            } else if let e = nextExposure, windowAllows(exposure: e), exposureEnabled(e) {
                out += expose(e, forced: false)
            } else if nextExposure == nil, let c = nextCompletion, c.poll == poll, couldStillBeExposed(c) {
                // An exposure the next poll sees may still explain it.
                break
            } else if let c = nextCompletion, windowAllows(completion: c), adoptUnknown(for: c) {
                out += complete(c)
            } else if forceCompletion() {
                out += complete(nextCompletion!, forced: true)
            } else {
                out += expose(nextExposure!, forced: true)
            }
        }
        return out
    }

    private enum InOrderStep { case ready(Int), needsExposures, impossible }

    /// IN_ORDER: what the device may have done at the next used positions. A device may write only
    /// the last element of a batch, leaving earlier slots as an earlier lap left them; a batch is used
    /// at once, so all its buffers were in flight together. The batch is the shortest run of pending
    /// completions ending at one whose element must have been written (it names the buffer retired
    /// there, or the poll read used.idx right past it, or the slot changed since the last lap).
    // Mutating although it changes nothing: from the mutating search a non-mutating call copied
    // the whole judge first (and destroyed the copy after).
    private mutating func inOrderStep() -> InOrderStep {
        let r = model
        if r.unknownInFlight > 0 { return .ready(1) }
        let known = Int(r.cursor.inFlight)
        let pending = completions.count - completionHead
        var fifo = r.inFlightHeads(limit: pending)
        var k = exposureHead
        while fifo.count < pending && k < exposures.count { fifo.append(exposures[k].head); k += 1 }
        var batch: [UInt16] = []
        for j in completionHead..<completions.count {
            let rank = j - completionHead
            let c = completions[j]
            if rank < fifo.count {
                let h = fifo[rank]
                if c.id == UInt32(h) || c.batchEnd || !c.mayBeStale { return rank + 1 <= known ? .ready(rank + 1) : .needsExposures }
                batch.append(h)
            } else {
                // A buffer not seen made available yet: the element may name it, if that head can be
                // made available while the batch's earlier buffers are still in flight.
                let plausible = c.id < size && r.owner[Int(c.id)] != .device && !batch.contains(UInt16(c.id))
                if plausible { return .needsExposures }
                // The element was certainly written, and names no buffer that could be retired here.
                if c.batchEnd || !c.mayBeStale { return .impossible }
            }
        }
        return .impossible
    }

    /// IN_ORDER: `k` used positions published as one batch; only the last has its element.
    private mutating func completeInOrder(count k: Int) -> [PolledViolation] {
        var out: [PolledViolation] = []
        for i in 0..<k { out += complete(completions[completionHead], written: i == k - 1) }
        return out
    }

    /// Whether an exposure after the last poll read avail.idx could still explain `c`: one that
    /// needs no completion first (a later completion cannot come before `c`).
    // Mutating although it changes nothing: from the mutating search a non-mutating call copied
    // the whole judge first (and destroyed the copy after).
    private mutating func couldStillBeExposed(_ c: ObservedCompletion) -> Bool {
        let r = model
        guard r.cursor.allows(.publish(1)) else { return false }
        if inOrder { if case .needsExposures = inOrderStep() { return true } else { return false } }
        return c.id < size && r.owner[Int(c.id)] != .device
    }

    /// No legal order exists. The completion is the culprit unless an observed exposure could
    /// still explain it, in which case that exposure is blocked by something it broke. With IN_ORDER
    /// the buffer a completion retires is fixed, so a completion that cannot happen is the device's.
    // Mutating although it changes nothing: from the mutating search a non-mutating call copied
    // the whole judge first (and destroyed the copy after).
    private mutating func forceCompletion() -> Bool {
        guard let c = nextCompletion else { return false }
        guard let e = nextExposure else { return true }
        if !windowAllows(exposure: e) { return true }
        if !windowAllows(completion: c) { return false }
        if inOrder { return true }
        for k in exposureHead..<exposures.count where exposures[k].poll <= c.poll + 1 && UInt32(exposures[k].head) == c.id { return false }
        return true
    }

    /// Last resort, so that it is never spent on a completion an exposure explains: `c` completes
    /// one of the buffers in flight before observation began (with IN_ORDER those retire first and
    /// are handled in `complete`). Such a buffer's head may have been made available again after it
    /// completed, so a head seen since then does not rule it out: judging there may miss a double
    /// completion while such buffers are left, never invent one.
    private mutating func adoptUnknown(for c: ObservedCompletion) -> Bool {
        guard !inOrder, c.id < size, !(unknownSimultaneous && revealed[Int(c.id)]), model.adoptUnknownInFlight(head: UInt16(c.id)) else { return false }
        reveal(UInt16(c.id))
        return true
    }

    private mutating func reveal(_ h: UInt16) {
        if !revealed[Int(h)] { revealed[Int(h)] = true; revealedCount += 1 }
    }

    private mutating func dropPending(_ c: ObservedCompletion) {
        pendingPolls.removeFirst(c.id)
    }

    /// Applies the next completion. `written` false: an IN_ORDER position whose element the device
    /// did not write (inside a batch).
    private mutating func complete(_ c: ObservedCompletion, forced: Bool = false, written: Bool = true) -> [PolledViolation] {
        completionHead += 1
        dropPending(c)
        if inOrder && !forced && model.unknownInFlight > 0 {
            // One of the buffers in flight before observation began. If its element was certainly
            // written, it names its head, which was then busy all along: made available meanwhile
            // is the driver's error (that exposure came before this completion in every order the
            // polls allow, or the search would have placed this completion first).
            var v: [Violation] = []
            if c.batchEnd || !c.mayBeStale, c.id < size, model.owner[Int(c.id)] == .device {
                v.append(Violation(.vqDriverOwnership, "the buffer retired at used position \(model.cursor.used) has head \(c.id), in flight since before observation began, but the driver made head \(c.id) available again meanwhile"))
            }
            if c.batchEnd || !c.mayBeStale, c.id < size {
                if unknownSimultaneous && revealed[Int(c.id)] {
                    v.append(Violation(.vqUsedId, "used element names head \(c.id) for a second buffer that was in flight since before observation began (their heads are distinct)"))
                }
                reveal(UInt16(c.id))
            }
            model.completeUnknown()
            return v.map { PolledViolation(ref: c.ref, violation: $0) }
        }
        let pos = model.cursor.used
        var v: [Violation] = []
        // A forced completion whose slot still holds the last lap's element was published without
        // one (with IN_ORDER a forced completion is one that had to be a batch's written end).
        if written && !(forced && c.sameAsLastLap && !inOrder) {
            model.writeUsed(pos: pos, id: c.id, len: c.len, into: &v)
        }
        model.publishUsed(pos &+ 1, into: &v)
        return v.isEmpty ? [] : v.map { PolledViolation(ref: c.ref, violation: $0) }
    }

    /// Whether the poll that saw exposure `e` read its chain while the device certainly owned it:
    /// its completion is not among those seen by that poll (so it came after the poll read used.idx,
    /// hence after every read of the chain).
    // Mutating although it changes nothing: from the mutating search a non-mutating call copied
    // the whole judge first (and destroyed the copy after).
    private mutating func contentCertain(_ e: ObservedExposure) -> Bool {
        if inOrder {
            // It is retired by the (in flight + 1)-th completion from now.
            let ahead = Int(model.cursor.inFlight)
            var n = 0
            for k in completionHead..<completions.count where completions[k].poll <= e.poll { n += 1 }
            return n <= ahead
        }
        guard let first = pendingPolls.first(UInt32(e.head)) else { return true }
        return first > e.poll
    }


    private mutating func exposureEnabled(_ e: ObservedExposure) -> Bool { exposureBlocker(e) == nil }

    private mutating func exposureBlocker(_ e: ObservedExposure) -> String? {
        let certain = contentCertain(e)
        readOverlay.begin()
        if certain {
            for r in reads(of: e) { if case .table(let i) = r.place, Int(i) < Int(size) { readOverlay[Int(i)] = r.descriptor } }
        }
        let table = OverlaidReads(base: model.table, reads: readOverlay)
        // Buffers in flight since before observation began leave room for their heads only if they
        // were all in flight at once (otherwise their count says nothing about one instant).
        return model.exposureBlocker(head: e.head, table: table, described: certain, reserved: revealed, reservedCount: revealedCount, unknownAtOnce: unknownSimultaneous)
    }

    private mutating func expose(_ e: ObservedExposure, forced: Bool) -> [PolledViolation] {
        // What blocks a forced exposure; the exact model names most of it itself, but not the
        // descriptors the buffers with unknown heads must still own.
        let blocker = forced ? exposureBlocker(e) : nil
        exposureHead += 1
        var v: [Violation] = []
        if !model.cursor.allows(.publish(1)) {
            // Past the in-flight bound (forced): that is the finding, whatever the chain.
            v += model.exposeOpaque(head: e.head)
        } else if contentCertain(e) {
            coverage.chainsJudged += 1
            // The descriptors as read are what the driver wrote before exposing the chain; those the
            // device still owns are not rewritten (`checkReadsAgainstOwners` compares them instead).
            for r in reads(of: e) {
                switch r.place {
                case .table(let i):
                    if Int(i) < Int(size) && model.owner[Int(i)] != .device { model.writeDescriptor(i, r.descriptor, into: &v) }
                case .indirect(let p, let k):
                    if Int(p) < Int(size) && model.owner[Int(p)] != .device { model.writeIndirectEntry(parent: p, entry: k, r.descriptor, into: &v) }
                }
            }
            // Each step appends to `v` in place (no array returned per step).
            let pos = model.cursor.avail
            model.writeAvailEntry(pos: pos, head: e.head, into: &v)
            _ = model.publishAvail(pos &+ 1, into: &v)
        } else {
            v += model.exposeOpaque(head: e.head)
        }
        if forced, v.isEmpty, let b = blocker { v.append(Violation(.vqDriverOwnership, "driver makes head \(e.head) available at position \(e.pos), but \(b)")) }
        return v.isEmpty ? [] : v.map { PolledViolation(ref: e.ref, violation: $0) }
    }

    /// Reads of descriptors that a chain in flight, exposed with known content and not completed by
    /// the end of this poll, owned during the whole poll: they must show that content.
    // Mutating although it changes nothing: from the mutating search a non-mutating call copied
    // the whole judge first (and destroyed the copy after).
    private mutating func checkReadsAgainstOwners(_ polled: [ObservedExposure]) -> [PolledViolation] {
        guard started else { return [] }
        let r = model
        // With IN_ORDER a pending completion retires the oldest chains, whichever they are.
        if inOrder && completionHead < completions.count { return [] }
        var out: [PolledViolation] = []
        var reported = Set<UInt16>()
        for e in polled {
            for read in reads(of: e) {
                let parent: UInt16, current: Descriptor?
                switch read.place {
                case .table(let i):
                    parent = i
                    current = Int(i) < Int(size) ? r.table[Int(i)] : nil
                case .indirect(let p, let k):
                    parent = p
                    current = r.indirectEntry(parent: p, entry: k)
                }
                guard let current, current != read.descriptor, !reported.contains(parent),
                      let h = r.describedOwner(of: parent), pendingPolls.first(UInt32(h)) == nil else { continue }
                reported.insert(parent)
                let what: String
                if case .indirect(let p, let k) = read.place { what = "entry \(k) of the indirect table of descriptor \(p)" } else { what = "descriptor \(parent)" }
                out.append(PolledViolation(ref: e.ref, violation: Violation(.vqDriverOwnership,
                    "driver changed \(what) while the device owned it (chain head \(h), made available and not used by the end of this poll)")))
            }
        }
        return out
    }

    /// The descriptors the poll read for exposure `e`'s chain, in walk order.
    private func reads(of e: ObservedExposure) -> ArraySlice<DescriptorRead> {
        readPool[(e.readStart - readBase)..<(e.readStart - readBase + e.readCount)]
    }

    /// Descriptor reads that no avail entry followed (the poll ended or was dropped) are forgotten.
    private mutating func dropOpenReads() {
        readPool.removeLast(readBase + readPool.count - openReadStart)
    }

    /// Reads before the oldest exposure still held are dropped, in bulk as the exposures are.
    private mutating func compactReads() {
        var keep = openReadStart
        if exposureHead < exposures.count { keep = min(keep, exposures[exposureHead].readStart) }
        if let o = openExposures.first { keep = min(keep, o.readStart) }
        let drop = keep - readBase
        if drop == readPool.count { readPool.removeAll(keepingCapacity: true); readBase = keep }
        else if drop > 1024 && drop * 2 > readPool.count { readPool.removeFirst(drop); readBase = keep }
    }

    private mutating func compact() {
        compactReads()
        if exposureHead > 1024 && exposureHead * 2 > exposures.count { exposures.removeFirst(exposureHead); exposureHead = 0 }
        if completionHead > 1024 && completionHead * 2 > completions.count { completions.removeFirst(completionHead); completionHead = 0 }
        if exposureHead == exposures.count { exposures.removeAll(keepingCapacity: true); exposureHead = 0 }
        if completionHead == completions.count { completions.removeAll(keepingCapacity: true); completionHead = 0 }
    }
}
