import VirtioProtocol

/// One split virtqueue seen from both sides: the descriptor table, the avail and used rings,
/// and who owns every descriptor at every step. Each operation is one driver or device action,
/// in the order it happened; it updates the state and returns the rules the action broke (empty
/// when conformant). The index guards are `RingCursor`'s, the relation `prove` proves.
///
/// The model is exact: it judges a sequence of actions. Observations made by polling shared memory
/// are turned into such a sequence, where one exists, by `PolledSemantics`, which uses the extra
/// entry points at the end of this file (chains whose content was not observed, buffers in flight
/// before observation began).
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
    private var indirect: [UInt16: IndirectTable] = [:]
    private var indirectEntries = 0
    /// Indirect entries kept per queue before tables the device does not own are forgotten
    /// (a forgotten table is "not described": its chain's checks are skipped, never guessed).
    public static let indirectBudget = 1 << 20
    /// Head written in each avail slot; -1 when never written.
    private var availRing: [Int32]
    /// Chains the device owns, by head.
    private var inFlight: HeadTable<InFlight>
    /// IN_ORDER: chains in the order they were exposed (head, exposure serial); entries already
    /// returned are skipped when met.
    private var exposureOrder: [(head: UInt16, serial: UInt64)] = []
    private var exposureStart = 0
    /// Used elements written and not yet published, by free-running position.
    private var usedWritten: PositionTable<UsedElement>
    /// Whether the trace shows the device reading avail entries (a recorder cannot).
    public private(set) var deviceReadsVisible = false
    /// No action has happened on this ring yet: SET_VRING_BASE may re-base all three indices.
    public private(set) var pristine = true
    private var exposureSerial: UInt64 = 0
    /// Descriptors the device owns (chains in flight with known heads).
    public private(set) var deviceOwned = 0
    /// For each descriptor the device owns, the head of the chain it belongs to (-1 when none).
    private var chainOf: [Int32]
    /// For each descriptor the device owns, the next descriptor of its chain (-1 after the last):
    /// each chain in flight is a list from its head through this array, so exposing one allocates
    /// nothing. A descriptor the device owns belongs to one chain only (a chain is exposed only
    /// when none of its descriptors is the device's).
    private var chainLink: [Int32]
    /// The chain `expose` walks, reused from walk to walk.
    private var walked: [UInt16] = []
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
    /// Avail positions [start, end) whose publication obliged a kick not yet sent.
    private var kickWindow: (start: UInt16, end: UInt16)?
    /// The trace shows kicks on this ring, so a missing one can be judged (a trace may leave them out).
    public private(set) var kicksSeen = false

    struct InFlight: Sendable {
        /// nil when the chain's content is unknown (an indirect table never described, or a chain
        /// whose exposure was not observed): its used length is then not judged.
        var writableBytes: UInt64?
        var completing = false
        var serial: UInt64
        /// The chain's descriptors were never observed as exposed: only its head is known to be owned.
        var opaque = false
    }
    struct UsedElement: Sendable {
        var id: UInt32; var len: UInt32
        /// Already reported as a bad completion; publishing it is not a second violation.
        var rejected = false
    }

    /// - Parameters:
    ///   - start: initial value of all three indices (SET_VRING_BASE).
    ///   - availStart: avail.idx when observation begins, if it is ahead of `start`: the buffers in
    ///     between are in flight with unknown heads (see `adoptUnknownInFlight`).
    public init(size: UInt32, start: UInt16 = 0, availStart: UInt16? = nil, indirectAllowed: Bool = false, eventIdx: Bool = false, inOrder: Bool = false) {
        precondition(SplitRing.isValidQueueSize(size), "queue size must be validated by the caller")
        self.size = size
        self.indirectAllowed = indirectAllowed
        self.eventIdx = eventIdx
        self.inOrder = inOrder
        cursor = RingCursor(size: size, avail: availStart ?? start, next: start, used: start)
        table = Array(repeating: .zero, count: Int(size))
        owner = Array(repeating: .driver, count: Int(size))
        availRing = Array(repeating: -1, count: Int(size))
        walkMarks = Array(repeating: 0, count: Int(size))
        chainOf = Array(repeating: -1, count: Int(size))
        chainLink = Array(repeating: -1, count: Int(size))
        inFlight = HeadTable(size: size)
        usedWritten = PositionTable(size: size)
        signalledUsed = start
        if availStart != nil { pristine = false }
    }

    /// Number of chains the device owns whose heads are known.
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
    public mutating func writeDescriptor(_ index: UInt16, _ d: Descriptor) -> [Violation] {
        var out: [Violation] = []
        writeDescriptor(index, d, into: &out)
        return out
    }

    /// `writeDescriptor`, appending to `out` (the event path: no array returned per step).
    public mutating func writeDescriptor(_ index: UInt16, _ d: Descriptor, into out: inout [Violation]) {
        guard Int(index) < table.count else {
            out.append(Violation(.vqDescIndex, "driver writes descriptor \(index), outside the table (queue size \(size))"))
            return
        }
        pristine = false
        driverTouches(index, what: "descriptor \(index)", into: &out)
        if owner[Int(index)] != .device { owner[Int(index)] = .driver }
        table[Int(index)] = d
    }

    /// The driver changes main-table descriptor `index` (or the indirect table it points to):
    /// a violation while the device owns it.
    // `what` is rendered only for a finding: text built per descriptor write cost more than the rule.
    private func driverTouches(_ index: UInt16, what: @autoclosure () -> String, into out: inout [Violation]) {
        guard owner[Int(index)] == .device else { return }
        out.append(Violation(.vqDriverOwnership, "driver changes \(what()) while the device owns it (exposed and not yet used)"))
    }

    /// The driver writes entry `entry` of the indirect table that main-table descriptor `parent` points to.
    public mutating func writeIndirectEntry(parent: UInt16, entry: UInt16, _ d: Descriptor) -> [Violation] {
        var out: [Violation] = []
        writeIndirectEntry(parent: parent, entry: entry, d, into: &out)
        return out
    }

    public mutating func writeIndirectEntry(parent: UInt16, entry: UInt16, _ d: Descriptor, into out: inout [Violation]) {
        guard Int(parent) < table.count else {
            out.append(Violation(.vqDescIndex, "indirect table parent \(parent) is outside the descriptor table (queue size \(size))"))
            return
        }
        pristine = false
        driverTouches(parent, what: "entry \(entry) of the indirect table of descriptor \(parent)", into: &out)
        var t = indirect.removeValue(forKey: parent) ?? IndirectTable()
        let before = t.cost
        t.set(entry, d)
        let grow = t.cost - before
        if grow > 0 && indirectEntries + grow > Self.indirectBudget { forgetIndirectTables() }
        indirectEntries += grow
        indirect[parent] = t
    }

    /// The driver writes `head` into the avail ring at free-running position `pos`.
    public mutating func writeAvailEntry(pos: UInt16, head: UInt16) -> [Violation] {
        var out: [Violation] = []
        writeAvailEntry(pos: pos, head: head, into: &out)
        return out
    }

    public mutating func writeAvailEntry(pos: UInt16, head: UInt16, into out: inout [Violation]) {
        pristine = false
        let d = UInt32(SplitRing.distance(from: cursor.used, to: pos))
        // The slot of `pos` still holds a published, unreturned entry: the device may be reading it.
        if d % size < cursor.inFlight {
            out.append(Violation(.vqDriverOwnership, "driver overwrites avail slot \(cursor.slot(pos)) (position \(pos)) while it still holds a published entry the device owns"))
        }
        availRing[cursor.slot(pos)] = Int32(head)
    }

    /// The driver publishes avail.idx = `idx`. Returns the violations and the heads it exposed.
    public mutating func publishAvail(_ idx: UInt16) -> (violations: [Violation], exposed: Int) {
        var out: [Violation] = []
        let exposed = publishAvail(idx, into: &out)
        return (out, exposed)
    }

    /// `publishAvail`, appending to `out`; returns the number of heads it exposed.
    public mutating func publishAvail(_ idx: UInt16, into out: inout [Violation]) -> Int {
        pristine = false
        let old = cursor.avail
        let k = SplitRing.distance(from: old, to: idx)
        // Entries past the in-flight bound reuse slots of live entries; exposing them would only
        // repeat the one violation as ownership noise.
        let room = Int(size) - Int(min(cursor.inFlight, size))
        if !cursor.allows(.publish(k)) {
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
            expose(head: UInt16(h), into: &out)
        }
        return exposed
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
    /// `notificationRequired`; VQ-KICK-MISSED holds the driver to it by the end of an exact trace.
    public func kickRequired(old: UInt16, new: UInt16) -> Bool {
        if eventIdx { return SplitRing.needEvent(event: availEvent, new: new, old: old) }
        return usedFlags & SplitRing.usedFlagNoNotify == 0
    }

    // MARK: device actions

    /// The device reads the avail entry at free-running position `pos` and finds `head`.
    public mutating func deviceRead(pos: UInt16, head: UInt16) -> [Violation] {
        var out: [Violation] = []
        deviceRead(pos: pos, head: head, into: &out)
        return out
    }

    public mutating func deviceRead(pos: UInt16, head: UInt16, into out: inout [Violation]) {
        pristine = false
        if !deviceReadsVisible { deviceReadsVisible = true; cursor.next = cursor.used }
        let readAhead = SplitRing.distance(from: cursor.used, to: cursor.next)
        if SplitRing.distance(from: cursor.used, to: pos) < readAhead {
            // Reading again an entry it read and has not returned: vhost_discard_vq_desc puts
            // entries back (backpressure in vhost-net) and the device reads them again.
            cursor.next = pos &+ 1
            checkHead(pos: pos, head: head, into: &out)
            return
        }
        if !cursor.allows(.consume) || SplitRing.distance(from: cursor.next, to: pos) >= UInt16(truncatingIfNeeded: cursor.pending) {
            out.append(Violation(.vqAvailRead, "device reads avail position \(pos) but the driver has published avail.idx \(cursor.avail) (next unread position \(cursor.next)): at or past the avail index"))
            return
        }
        if pos != cursor.next {
            out.append(Violation(.vqAvailRead, "device reads avail position \(pos) out of order: the next unread position is \(cursor.next)"))
            return
        }
        cursor = cursor.applying(.consume)!
        checkHead(pos: pos, head: head, into: &out)
    }

    private func checkHead(pos: UInt16, head: UInt16, into out: inout [Violation]) {
        let written = availRing[cursor.slot(pos)]
        if written >= 0 && UInt16(written) != head {
            out.append(Violation(.vqAvailRead, "device reads head \(head) at avail position \(pos), but the driver wrote head \(written) there"))
        }
    }

    /// The device writes used element {id, len} at free-running used position `pos`.
    public mutating func writeUsed(pos: UInt16, id: UInt32, len: UInt32) -> [Violation] {
        var out: [Violation] = []
        writeUsed(pos: pos, id: id, len: len, into: &out)
        return out
    }

    public mutating func writeUsed(pos: UInt16, id: UInt32, len: UInt32, into out: inout [Violation]) {
        pristine = false
        let d = SplitRing.distance(from: cursor.used, to: pos)
        guard UInt32(d) < size else {
            out.append(Violation(.vqUsedIdx, "device writes a used element at position \(pos), outside the window [\(cursor.used), \(cursor.used &+ UInt16(truncatingIfNeeded: size))) of unpublished used slots"))
            return
        }
        guard id < size else {
            out.append(Violation(.vqUsedId, "used element id \(id) is outside the descriptor table (queue size \(size))"))
            return
        }
        let head = UInt16(id)
        guard let c = inFlight[head], !c.completing else {
            usedWritten[pos] = UsedElement(id: id, len: len, rejected: true)
            let why: String
            if inFlight[head] != nil { why = "already has a used element waiting to be published (double completion)" }
            else if owner[Int(id)] == .device { why = "is not the head of a chain the device owns (it is inside another chain)" }
            else if owner[Int(id)] == .used { why = "was already returned and not made available again (double completion)" }
            else { why = "was never made available" }
            out.append(Violation(.vqUsedId, "used element names head \(id), which \(why)"))
            return
        }
        if let w = c.writableBytes, UInt64(len) > w {
            out.append(Violation(.vqUsedLen, "used element for head \(id) has len \(len), more than the chain's \(w) device-writable bytes"))
        }
        inFlight.update(head) { $0.completing = true }
        usedWritten[pos] = UsedElement(id: id, len: len)
    }

    /// The device publishes used.idx = `idx`. Returns the violations; afterwards `interruptOwed`
    /// says whether the driver asked to be interrupted for what was just published.
    public mutating func publishUsed(_ idx: UInt16) -> [Violation] {
        var out: [Violation] = []
        publishUsed(idx, into: &out)
        return out
    }

    public mutating func publishUsed(_ idx: UInt16, into out: inout [Violation]) {
        pristine = false
        let old = cursor.used
        let k = SplitRing.distance(from: old, to: idx)
        if UInt32(k) > size {
            out.append(Violation(.vqUsedIdx, "used.idx moves \(old) -> \(idx): \(k) entries at once, more than the queue size \(size)"))
            return
        }
        let rejected = (0..<k).contains { usedWritten[old &+ $0]?.rejected == true }
        if !rejected && !inOrder && deviceReadsVisible && !cursor.allows(.complete(k)) {
            out.append(Violation(.vqUsedIdx, "used.idx moves \(old) -> \(idx) but the device has read only \(cursor.consumed) entries it has not returned"))
        }
        var p = old
        while p != idx {
            defer { p = p &+ 1 }
            guard let e = usedWritten.removeValue(forKey: p) else {
                if inOrder {
                    // IN_ORDER: a position without an element retires the oldest exposed buffer
                    // (one element may stand for a whole batch).
                    if !retireOldest() {
                        out.append(Violation(.vqUsedIdx, "used.idx moves \(old) -> \(idx) over position \(p), where no element was written and no exposed buffer is left to retire (IN_ORDER)"))
                    }
                } else {
                    out.append(Violation(.vqUsedIdx, "used.idx moves \(old) -> \(idx) over position \(p), where no used element was written"))
                }
                continue
            }
            if e.rejected { continue }
            if inOrder, let oldest = oldestInFlight(), oldest != UInt16(e.id) {
                out.append(Violation(.vqUsedId, "used element at position \(p) names head \(e.id), but with IN_ORDER the buffer retired there is head \(oldest)"))
            }
            release(head: UInt16(e.id))
        }
        cursor.used = idx
        // Without traced reads the device's next index is unknown; keep it at used so that the
        // cursor stays within its invariant.
        if !deviceReadsVisible { cursor.next = idx }
        notePublication(old: old, new: idx)
    }

    /// Each publication is one notification check (vhost_notify): the window is what it just
    /// published, as the spec's "used_event ... the index of the entry just placed".
    private mutating func notePublication(old: UInt16, new: UInt16) {
        if old != new && notificationRequired(new: new, old: old) {
            owedWindow = (owedWindow?.start ?? old, new)
        }
    }

    /// IN_ORDER: the oldest exposed chain still in flight.
    public mutating func oldestInFlight() -> UInt16? {
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
        if !eventIdx && f & SplitRing.usedFlagNoNotify != 0 { kickWindow = nil }
    }
    /// avail_event. Likewise, a new value outside the owed window releases the kick.
    public mutating func setAvailEvent(_ v: UInt16) {
        availEvent = v
        if eventIdx, let w = kickWindow, !SplitRing.needEvent(event: v, new: w.end, old: w.start) { kickWindow = nil }
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

    private mutating func nextWalkStamp() -> UInt32 {
        walkStamp &+= 1
        if walkStamp == 0 { walkMarks = Array(repeating: 0, count: walkMarks.count); walkStamp = 1 }
        return walkStamp
    }

    private mutating func expose(head: UInt16, into out: inout [Violation]) {
        let stamp = nextWalkStamp()
        let owner = self.owner
        let indirect = self.indirect
        walked.removeAll(keepingCapacity: true)
        let chain = ChainWalker.walk(head: head, table: table, indirectAllowed: indirectAllowed, inOrder: inOrder,
                                     stopAt: { owner[Int($0)] == .device }, seen: &walkMarks, stamp: stamp,
                                     indirectTables: { indirect[$0] }, descriptors: &walked)
        out += chain.violations
        // A head outside the table exposes nothing the device could own.
        guard Int(head) < table.count else { return }
        if let busy = chain.busy {
            out.append(Violation(.vqDriverOwnership, "driver re-exposes descriptor \(busy) (chain head \(head)) while the device still owns it"))
            return
        }
        adopt(head: head, descriptors: walked, writableBytes: chain.writableBytes)
    }

    /// `descriptors` starts with `head`; none of them is the device's (see `chainLink`).
    private mutating func adopt(head: UInt16, descriptors: [UInt16], writableBytes: UInt64?, opaque: Bool = false) {
        var last: Int32 = -1
        for d in descriptors.reversed() {
            assert(owner[Int(d)] != .device, "descriptor \(d) of a chain being exposed is the device's already")
            owner[Int(d)] = .device; deviceOwned += 1; chainOf[Int(d)] = Int32(head)
            chainLink[Int(d)] = last
            last = Int32(d)
        }
        exposureSerial += 1
        inFlight[head] = InFlight(writableBytes: writableBytes, serial: exposureSerial, opaque: opaque)
        if inOrder { exposureOrder.append((head, exposureSerial)); compactExposureOrder() }
    }

    private mutating func release(head: UInt16) {
        guard inFlight.removeValue(forKey: head) != nil else { return }
        var d = Int32(head)
        while d >= 0 {
            let i = Int(d)
            d = chainLink[i]
            chainLink[i] = -1
            if owner[i] == .device { owner[i] = .used; deviceOwned -= 1; chainOf[i] = -1 }
        }
    }

    private mutating func forgetIndirectTables() {
        for parent in Array(indirect.keys) where owner[Int(parent)] != .device {
            indirectEntries -= indirect.removeValue(forKey: parent)?.cost ?? 0
        }
    }

    // MARK: kicks (available buffer notifications) and chain views

    /// The driver published avail positions [old, new): one publication, which the driver's
    /// notification check may cover alone, so the window is this publication's (as for interrupts).
    public mutating func noteAvailPublished(old: UInt16, new: UInt16) {
        guard old != new, kickRequired(old: old, new: new) else { return }
        kickWindow = (kickWindow?.start ?? old, new)
    }

    /// The driver kicked: every owed publication is notified.
    public mutating func kick() {
        kicksSeen = true
        kickWindow = nil
    }

    /// The ring stopped or was rebuilt: nothing the driver published before is owed a kick here.
    public mutating func releaseKick() { kickWindow = nil }

    /// The kick owed, as the avail window it is for.
    public var kickOwed: (start: UInt16, end: UInt16)? { kickWindow }

    public var owedKick: OwedNotification? {
        guard let w = kickWindow else { return nil }
        let why = eventIdx ? "EVENT_IDX: avail_event \(availEvent) lies in the avail positions [\(w.start), \(w.end)) published"
            : "used.flags \(usedFlags) does not suppress kicks"
        return OwedNotification(rule: .vqKickMissed, when: "avail.idx reached \(w.end)", reason: why)
    }

    /// Heads of the chains in flight (any order).
    public var inFlightHeadSet: [UInt16] { Array(inFlight.keys) }

    /// Whether the chain with head `head` is in flight (made available, not yet returned).
    public func isInFlight(head: UInt16) -> Bool { inFlight[head] != nil }

    /// The head the driver wrote in the avail slot of free-running position `pos`, if any.
    public func availHead(at pos: UInt16) -> UInt16? {
        let h = availRing[cursor.slot(pos)]
        return h >= 0 ? UInt16(h) : nil
    }

    /// The buffers of the chain in flight with head `head`, in chain order (an indirect table's
    /// entries in place of the descriptor that points to it), and the indirect tables themselves;
    /// nil when the chain is not in flight, is opaque (polled: its descriptors were not observed),
    /// or an indirect table was never described.
    public func chainBuffers(head: UInt16) -> (buffers: [Descriptor], tables: [Descriptor])? {
        guard let c = inFlight[head], !c.opaque else { return nil }
        // Capture the indirect tables only: a closure over self would copy the whole ring model.
        let tables = indirect
        return ChainWalker.buffers(head: head, table: table) { tables[$0] }
    }

    /// `chainBuffers`, told to `sink` (nothing allocated); false where `chainBuffers` is nil.
    public func chainBuffers<Sink: ChainBufferSink>(head: UInt16, into sink: inout Sink) -> Bool {
        guard let c = inFlight[head], !c.opaque else { return false }
        let tables = indirect // as `chainBuffers`: the closure captures the tables, not the model
        return ChainWalker.buffers(head: head, table: table, indirectTable: { tables[$0] }, into: &sink)
    }

    /// Device-writable bytes of the chain in flight with head `head` (nil: unknown).
    public func writableBytes(head: UInt16) -> UInt64? { inFlight[head]?.writableBytes }
}

// MARK: entry points for judging observed (polled) rings

extension SplitVirtqueue {
    /// Buffers in flight whose heads were never observed (exposed before observation began).
    public var unknownInFlight: Int { max(0, Int(cursor.inFlight) - inFlight.count) }

    /// Whether the device could now complete head `id`: it heads a chain in flight with no used
    /// element pending.
    public func canComplete(_ id: UInt32) -> Bool {
        guard id < size, let c = inFlight[UInt16(id)] else { return false }
        return !c.completing
    }

    /// IN_ORDER: the heads of the chains in flight, oldest first (at most `limit`).
    public func inFlightHeads(limit: Int) -> [UInt16] {
        var out: [UInt16] = []
        var k = exposureStart
        while k < exposureOrder.count && out.count < limit {
            let (h, serial) = exposureOrder[k]
            if let c = inFlight[h], c.serial == serial { out.append(h) }
            k += 1
        }
        return out
    }

    /// Whether the chain at `head` is in flight with its descriptors known (not opaque).
    public func isDescribedInFlight(head: UInt16) -> Bool {
        guard let c = inFlight[head] else { return false }
        return !c.opaque
    }

    /// The head of the chain in flight that owns main-table descriptor `index`, if its content is known.
    public func describedOwner(of index: UInt16) -> UInt16? {
        guard Int(index) < owner.count, owner[Int(index)] == .device, chainOf[Int(index)] >= 0 else { return nil }
        let h = UInt16(chainOf[Int(index)])
        return inFlight[h]?.opaque == false ? h : nil
    }

    /// Entry `entry` of the indirect table of `parent`, as last written.
    public func indirectEntry(parent: UInt16, entry: UInt16) -> Descriptor? {
        indirect[parent]?.entry(entry)
    }

    /// Why exposing one more chain at `head` now would break a rule, or nil if it would not: the
    /// in-flight bound, or a descriptor of the chain (read from `table`, which may overlay
    /// descriptors the driver is about to write) that the device still owns. With `described`
    /// false only the head is known to belong to the chain.
    /// `reserved`: heads known to belong to buffers that were in flight before observation began
    /// and have completed (`reservedCount` of them); the buffers still in flight from then have
    /// other heads.
    public mutating func exposureBlocker<Table: DescriptorSource>(head: UInt16, table overlay: Table, described: Bool, reserved: [Bool] = [],
                                                                 reservedCount: Int = 0, unknownAtOnce: Bool = true) -> String? {
        if !cursor.allows(.publish(1)) { return "\(cursor.inFlight) buffers are in flight already (queue size \(size))" }
        guard Int(head) < table.count else { return nil }
        // Buffers in flight with unknown heads own at least one descriptor each, none of those the
        // device owns for known chains: the new chain must fit in what is left.
        let unknown = unknownAtOnce ? unknownInFlight : 0
        let owners = owner
        func taken(_ chain: [UInt16]) -> Int {
            // Cheap bound first: only a nearly full table needs the exact count.
            if deviceOwned + chain.count + reservedCount + unknown <= table.count { return deviceOwned + chain.count }
            var n = deviceOwned + chain.filter { !(Int($0) < reserved.count && reserved[Int($0)]) }.count
            for (i, r) in reserved.enumerated() where r && owners[i] != .device { n += 1 }
            return n
        }
        // Rendered only when it is the answer (this runs for every exposure a poll shows).
        var noRoom: String { "no descriptor is left for it and the \(unknown) buffer(s) in flight since before observation began" }
        if !described {
            if owner[Int(head)] == .device { return "its head descriptor \(head) is still owned by the device" }
            return unknown > 0 && taken([head]) + unknown > table.count ? noRoom : nil
        }
        let stamp = nextWalkStamp()
        // `owners` (above) serves the walk too: a second copy was a second retain and release.
        let owner = owners
        // The walk list `expose` reuses: this runs for every exposure a poll shows, and a list of
        // its own was an allocation per exposure.
        walked.removeAll(keepingCapacity: true)
        let chain = ChainWalker.walk(head: head, table: overlay, indirectAllowed: indirectAllowed,
                                     stopAt: { owner[Int($0)] == .device }, seen: &walkMarks, stamp: stamp,
                                     indirectTables: { _ in nil }, descriptors: &walked)
        if let b = chain.busy { return "descriptor \(b) of its chain is still owned by the device" }
        return unknown > 0 && taken(walked) + unknown > table.count ? noRoom : nil
    }

    /// The driver exposes, at the next avail position, a chain whose descriptors were not observed
    /// as they were at that moment: only its head is known to be the device's. Its used length
    /// and chain rules are not judged.
    public mutating func exposeOpaque(head: UInt16) -> [Violation] {
        pristine = false
        let pos = cursor.avail
        if !cursor.allows(.publish(1)) {
            // As `publishAvail`: what lies past the bound is not exposed (one violation, no noise).
            cursor.avail = pos &+ 1
            return [Violation(.vqInflight, "avail.idx moves \(pos) -> \(pos &+ 1) with used.idx at \(cursor.used): more than the queue size \(size) buffers in flight")]
        }
        availRing[cursor.slot(pos)] = Int32(head)
        cursor.avail = pos &+ 1
        guard Int(head) < table.count else {
            return [Violation(.vqDescIndex, "chain head \(head) is outside the descriptor table (queue size \(size))")]
        }
        if owner[Int(head)] == .device {
            return [Violation(.vqDriverOwnership, "driver re-exposes descriptor \(head) (chain head \(head)) while the device still owns it")]
        }
        adopt(head: head, descriptors: [head], writableBytes: nil, opaque: true)
        return []
    }

    /// Names head `head` as one of the buffers in flight since before observation began (their
    /// heads were unknown until the device completed one). False when no such buffer is left or
    /// the head is busy.
    public mutating func adoptUnknownInFlight(head: UInt16) -> Bool {
        guard unknownInFlight > 0, Int(head) < table.count, inFlight[head] == nil, owner[Int(head)] != .device else { return false }
        // The oldest buffers: with IN_ORDER they retire before anything exposed later.
        exposureSerial += 1
        inFlight[head] = InFlight(writableBytes: nil, serial: exposureSerial, opaque: true)
        chainLink[Int(head)] = -1
        owner[Int(head)] = .device
        deviceOwned += 1
        chainOf[Int(head)] = Int32(head)
        if inOrder { exposureOrder.insert((head, exposureSerial), at: exposureStart) }
        return true
    }

    /// IN_ORDER: the device publishes one used position that retires one of the buffers in flight
    /// since before observation began (their heads are unknown, so the element says nothing).
    public mutating func completeUnknown() {
        precondition(unknownInFlight > 0)
        pristine = false
        let old = cursor.used
        cursor.used = old &+ 1
        if !deviceReadsVisible { cursor.next = cursor.used }
        notePublication(old: old, new: cursor.used)
    }
}

// MARK: the ring-format seam

extension SplitVirtqueue: RingModel {
    public var format: RingFormat { .split }

    public var features: RingFeatures {
        get { RingFeatures(indirect: indirectAllowed, eventIdx: eventIdx, inOrder: inOrder) }
        set { indirectAllowed = newValue.indirect; eventIdx = newValue.eventIdx; inOrder = newValue.inOrder }
    }

    public mutating func setBase(_ base: RingBase) { setBase(base.index) }

    public mutating func apply(_ step: RingStep) -> StepResult {
        var out: [Violation] = []
        let effect = apply(step, into: &out)
        return StepResult(out, exposed: effect.exposed, completed: effect.completed, foreign: effect.foreign)
    }

    public mutating func apply(_ step: RingStep, into out: inout [Violation]) -> StepEffect {
        switch step {
        case .writeDescriptor(let i, let d): writeDescriptor(i, d, into: &out)
        case .writeIndirect(let p, let e, let d): writeIndirectEntry(parent: p, entry: e, d, into: &out)
        case .writeAvailEntry(let pos, let head): writeAvailEntry(pos: pos, head: head, into: &out)
        case .publishAvail(let idx): return StepEffect(exposed: publishAvail(idx, into: &out))
        case .setAvailFlags(let f): setAvailFlags(f)
        case .setUsedEvent(let v): setUsedEvent(v)
        case .readAvail(let pos, let head): deviceRead(pos: pos, head: head, into: &out)
        case .writeUsed(let pos, let id, let len): writeUsed(pos: pos, id: id, len: len, into: &out)
        case .publishUsed(let idx):
            let before = cursor.used
            publishUsed(idx, into: &out)
            return StepEffect(completed: Int(SplitRing.distance(from: before, to: cursor.used)))
        case .setUsedFlags(let f): setUsedFlags(f)
        case .setAvailEvent(let v): setAvailEvent(v)
        case .writePacked, .storeAvailFlags, .writePackedIndirect, .setDriverEvent,
             .readPacked, .writePackedUsed, .storeUsedFlags, .setDeviceEvent:
            return .foreignStep
        }
        return StepEffect()
    }

    public var owedInterrupt: OwedNotification? {
        guard let owed = interruptOwed else { return nil }
        let reason = eventIdx ? "EVENT_IDX: used_event \(usedEvent) lies in the used positions [\(interruptOwedFrom ?? 0), \(owed)) just published"
            : "avail.flags \(availFlags) does not suppress interrupts"
        return OwedNotification(rule: .vqInterruptMissed, when: "used.idx reached \(owed)", reason: reason)
    }
}

// MARK: memory bounds (the checker's budgets over all rings)

extension SplitVirtqueue {
    /// Indirect-table memory this ring holds (`IndirectTable.cost` units), and the tables holding it.
    public var indirectEntriesHeld: Int { indirectEntries }
    public var indirectTablesHeld: Int { indirect.count }

    /// Forgets every indirect table whose parent the device does not own, as this ring does itself
    /// beyond `indirectBudget`; the checker calls it when the sum over all rings is too large.
    public mutating func forgetIdleIndirectTables() { forgetIndirectTables() }

    /// IN_ORDER: entries of chains already returned stay in `exposureOrder` until the oldest
    /// live chain is retired, so a chain that is never completed made the list grow with the trace.
    /// Dropping them is invisible to `oldestInFlight`, which skips them anyway.
    /// IN_ORDER exposures still listed (for the test that pins the compaction).
    var exposureOrderLength: Int { exposureOrder.count - exposureStart }

    mutating func compactExposureOrder() {
        let live = exposureOrder.count - exposureStart
        guard live > 2 * inFlight.count + 64 else { return }
        exposureOrder = exposureOrder[exposureStart...].filter { inFlight[$0.head]?.serial == $0.serial }
        exposureStart = 0
    }
}
