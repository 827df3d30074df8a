import VirtioProtocol

/// One split virtqueue seen from both sides: the descriptor table, the avail and used rings,
/// and who owns every descriptor at every step. Each operation is one driver or device action;
/// it updates the state and returns the rules the action broke (empty when conformant).
///
/// Two modes. Exact: every action is reported in the order it happened (an instrumented
/// implementation or a hand-written trace). Sampled: values were observed by polling shared memory
/// (avail side first, then used side, per poll), so completions can be seen after re-exposures
/// that followed them, and exposures after completions of what they exposed. Sampled mode defers
/// exactly those judgements to the next poll instead of guessing; see `Specs/model.md`.
public struct SplitVirtqueue: Sendable {
    public let size: UInt32
    public var indirectAllowed: Bool
    public var eventIdx: Bool
    /// VIRTIO_F_IN_ORDER: a used element may retire a whole batch in avail order.
    public var inOrder: Bool
    public private(set) var cursor: RingCursor
    public private(set) var table: [Descriptor]
    public private(set) var owner: [Owner]

    /// Entries written for the indirect table of a main-table descriptor.
    private var indirect: [UInt16: [Descriptor]] = [:]
    private var indirectEntries = 0
    /// Indirect entries kept per queue before tables the device does not own are forgotten
    /// (a forgotten table is "not described": its chain's checks are skipped, never guessed).
    public static let indirectBudget = 1 << 20
    /// Head written in each avail slot; -1 when never written.
    private var availRing: [Int32]
    /// Chains the device owns, by head.
    private var inFlight: [UInt16: InFlight] = [:]
    /// IN_ORDER: chains in the order they were exposed (head, exposure serial); entries already
    /// returned are skipped when met.
    private var exposureOrder: [(head: UInt16, serial: UInt64)] = []
    private var exposureStart = 0
    /// Sampled IN_ORDER: positions published without an element before any exposure explained them.
    private var pendingRetirements = 0
    /// Used elements written and not yet published, by free-running position.
    private var usedWritten: [UInt16: UsedElement] = [:]
    /// Whether the trace shows the device reading avail entries (a recorder cannot).
    public private(set) var deviceReadsVisible = false
    /// No action has happened on this ring yet: SET_VRING_BASE may re-base all three indices.
    public private(set) var pristine = true
    private var exposureSerial: UInt64 = 0
    private var walkMarks: [UInt32]
    private var walkStamp: UInt32 = 0

    // Notification state.
    public private(set) var availFlags: UInt16 = 0
    public private(set) var usedEvent: UInt16 = 0
    public private(set) var usedFlags: UInt16 = 0
    public private(set) var availEvent: UInt16 = 0
    /// used.idx when the device last interrupted (start index before any).
    public private(set) var signalledUsed: UInt16
    /// The used.idx at which the device became obliged to interrupt, if it has not done so since.
    public var interruptOwed: UInt16? { owedWindow?.end }
    /// First used position of the window the owed interrupt is for.
    public var interruptOwedFrom: UInt16? { owedWindow?.start }
    /// Used positions [start, end) whose publication obliged an interrupt not yet sent.
    private var owedWindow: (start: UInt16, end: UInt16)?

    // Sampled-mode deferrals.
    private var generation: UInt64 = 0
    private var pendingExposures: [PendingExposure] = []
    private var pendingDescWrites: [PendingDescWrite] = []
    private var awaitingUsed: [AwaitingUsed] = []
    private var lastAvailObserved: UInt16?
    /// Sampled: the poller lost track (an index moved more than N between polls); heads in flight
    /// before this avail index are unknown, so completions of them are not judged.
    private var untrackedBefore: UInt16?

    struct InFlight: Sendable {
        var descriptors: [UInt16]
        var writableBytes: UInt64?
        var completing = false
        var serial: UInt64
        /// Sampled: the poll generation in which the chain was observed exposed.
        var observedIn: UInt64?
    }
    /// Sampled: chain findings held until the poll that read the chain has shown its used side.
    struct HeldFindings: Sendable { var head: UInt16; var serial: UInt64; var generation: UInt64; var violations: [Violation] }
    private var heldFindings: [HeldFindings] = []
    struct UsedElement: Sendable {
        var id: UInt32; var len: UInt32; var known: Bool
        /// Already reported as a bad completion; publishing it is not a second violation.
        var rejected = false
    }
    struct PendingExposure: Sendable { var head: UInt16; var chain: Chain; var generation: UInt64 }
    struct PendingDescWrite: Sendable { var index: UInt16; var head: UInt16; var serial: UInt64; var generation: UInt64 }
    struct AwaitingUsed: Sendable { var id: UInt32; var len: UInt32 }

    /// - Parameter start: initial value of all three indices (SET_VRING_BASE).
    public init(size: UInt32, start: UInt16 = 0, indirectAllowed: Bool = false, eventIdx: Bool = false, inOrder: Bool = false) {
        precondition(SplitRing.isValidQueueSize(size), "queue size must be validated by the caller")
        self.size = size
        self.indirectAllowed = indirectAllowed
        self.eventIdx = eventIdx
        self.inOrder = inOrder
        cursor = RingCursor(size: size, start: start)
        table = Array(repeating: .zero, count: Int(size))
        owner = Array(repeating: .driver, count: Int(size))
        availRing = Array(repeating: -1, count: Int(size))
        walkMarks = Array(repeating: 0, count: Int(size))
        signalledUsed = start
    }

    /// Number of chains the device owns.
    public var chainsInFlight: Int { inFlight.count }

    // MARK: control plane

    /// SET_VRING_BASE: on an untouched ring all indices start there; on a ring with history only
    /// the device's next index moves (vhost sets last_avail_idx; avail.idx, used.idx and the
    /// descriptors are guest memory and survive a stop and restart).
    public mutating func setBase(_ base: UInt16) {
        if pristine {
            cursor = RingCursor(size: size, start: base)
            signalledUsed = base
        } else {
            cursor.next = base
        }
    }

    // MARK: driver actions

    /// The driver writes main-table descriptor `index`.
    public mutating func writeDescriptor(_ index: UInt16, _ d: Descriptor, sampled: Bool = false) -> [Violation] {
        guard Int(index) < table.count else {
            return [Violation(.vqDescIndex, "driver writes descriptor \(index), outside the table (queue size \(size))")]
        }
        pristine = false
        let out = driverTouches(index, what: "descriptor \(index)", sampled: sampled)
        if owner[Int(index)] != .device { owner[Int(index)] = .driver }
        table[Int(index)] = d
        return out
    }

    /// The driver changes main-table descriptor `index` (or the indirect table it points to):
    /// a violation while the device owns it. Sampled: the completion that freed it may only show
    /// up in this poll's used observation, so the judgement waits for the next poll.
    private mutating func driverTouches(_ index: UInt16, what: String, sampled: Bool) -> [Violation] {
        guard owner[Int(index)] == .device else { return [] }
        if sampled, let head = headOwning(index) {
            pendingDescWrites.append(PendingDescWrite(index: index, head: head, serial: inFlight[head]!.serial, generation: generation))
            return []
        }
        return untracked ? [] : [Violation(.vqDriverOwnership, "driver changes \(what) while the device owns it (exposed and not yet used)")]
    }

    /// The driver writes entry `entry` of the indirect table that main-table descriptor `parent` points to.
    public mutating func writeIndirectEntry(parent: UInt16, entry: UInt16, _ d: Descriptor, sampled: Bool = false) -> [Violation] {
        guard Int(parent) < table.count else {
            return [Violation(.vqDescIndex, "indirect table parent \(parent) is outside the descriptor table (queue size \(size))")]
        }
        pristine = false
        let out = driverTouches(parent, what: "entry \(entry) of the indirect table of descriptor \(parent)", sampled: sampled)
        var t = indirect.removeValue(forKey: parent) ?? []
        if Int(entry) >= t.count {
            let grow = Int(entry) + 1 - t.count
            if indirectEntries + grow > Self.indirectBudget { forgetIndirectTables() }
            indirectEntries += grow
            t += Array(repeating: .zero, count: grow)
        }
        t[Int(entry)] = d
        indirect[parent] = t
        return out
    }

    /// The driver writes `head` into the avail ring at free-running position `pos`.
    public mutating func writeAvailEntry(pos: UInt16, head: UInt16, sampled: Bool = false) -> [Violation] {
        pristine = false
        var out: [Violation] = []
        let d = UInt32(SplitRing.distance(from: cursor.used, to: pos))
        // The slot of `pos` still holds a published, unreturned entry: the device may be reading it.
        if !sampled && !untracked && d % size < cursor.inFlight {
            out.append(Violation(.vqDriverOwnership, "driver overwrites avail slot \(cursor.slot(pos)) (position \(pos)) while it still holds a published entry the device owns"))
        }
        availRing[cursor.slot(pos)] = Int32(head)
        return out
    }

    /// The driver publishes avail.idx = `idx`. Returns the violations and the heads it exposed.
    public mutating func publishAvail(_ idx: UInt16, sampled: Bool = false) -> (violations: [Violation], exposed: Int) {
        pristine = false
        var out: [Violation] = []
        if sampled { out += expireDeferredExposures() }
        let old = cursor.avail
        let k = SplitRing.distance(from: old, to: idx)
        if sampled && UInt32(k) > size {
            // The poller fell a lap behind: slots were overwritten before it read them.
            resync(avail: idx)
            lastAvailObserved = idx
            generation += 1
            return (out, 0)
        }
        // Entries past the in-flight bound reuse slots of live entries; exposing them would only
        // repeat the one violation as ownership noise. Sampled: used may run ahead of the avail
        // value last observed, so no cap applies.
        let room = sampled ? Int(size) : Int(size) - Int(min(cursor.inFlight, size))
        if !sampled && cursor.inFlight + UInt32(k) > size {
            let wouldBe = UInt32(SplitRing.distance(from: cursor.used, to: idx))
            out.append(Violation(.vqInflight, "avail.idx moves \(old) -> \(idx) with used.idx at \(cursor.used): \(wouldBe) buffers in flight, more than the queue size \(size)"))
        }
        cursor.avail = idx
        var exposed = 0
        var p = old
        while p != idx && exposed < room {
            let h = availRing[cursor.slot(p)]
            p = p &+ 1
            guard h >= 0 else { continue }
            exposed += 1
            out += expose(head: UInt16(h), sampled: sampled)
        }
        if sampled {
            lastAvailObserved = idx
            out += resolveAwaitingUsed()
            generation += 1
        }
        return (out, exposed)
    }

    /// avail.flags. Suppressing interrupts before the device has sent an owed one releases it:
    /// the device reads the flags after publishing, so either value may be the one it saw.
    public mutating func setAvailFlags(_ f: UInt16) {
        availFlags = f
        if !eventIdx && f & SplitRing.availFlagNoInterrupt != 0 { owedWindow = nil }
    }

    /// used_event. Likewise, a new value that no longer asks about the owed window releases it.
    public mutating func setUsedEvent(_ v: UInt16) {
        usedEvent = v
        if eventIdx, let w = owedWindow, !SplitRing.needEvent(event: v, new: w.end, old: w.start) { owedWindow = nil }
    }

    /// Whether publishing avail.idx from `old` to `new` obliges the driver to kick, given what the
    /// device asked for (used.flags NO_NOTIFY, or avail_event with EVENT_IDX). The mirror image of
    /// `notificationRequired`; no rule enforces it yet (drivers kick at their own batch boundaries).
    public func kickRequired(old: UInt16, new: UInt16) -> Bool {
        if eventIdx { return SplitRing.needEvent(event: availEvent, new: new, old: old) }
        return usedFlags & SplitRing.usedFlagNoNotify == 0
    }

    // MARK: device actions

    /// The device reads the avail entry at free-running position `pos` and finds `head`.
    public mutating func deviceRead(pos: UInt16, head: UInt16) -> [Violation] {
        pristine = false
        if !deviceReadsVisible { deviceReadsVisible = true; cursor.next = cursor.used }
        let readAhead = SplitRing.distance(from: cursor.used, to: cursor.next)
        if SplitRing.distance(from: cursor.used, to: pos) < readAhead {
            // Reading again an entry it read and has not returned: vhost_discard_vq_desc puts
            // entries back (backpressure in vhost-net) and the device reads them again.
            cursor.next = pos &+ 1
            return checkHead(pos: pos, head: head)
        }
        if cursor.pending == 0 || SplitRing.distance(from: cursor.next, to: pos) >= UInt16(truncatingIfNeeded: cursor.pending) {
            return [Violation(.vqAvailRead, "device reads avail position \(pos) but the driver has published avail.idx \(cursor.avail) (next unread position \(cursor.next)): at or past the avail index")]
        }
        if pos != cursor.next {
            return [Violation(.vqAvailRead, "device reads avail position \(pos) out of order: the next unread position is \(cursor.next)")]
        }
        cursor.next = pos &+ 1
        return checkHead(pos: pos, head: head)
    }

    private func checkHead(pos: UInt16, head: UInt16) -> [Violation] {
        let written = availRing[cursor.slot(pos)]
        if written >= 0 && UInt16(written) != head {
            return [Violation(.vqAvailRead, "device reads head \(head) at avail position \(pos), but the driver wrote head \(written) there")]
        }
        return []
    }

    /// The device writes used element {id, len} at free-running used position `pos`.
    public mutating func writeUsed(pos: UInt16, id: UInt32, len: UInt32, sampled: Bool = false) -> [Violation] {
        pristine = false
        let d = SplitRing.distance(from: cursor.used, to: pos)
        guard UInt32(d) < size || sampled else {
            return [Violation(.vqUsedIdx, "device writes a used element at position \(pos), outside the window [\(cursor.used), \(cursor.used &+ UInt16(truncatingIfNeeded: size))) of unpublished used slots")]
        }
        guard id < size else {
            return [Violation(.vqUsedId, "used element id \(id) is outside the descriptor table (queue size \(size))")]
        }
        let head = UInt16(id)
        guard let c = inFlight[head], !c.completing else {
            if untracked {
                usedWritten[pos] = UsedElement(id: id, len: len, known: false, rejected: true)
                return []
            }
            if sampled {
                // The exposure may have happened after this poll read avail.idx; judge at the next one.
                usedWritten[pos] = UsedElement(id: id, len: len, known: false)
                return []
            }
            usedWritten[pos] = UsedElement(id: id, len: len, known: false, rejected: true)
            let why: String
            if inFlight[head] != nil { why = "already has a used element waiting to be published (double completion)" }
            else if owner[Int(id)] == .device { why = "is not the head of a chain the device owns (it is inside another chain)" }
            else if owner[Int(id)] == .used { why = "was already returned and not made available again (double completion)" }
            else { why = "was never made available" }
            return [Violation(.vqUsedId, "used element names head \(id), which \(why)")]
        }
        var out: [Violation] = []
        if let w = c.writableBytes, UInt64(len) > w, !contentUnreliable(c) {
            out.append(Violation(.vqUsedLen, "used element for head \(id) has len \(len), more than the chain's \(w) device-writable bytes"))
        }
        inFlight[head]!.completing = true
        usedWritten[pos] = UsedElement(id: id, len: len, known: true)
        return out
    }

    /// The device publishes used.idx = `idx`. Returns the violations; afterwards `interruptOwed`
    /// says whether the driver asked to be interrupted for what was just published.
    public mutating func publishUsed(_ idx: UInt16, sampled: Bool = false) -> [Violation] {
        pristine = false
        var out: [Violation] = []
        let old = cursor.used
        let k = SplitRing.distance(from: old, to: idx)
        if UInt32(k) > size {
            if sampled {
                resync(avail: lastAvailObserved ?? cursor.avail)
                cursor.used = idx
                if !deviceReadsVisible { cursor.next = idx }
                return out
            }
            return [Violation(.vqUsedIdx, "used.idx moves \(old) -> \(idx): \(k) entries at once, more than the queue size \(size)")]
        }
        let rejected = (0..<k).contains { usedWritten[old &+ $0]?.rejected == true }
        if !sampled && !rejected && !inOrder && deviceReadsVisible && UInt32(k) > cursor.consumed {
            out.append(Violation(.vqUsedIdx, "used.idx moves \(old) -> \(idx) but the device has read only \(cursor.consumed) entries it has not returned"))
        }
        var p = old
        while p != idx {
            defer { p = p &+ 1 }
            guard let e = usedWritten.removeValue(forKey: p) else {
                if inOrder && !untracked {
                    // IN_ORDER: a position without an element retires the oldest exposed buffer
                    // (one element may stand for a whole batch). Sampled: it may not be seen yet.
                    if !retireOldest() {
                        if sampled { pendingRetirements += 1 }
                        else { out.append(Violation(.vqUsedIdx, "used.idx moves \(old) -> \(idx) over position \(p), where no element was written and no exposed buffer is left to retire (IN_ORDER)")) }
                    }
                } else if !sampled && !untracked {
                    out.append(Violation(.vqUsedIdx, "used.idx moves \(old) -> \(idx) over position \(p), where no used element was written"))
                }
                continue
            }
            if e.rejected { continue }
            if e.known {
                if inOrder && !sampled, let oldest = oldestInFlight(), oldest != UInt16(e.id) {
                    out.append(Violation(.vqUsedId, "used element at position \(p) names head \(e.id), but with IN_ORDER the buffer retired there is head \(oldest)"))
                }
                release(head: UInt16(e.id))
            } else {
                awaitingUsed.append(AwaitingUsed(id: e.id, len: e.len))
            }
        }
        cursor.used = idx
        // Without traced reads the device's next index is unknown; keep it at used so that the
        // cursor stays within its invariant.
        if !deviceReadsVisible { cursor.next = idx }
        if let h = untrackedBefore, SplitRing.distance(from: h, to: idx) < 0x8000 { untrackedBefore = nil }
        if sampled, let a = lastAvailObserved {
            // Avail was read before this used value, so this under-estimates in-flight: sound.
            let lower = UInt32(SplitRing.distance(from: idx, to: a))
            if lower > size && lower <= 0x8000 {
                out.append(Violation(.vqInflight, "avail.idx \(a) observed before used.idx \(idx): at least \(lower) buffers were in flight, more than the queue size \(size)"))
            }
        }
        // Each publication is one notification check (vhost_notify): the window is what it just
        // published, as the spec's "used_event ... the index of the entry just placed".
        if k > 0 && notificationRequired(new: idx, old: old) {
            owedWindow = (owedWindow?.start ?? old, idx)
        }
        return out
    }

    /// IN_ORDER: the oldest exposed chain still in flight.
    private mutating func oldestInFlight() -> UInt16? {
        while exposureStart < exposureOrder.count {
            let (h, serial) = exposureOrder[exposureStart]
            if let c = inFlight[h], c.serial == serial { return h }
            exposureStart += 1
        }
        exposureOrder.removeAll(keepingCapacity: true)
        exposureStart = 0
        return nil
    }

    /// IN_ORDER: retires the oldest exposed chain; false when none is in flight.
    private mutating func retireOldest() -> Bool {
        guard let h = oldestInFlight() else { return false }
        release(head: h)
        if exposureStart > 4096 { exposureOrder.removeFirst(exposureStart); exposureStart = 0 }
        return true
    }

    /// used.flags. Suppressing kicks after a publication releases the kick it owed: the driver reads
    /// the flags after publishing, so either value may be the one it saw.
    public mutating func setUsedFlags(_ f: UInt16) {
        usedFlags = f
        if !eventIdx && f & SplitRing.usedFlagNoNotify != 0 { owedKick = nil }
    }
    /// avail_event. Likewise, a new value outside the owed window releases the kick.
    public mutating func setAvailEvent(_ v: UInt16) {
        availEvent = v
        if eventIdx, let w = owedKick, !SplitRing.needEvent(event: v, new: w.end, old: w.start) { owedKick = nil }
    }

    /// The device interrupts the driver (used buffer notification).
    public mutating func interrupt() {
        signalledUsed = cursor.used
        owedWindow = nil
    }

    /// Whether publishing used positions [old, new) obliges the device to notify, given what the
    /// driver asked: with EVENT_IDX when used_event lies in the window, else unless NO_INTERRUPT.
    public func notificationRequired(new: UInt16, old: UInt16) -> Bool {
        if eventIdx { return SplitRing.needEvent(event: usedEvent, new: new, old: old) }
        return availFlags & SplitRing.availFlagNoInterrupt == 0
    }

    // MARK: internals

    private var untracked: Bool { untrackedBefore != nil }

    /// Sampled: a chain completed within the poll that observed it exposed. The poller read its
    /// descriptors after reading avail.idx, so the driver may already have reclaimed and rewritten
    /// them: what was read says nothing reliable about the chain the device used.
    private func contentUnreliable(_ c: InFlight) -> Bool {
        guard let seen = c.observedIn else { return false }
        return generation <= seen + 1
    }

    private func headOwning(_ index: UInt16) -> UInt16? {
        for (h, c) in inFlight where c.descriptors.contains(index) { return h }
        return nil
    }

    private mutating func expose(head: UInt16, sampled: Bool, generation deferredSince: UInt64? = nil) -> [Violation] {
        walkStamp &+= 1
        if walkStamp == 0 { walkMarks = Array(repeating: 0, count: walkMarks.count); walkStamp = 1 }
        let owner = self.owner
        let indirect = self.indirect
        let chain = ChainWalker.walk(head: head, table: table, indirectAllowed: indirectAllowed, inOrder: inOrder,
                                     stopAt: { owner[Int($0)] == .device }, seen: &walkMarks, stamp: walkStamp) { indirect[$0] }
        var out = chain.violations
        // A head outside the table exposes nothing the device could own.
        guard Int(head) < table.count else { return out }
        if let busy = chain.busy {
            if sampled {
                // The chain is walked again once the completion that frees it shows up; its
                // findings come from that full walk.
                pendingExposures.append(PendingExposure(head: head, chain: chain, generation: deferredSince ?? generation))
                return []
            }
            if !untracked {
                out.append(Violation(.vqDriverOwnership, "driver re-exposes descriptor \(busy) (chain head \(head)) while the device still owns it"))
            }
            return out
        }
        adopt(head: head, chain: chain, sampled: sampled)
        if sampled && !out.isEmpty {
            heldFindings.append(HeldFindings(head: head, serial: exposureSerial, generation: generation, violations: out))
            return []
        }
        return out
    }

    private mutating func adopt(head: UInt16, chain: Chain, sampled: Bool = false) {
        for d in chain.descriptors { owner[Int(d)] = .device }
        exposureSerial += 1
        inFlight[head] = InFlight(descriptors: chain.descriptors, writableBytes: chain.writableBytes, serial: exposureSerial,
                                  observedIn: sampled ? generation : nil)
        if inOrder { exposureOrder.append((head, exposureSerial)) }
    }

    private mutating func release(head: UInt16) {
        guard let c = inFlight.removeValue(forKey: head) else { return }
        if contentUnreliable(c) { heldFindings.removeAll { $0.head == head && $0.serial == c.serial } }
        for d in c.descriptors { owner[Int(d)] = .used }
        // A re-exposure seen before this completion (sampled) can now take effect. It is walked
        // again (the first walk stopped at the busy descriptor); its chain findings were already
        // reported then, so the second walk's are dropped.
        if pendingExposures.contains(where: { $0.chain.busy.map { owner[Int($0)] != .device } ?? true }) {
            let all = pendingExposures
            pendingExposures = []
            for p in all {
                if p.chain.busy.map({ owner[Int($0)] != .device }) ?? true {
                    _ = expose(head: p.head, sampled: true, generation: p.generation)
                } else {
                    pendingExposures.append(p)
                }
            }
        }
    }

    /// Sampled, fell behind: forget ownership and judge again from fresh observations.
    private mutating func resync(avail: UInt16) {
        owner = Array(repeating: .driver, count: owner.count)
        inFlight = [:]
        usedWritten = [:]
        exposureOrder = []
        exposureStart = 0
        pendingRetirements = 0
        heldFindings = []
        pendingExposures = []
        pendingDescWrites = []
        awaitingUsed = []
        owedWindow = nil
        cursor.avail = avail
        untrackedBefore = avail
    }

    private mutating func forgetIndirectTables() {
        for parent in Array(indirect.keys) where owner[Int(parent)] != .device {
            indirectEntries -= indirect.removeValue(forKey: parent)?.count ?? 0
        }
    }

    /// Sampled: re-exposures and descriptor writes from an earlier poll whose completion never came.
    private mutating func expireDeferredExposures() -> [Violation] {
        var out: [Violation] = []
        // Chains whose poll ended without their completion: what was read was what the device got.
        heldFindings.removeAll { h in
            guard h.generation < generation else { return false }
            out += h.violations
            return true
        }
        pendingExposures.removeAll { p in
            guard p.generation < generation else { return false }
            out.append(Violation(.vqDriverOwnership, "driver re-exposed chain head \(p.head) while the device still owned it, and no completion followed"))
            return true
        }
        pendingDescWrites.removeAll { w in
            guard w.generation < generation else { return false }
            if let c = inFlight[w.head], c.serial == w.serial {
                out.append(Violation(.vqDriverOwnership, "driver changed descriptor \(w.index) while the device owned it (chain head \(w.head)), and no completion followed"))
            }
            return true
        }
        return out
    }

    /// Sampled: used elements whose head was unknown when observed must be explained by now.
    private mutating func resolveAwaitingUsed() -> [Violation] {
        var out: [Violation] = []
        for a in awaitingUsed {
            // The chain was read after its completion was seen: its length proves nothing.
            if inFlight[UInt16(a.id)] != nil {
                release(head: UInt16(a.id))
            } else if !untracked {
                out.append(Violation(.vqUsedId, "used element names head \(a.id), which was never made available"))
            }
        }
        awaitingUsed = []
        // IN_ORDER positions published before the exposures they retire were observed.
        while pendingRetirements > 0 {
            pendingRetirements -= 1
            if !retireOldest() && !untracked {
                out.append(Violation(.vqUsedIdx, "used.idx moved over a position with no element, and no exposed buffer was there to retire (IN_ORDER)"))
            }
        }
        // Unpublished elements with unknown heads: resolve them the same way.
        for (pos, e) in usedWritten where !e.known && !e.rejected {
            if let c = inFlight[UInt16(e.id)], !c.completing {
                inFlight[UInt16(e.id)]!.completing = true
                usedWritten[pos]!.known = true
            } else {
                usedWritten[pos] = nil
                if !untracked { out.append(Violation(.vqUsedId, "used element names head \(e.id), which was never made available")) }
            }
        }
        return out
    }

    // MARK: kicks (available buffer notifications) and chain views

    /// Avail positions [start, end) whose publication obliged a kick not yet sent.
    private var owedKick: (start: UInt16, end: UInt16)?
    /// The trace shows kicks on this ring, so a missing one can be judged (a trace may leave them out).
    public private(set) var kicksSeen = false

    /// The kick owed, as the avail window it is for.
    public var kickOwed: (start: UInt16, end: UInt16)? { owedKick }

    /// The driver published avail positions [old, new): one publication, which the driver's
    /// notification check may cover alone, so the window is this publication's (as for interrupts).
    public mutating func noteAvailPublished(old: UInt16, new: UInt16) {
        guard old != new, kickRequired(old: old, new: new) else { return }
        owedKick = (owedKick?.start ?? old, new)
    }

    /// The driver kicked: every owed publication is notified.
    public mutating func kick() {
        kicksSeen = true
        owedKick = nil
    }

    /// The ring stopped or was rebuilt: nothing the driver published before is owed a kick here.
    public mutating func releaseKick() { owedKick = nil }

    /// Heads of the chains in flight.
    public var inFlightHeads: [UInt16] { Array(inFlight.keys) }

    /// Whether the chain with head `head` is in flight (made available, not yet returned).
    public func isInFlight(head: UInt16) -> Bool { inFlight[head] != nil }

    /// The head the driver wrote in the avail slot of free-running position `pos`, if any.
    public func availHead(at pos: UInt16) -> UInt16? {
        let h = availRing[cursor.slot(pos)]
        return h >= 0 ? UInt16(h) : nil
    }

    /// The buffers of the chain in flight with head `head`, in chain order (an indirect table's
    /// entries in place of the descriptor that points to it), and the indirect tables themselves;
    /// nil when the chain is not in flight or an indirect table was never described.
    public func chainBuffers(head: UInt16) -> (buffers: [Descriptor], tables: [Descriptor])? {
        guard inFlight[head] != nil else { return nil }
        // Capture the indirect tables only: a closure over self would copy the whole ring model.
        let tables = indirect
        return ChainWalker.buffers(head: head, table: table) { tables[$0] }
    }

    /// Device-writable bytes of the chain in flight with head `head` (nil: unknown).
    public func writableBytes(head: UInt16) -> UInt64? { inFlight[head]?.writableBytes }

}
