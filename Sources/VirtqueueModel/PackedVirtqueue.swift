import VirtioProtocol

/// One packed virtqueue seen from both sides: the descriptor ring, the two wrap counters (as the
/// driver's and the device's positions), the buffers in flight with their ids, and who owns every
/// descriptor at every step. Each operation is one driver or device action in the order it
/// happened; it updates the state and returns the rules the action broke.
///
/// Ownership is positional ("Packed Virtqueues", "Polling of available and used descriptors"): the
/// driver makes lists available at its position `avail`, the device writes used descriptors at its
/// position `used` and skips the rest of each list (with IN_ORDER, of each batch). The device owns
/// exactly the positions [used, avail), never more than N; the driver owns the others. A
/// descriptor is *exposed* when the flags store on the first descriptor of a list at `avail`
/// marks it available; a buffer is returned when the flags store at `used` marks its used
/// descriptor used. Flag stores ahead of either position (the rest of a list before its head;
/// DPDK's batches, which mark the first used descriptor last) wait until the position reaches them.
///
/// Positions are free-running counts (`PackedRing`): slot = position mod N, the wrap counter flips
/// every N positions. `Specs/model.md` ("One packed virtqueue") has the rules step by step.
public struct PackedVirtqueue: RingModel {
    public let size: UInt32
    public var features: RingFeatures
    public var format: RingFormat { .packed }

    public private(set) var ring: [PackedDescriptor]
    /// The driver's next position to make available (its wrap counter is `wrap(avail)`).
    public private(set) var avail: UInt64
    /// The device's next position to mark used (its wrap counter is `wrap(used)`).
    public private(set) var used: UInt64
    /// The device's next position to take (meaningful once the trace shows device reads).
    public private(set) var next: UInt64
    public private(set) var deviceReadsVisible = false
    public private(set) var pristine = true

    /// A buffer the device owns.
    public struct Buffer: Equatable, Sendable {
        public var id: UInt16
        /// First position of its list, and the number of descriptors (positions) it occupies.
        public var start: UInt64
        public var count: Int
        /// nil when the content is unknown (an indirect table never described, or a list the
        /// polled judge could not read with certainty): its used length is not judged.
        public var writableBytes: UInt64?
        /// Its id and content were not read with certainty (polled traces): only its length is known.
        public var opaque = false
        /// The id a poll read on its last descriptor, certain or not: what a recorder matched used
        /// descriptors against (equal to `id` unless opaque).
        public var readId: UInt16 = 0
        var serial: UInt64 = 0
    }
    /// Buffers in flight with a known id, by id.
    private var byId: [UInt16: Buffer] = [:]
    /// Buffers in flight whose id is unknown (polled traces), oldest first.
    private var opaque: [Buffer] = []
    /// All buffers in flight in exposure order (serials), for IN_ORDER; entries already returned
    /// are skipped when met.
    private var order: [(serial: UInt64, id: UInt16?, start: UInt64)] = []
    private var orderStart = 0
    private var serial: UInt64 = 0

    /// Entries written for the indirect table of a ring slot.
    private var indirect: [UInt16: PackedIndirectTable] = [:]
    private var indirectEntries = 0
    public static let indirectBudget = 1 << 20
    /// A list whose first descriptor was made available before the rest: reported once, exposed
    /// when the rest follows.
    private var headReported: UInt64?
    /// The device's used position can no longer be followed (a used descriptor named no buffer in
    /// flight, so how far it skips is unknown): device steps are not judged any more.
    public private(set) var deviceLost: String?

    // Event suppression and notifications.
    /// The Driver Event Suppression structure (controls the device's used buffer notifications).
    public private(set) var driverEvent = PackedRing.EventSuppression.initial
    /// The Device Event Suppression structure (controls the driver's available buffer notifications).
    public private(set) var deviceEvent = PackedRing.EventSuppression.initial
    /// Used positions [start, end) whose marking obliged an interrupt not yet sent.
    private var owedWindow: (start: UInt64, end: UInt64)?
    /// The positions [start, end) made available by flag stores the Device Event Suppression asked
    /// to hear about, not yet notified (the driver's kick owed).
    private var kickWindow: (start: UInt64, end: UInt64)?
    public private(set) var kicksSeen = false
    /// The driver broke an ownership or list rule on this ring: which positions its later stores
    /// exposed is then the model's reading, not the driver's, so no kick is held owed from there on
    /// (the finding already made is the cause; a missed kick derived from it would be noise).
    private var driverBroke = false
    /// The used position when the device last interrupted.
    public private(set) var signalled: UInt64

    public init(size: UInt32, base: RingBase = .start, features: RingFeatures = RingFeatures()) {
        precondition(PackedRing.maxQueueSize >= size && size > 0, "queue size must be validated by the caller")
        self.size = size
        self.features = features
        ring = Array(repeating: .zero, count: Int(size))
        let p = PackedRing.position(RingBase(index: min(base.index, UInt16(size - 1)), wrap: base.wrap), size: size)
        avail = p; used = p; next = p; signalled = p
    }

    public var inFlightPositions: UInt64 { avail - used }
    /// The two positions as implementations hold them: the relation `prove` proves.
    public var cursor: PackedCursor { PackedCursor(size: size, avail: avail, used: used) }
    public var buffersInFlight: Int { byId.count + opaque.count }

    public func slot(_ p: UInt64) -> UInt16 { PackedRing.slot(p, size: size) }
    public func wrap(_ p: UInt64) -> Bool { PackedRing.wrap(p, size: size) }
    func at(_ p: UInt64) -> String { "position \(p) (slot \(slot(p)), wrap \(wrap(p) ? 1 : 0))" }

    /// The position in [used, avail) whose slot is `s`: the device owns it.
    public func deviceOwned(slot s: UInt16) -> UInt64? {
        let d = (UInt64(s) + UInt64(size) - UInt64(slot(used))) % UInt64(size)
        return d < avail - used ? used + d : nil
    }

    /// The position in [avail, used + N) whose slot is `s`: the driver owns it.
    public func driverPosition(slot s: UInt16) -> UInt64? {
        let d = (UInt64(s) + UInt64(size) - UInt64(slot(avail))) % UInt64(size)
        return avail + d < used + UInt64(size) ? avail + d : nil
    }

    // MARK: control plane

    /// SET_VRING_BASE: on an untouched ring both positions start there; on a ring with history
    /// only the device's next position moves (the descriptors are guest memory and survive).
    public mutating func setBase(_ base: RingBase) {
        guard UInt32(base.index) < size else { return }
        if pristine {
            let p = PackedRing.position(base, size: size)
            avail = p; used = p; next = p; signalled = p
        } else if let p = PackedRing.decode(base.packedRaw, after: used, size: size), p <= avail {
            next = p
        }
    }

    /// `apply`, appending the findings to `out` (the checker's event path).
    public mutating func apply(_ step: RingStep, into out: inout [Violation]) -> StepEffect {
        let r = apply(step)
        out += r.violations
        return StepEffect(exposed: r.exposed, completed: r.completed, foreign: r.foreign)
    }

    public mutating func apply(_ step: RingStep) -> StepResult {
        switch step {
        case .writePacked(let s, let addr, let len, let id): return StepResult(writeDescriptor(slot: s, addr: addr, len: len, id: id))
        case .storeAvailFlags(let s, let f): return storeAvailFlags(slot: s, f)
        case .writePackedIndirect(let p, let e, let d): return StepResult(writeIndirect(parent: p, entry: e, d))
        case .setDriverEvent(let e): return StepResult(setDriverEvent(e))
        case .readPacked(let s): return StepResult(deviceRead(slot: s))
        case .writePackedUsed(let s, let id, let len): return StepResult(writeUsed(slot: s, id: id, len: len))
        case .storeUsedFlags(let s, let f): return storeUsedFlags(slot: s, f)
        case .setDeviceEvent(let e): return StepResult(setDeviceEvent(e))
        case .writeDescriptor, .writeIndirect, .writeAvailEntry, .publishAvail, .setAvailFlags, .setUsedEvent,
             .readAvail, .writeUsed, .publishUsed, .setUsedFlags, .setAvailEvent:
            return .foreignStep
        }
    }

    // MARK: driver actions

    private func outside(_ s: UInt16, who: String) -> Violation? {
        guard UInt32(s) >= size else { return nil }
        return Violation(who == "driver" ? .packedDriverOwnership : .packedDeviceOwnership,
                         "\(who) writes descriptor slot \(s), outside the ring of \(size) descriptors")
    }

    /// Whether the descriptor at driver position `p` already carries flags that make it available
    /// (stored ahead of the list's first descriptor).
    private func pendingAvailable(_ p: UInt64) -> Bool { ring[Int(slot(p))].flags.isAvailable(wrap: wrap(p)) }

    /// The driver writes addr, len and id of the descriptor in slot `s`.
    public mutating func writeDescriptor(slot s: UInt16, addr: UInt64, len: UInt32, id: UInt16) -> [Violation] {
        if let v = outside(s, who: "driver") { return [v] }
        pristine = false
        var out: [Violation] = []
        if let p = deviceOwned(slot: s) {
            out.append(Violation(.packedFlagsLast, "driver changes descriptor \(s) (\(at(p))) after its flags made it available: the device owns it until it is marked used"))
        } else if let p = driverPosition(slot: s), pendingAvailable(p) {
            out.append(Violation(.packedFlagsLast, "driver writes descriptor \(s) (\(at(p))) after the flags store that makes it available (addr, len and id go first)"))
        }
        ring[Int(s)].addr = addr
        ring[Int(s)].len = len
        ring[Int(s)].id = id
        if !out.isEmpty { driverBroke = true }
        return out
    }

    /// The driver stores the flags of slot `s`; a store at its position on the first descriptor
    /// of a complete list exposes that list (and any lists already flagged after it).
    public mutating func storeAvailFlags(slot s: UInt16, _ f: PackedRing.Flags) -> StepResult {
        if let v = outside(s, who: "driver") { return StepResult([v]) }
        pristine = false
        if let p = deviceOwned(slot: s) {
            let why = avail - used == UInt64(size) ? "the ring is full: all \(size) descriptors are the device's" : "made available at \(at(p)) and not yet used"
            driverBroke = true
            return StepResult([Violation(.packedDriverOwnership, "driver stores flags \(f) on descriptor \(s), which the device owns (\(why))")])
        }
        let p = driverPosition(slot: s)!
        var out: [Violation] = []
        let old = ring[Int(s)].flags
        if f.marksAvailable && !f.isAvailable(wrap: wrap(p)) {
            out.append(Violation(.packedWrapCounter, "driver marks descriptor \(s) available with AVAIL=\(f.contains(.avail) ? 1 : 0) USED=\(f.contains(.used) ? 1 : 0) at \(at(p)): its wrap counter there is \(wrap(p) ? 1 : 0) (AVAIL equal to it, USED the inverse; it flips after slot \(size - 1))"))
        } else if old.isAvailable(wrap: wrap(p)) && old != f {
            out.append(Violation(.packedFlagsLast, "driver changes the flags of descriptor \(s) (\(at(p))) from \(old) to \(f) after they made it available"))
        }
        ring[Int(s)].flags = f
        var r = StepResult(out)
        // A store at the position, or one completing the rest of a list whose head was stored first.
        if p == avail || (headReported != nil && pendingAvailable(avail)) {
            let before = avail
            expose(into: &r)
            // One store is one publication, which the driver's notification check may cover alone.
            if avail != before && kickRequired(old: before, new: avail) { kickWindow = (kickWindow?.start ?? before, avail) }
        }
        if !r.violations.isEmpty { driverBroke = true }
        return r
    }

    /// Exposes every complete list from the driver's position on (at most `limit` of them).
    private mutating func expose(into r: inout StepResult, limit: Int = .max, known: (UInt64) -> Bool = { _ in true }, idKnown: Bool = true, readId: UInt16? = nil) {
        var n = 0
        while n < limit, avail < used + UInt64(size), pendingAvailable(avail) {
            n += 1
            let start = avail
            let table = indirect
            let chain = PackedChainWalker.walk(from: start, end: used + UInt64(size), ring: ring, indirectAllowed: features.indirect, known: known,
                                               available: { q, d in d.flags.isAvailable(wrap: PackedRing.wrap(q, size: self.size)) }) { table[$0] }
            if !chain.complete {
                // Reported once; the list is handed over when the rest of it is made available.
                if headReported != start { r.violations += chain.violations; headReported = start }
                return
            }
            headReported = nil
            r.violations += chain.violations
            if !idKnown {
                adopt(Buffer(id: 0, start: start, count: chain.count, writableBytes: chain.writableBytes, opaque: true, readId: readId ?? chain.id))
                r.exposed += 1
                continue
            }
            if let other = byId[chain.id] {
                r.violations.append(Violation(.packedBufferId, "driver makes buffer id \(chain.id) available at \(at(start)) while the buffer with that id made available at \(at(other.start)) is still in flight"))
            }
            adopt(Buffer(id: chain.id, start: start, count: chain.count, writableBytes: chain.writableBytes, readId: chain.id))
            r.exposed += 1
        }
    }

    private mutating func adopt(_ b0: Buffer) {
        var b = b0
        serial += 1
        b.serial = serial
        avail = b.start + UInt64(b.count)
        if b.opaque { opaque.append(b) } else { byId[b.id] = b }
        order.append((serial, b.opaque ? nil : b.id, b.start))
    }

    /// The driver writes entry `entry` of the indirect table that the descriptor in slot `parent` points to.
    public mutating func writeIndirect(parent: UInt16, entry: UInt16, _ d: PackedDescriptor) -> [Violation] {
        if let v = outside(parent, who: "driver") { return [v] }
        pristine = false
        var out: [Violation] = []
        if let p = deviceOwned(slot: parent) {
            out.append(Violation(.packedDriverOwnership, "driver writes entry \(entry) of the indirect table of descriptor \(parent) while the device owns that buffer (\(at(p)))"))
        }
        var t = indirect.removeValue(forKey: parent) ?? PackedIndirectTable()
        let before = t.cost
        t.set(entry, d)
        let grow = t.cost - before
        if grow > 0 && indirectEntries + grow > Self.indirectBudget { forgetIndirectTables() }
        indirectEntries += grow
        indirect[parent] = t
        if !out.isEmpty { driverBroke = true }
        return out
    }

    public var indirectEntriesHeld: Int { indirectEntries }
    public var indirectTablesHeld: Int { indirect.count }
    public mutating func forgetIdleIndirectTables() { forgetIndirectTables() }

    private mutating func forgetIndirectTables() {
        for s in Array(indirect.keys) where deviceOwned(slot: s) == nil {
            indirectEntries -= indirect.removeValue(forKey: s)?.cost ?? 0
        }
    }

    /// The Driver Event Suppression structure. Suppressing before the device has sent an owed
    /// interrupt releases it: the device reads the structure after marking used, so either value
    /// may be the one it saw.
    public mutating func setDriverEvent(_ e: PackedRing.EventSuppression) -> [Violation] {
        let v = eventViolations(e, who: "driver", structure: "Driver Event Suppression")
        driverEvent = e
        if let w = owedWindow, !PackedRing.notificationRequired(e, eventIdx: features.eventIdx, old: w.start, new: w.end, size: size) {
            owedWindow = nil
        }
        return v
    }

    private func eventViolations(_ e: PackedRing.EventSuppression, who: String, structure: String) -> [Violation] {
        if e.flags & ~3 != 0 {
            return [Violation(.packedEventFlags, "\(who) writes the \(structure) with flags 0x\(String(e.flags, radix: 16)): bits 2-15 are reserved and must be 0")]
        }
        switch e.mode {
        case .reserved:
            return [Violation(.packedEventFlags, "\(who) writes the \(structure) with flags 3, a reserved value")]
        case .desc where !features.eventIdx:
            return [Violation(.packedEventFlags, "\(who) writes the \(structure) with flags DESC (2), valid only when VIRTIO_F_EVENT_IDX was negotiated")]
        default:
            return []
        }
    }

    /// Whether the driver, having made available positions [old, new), must notify the device,
    /// given the Device Event Suppression structure (PACKED-KICK-MISSED holds it to that by the end
    /// of an exact trace: drivers kick at their own batch boundaries, which a trace does not mark).
    public func kickRequired(old: UInt64, new: UInt64) -> Bool {
        PackedRing.notificationRequired(deviceEvent, eventIdx: features.eventIdx, old: old, new: new, size: size)
    }

    // MARK: device actions

    /// The device takes the descriptor in slot `s` for processing (it saw it available).
    public mutating func deviceRead(slot s: UInt16) -> [Violation] {
        if deviceLost != nil { return [] }
        if UInt32(s) >= size { return [Violation(.packedDeviceOwnership, "device reads descriptor slot \(s), outside the ring of \(size) descriptors")] }
        pristine = false
        if !deviceReadsVisible { deviceReadsVisible = true; next = used }
        guard let p = deviceOwned(slot: s) else {
            return [Violation(.packedDeviceOwnership, "device takes descriptor \(s), which the driver has not made available (the device's position is \(at(next)), the driver's \(at(avail)))")]
        }
        if p < next {
            // Taking again a descriptor it took and has not marked used (put back, as vhost's
            // discard does): allowed, and it continues from there.
            next = p + 1
            return []
        }
        if p != next {
            return [Violation(.packedDeviceOrder, "device takes descriptor \(s) at \(at(p)) out of ring order: its next descriptor is at \(at(next))")]
        }
        next = p + 1
        return []
    }

    /// The device writes id and len of a used descriptor into slot `s`.
    public mutating func writeUsed(slot s: UInt16, id: UInt16, len: UInt32) -> [Violation] {
        if deviceLost != nil { return [] }
        if let v = outside(s, who: "device") { return [v] }
        pristine = false
        guard deviceOwned(slot: s) != nil else {
            return [Violation(.packedDeviceOwnership, "device writes descriptor \(s), which it does not own (the driver's since the device marked it used, or never made available)")]
        }
        ring[Int(s)].id = id
        ring[Int(s)].len = len
        return []
    }

    /// The device stores the flags of slot `s`; a store at its position marks the used descriptor
    /// there used (and any it marked after it), returning their buffers to the driver.
    public mutating func storeUsedFlags(slot s: UInt16, _ f: PackedRing.Flags) -> StepResult {
        if deviceLost != nil { return StepResult() }
        if let v = outside(s, who: "device") { return StepResult([v]) }
        pristine = false
        guard let q = deviceOwned(slot: s) else {
            return StepResult([Violation(.packedDeviceOwnership, "device stores flags \(f) on descriptor \(s), which it does not own (the driver's since the device marked it used, or never made available)")])
        }
        var r = StepResult()
        if !f.isUsed(wrap: wrap(q)) {
            r.violations.append(Violation(.packedWrapCounter, "device marks descriptor \(s) with AVAIL=\(f.contains(.avail) ? 1 : 0) USED=\(f.contains(.used) ? 1 : 0) at \(at(q)): a used descriptor has both equal to its wrap counter there, \(wrap(q) ? 1 : 0) (it flips after slot \(size - 1))"))
        }
        ring[Int(s)].flags = f
        if q == used { publish(into: &r) }
        return r
    }

    /// Returns every buffer whose used descriptor is marked at the device's position, in order.
    private mutating func publish(into r: inout StepResult) {
        let old = used
        while used < avail, ring[Int(slot(used))].flags.isUsed(wrap: wrap(used)) {
            let q = used
            let d = ring[Int(slot(q))]
            guard let (retired, count) = retire(id: d.id, at: q, into: &r) else {
                deviceLost = "the used descriptor at \(at(q)) names buffer id \(d.id), which is not in flight, so where the next one goes is unknown"
                break
            }
            // The last buffer of the batch is the one the used descriptor describes.
            if let b = retired.last, let w = b.writableBytes, d.flags.contains(.write), UInt64(d.len) > w {
                r.violations.append(Violation(.vqUsedLen, "used descriptor at \(at(q)) for buffer id \(d.id) has len \(d.len), more than the buffer's \(w) device-writable bytes"))
            }
            // A used descriptor the device marked inside the span it now skips is never read.
            for k in 1..<max(1, count) {
                let x = q + UInt64(k)
                if ring[Int(slot(x))].flags.isUsed(wrap: wrap(x)) {
                    r.violations.append(Violation(.packedDeviceOrder, "device marked a used descriptor at \(at(x)), inside the \(count) descriptor(s) the used descriptor at \(at(q)) (buffer id \(d.id)) skips: the driver never reads it"))
                    break
                }
            }
            used = q + UInt64(count)
            r.completed += retired.count
        }
        if deviceReadsVisible {
            if used > next {
                r.violations.append(Violation(.packedDeviceOwnership, "device marks used up to \(at(used)) but has taken descriptors only up to \(at(next))"))
                next = used
            }
        } else {
            next = used
        }
        if used != old { notePublication(old: old, new: used) }
    }

    /// The buffers a used descriptor with `id` at position `q` retires, and how many positions they
    /// span; nil (and PACKED-USED-ID) when no buffer in flight can be it.
    private mutating func retire(id: UInt16, at q: UInt64, into r: inout StepResult) -> (retired: [Buffer], count: Int)? {
        if features.inOrder {
            // The batch: the oldest buffers up to and including the one with this id.
            guard byId[id] != nil || !opaque.isEmpty else {
                r.violations.append(Violation(.packedUsedId, "used descriptor at \(at(q)) names buffer id \(id), which is not in flight (never made available, or already used)"))
                return nil
            }
            var retired: [Buffer] = []
            var count = 0
            while let b = takeOldest() {
                retired.append(b)
                count += b.count
                if !b.opaque && b.id == id { return (retired, count) }
            }
            // No buffer with that id in flight: only unknown ids were left (polled traces).
            return (retired, count)
        }
        if let b = byId.removeValue(forKey: id) { return ([b], b.count) }
        r.violations.append(Violation(.packedUsedId, "used descriptor at \(at(q)) names buffer id \(id), which is not in flight (never made available, or already used)"))
        return nil
    }

    /// IN_ORDER: removes and returns the oldest buffer in flight.
    private mutating func takeOldest() -> Buffer? {
        while orderStart < order.count {
            let (s, id, _) = order[orderStart]
            orderStart += 1
            if let id, let b = byId[id], b.serial == s { byId[id] = nil; compactOrder(); return b }
            if id == nil, let k = opaque.firstIndex(where: { $0.serial == s }) { compactOrder(); return opaque.remove(at: k) }
        }
        compactOrder()
        return nil
    }

    private mutating func compactOrder() {
        if orderStart == order.count { order.removeAll(keepingCapacity: true); orderStart = 0 }
        else if orderStart > 4096 && orderStart * 2 > order.count { order.removeFirst(orderStart); orderStart = 0 }
    }

    /// The Device Event Suppression structure. Suppressing before the driver has sent an owed kick
    /// releases it: the driver reads the structure after making buffers available, so either value
    /// may be the one it saw.
    public mutating func setDeviceEvent(_ e: PackedRing.EventSuppression) -> [Violation] {
        let v = eventViolations(e, who: "device", structure: "Device Event Suppression")
        deviceEvent = e
        if let w = kickWindow, !kickRequired(old: w.start, new: w.end) { kickWindow = nil }
        return v
    }

    public mutating func kick() {
        kicksSeen = true
        kickWindow = nil
    }

    public mutating func releaseKick() { kickWindow = nil }

    public var owedKick: OwedNotification? {
        guard let w = kickWindow, !driverBroke else { return nil }
        let reason: String
        switch deviceEvent.mode {
        case .desc: reason = "Device Event Suppression DESC names slot \(deviceEvent.offset) wrap \(deviceEvent.wrap ? 1 : 0), which lies in the positions [\(w.start), \(w.end)) made available"
        default: reason = "Device Event Suppression flags \(deviceEvent.mode) do not suppress kicks"
        }
        return OwedNotification(rule: .packedKickMissed, when: "the driver's position reached \(at(w.end))", reason: reason)
    }

    /// Each publication is one notification check: the window is what it just marked used.
    private mutating func notePublication(old: UInt64, new: UInt64) {
        if PackedRing.notificationRequired(driverEvent, eventIdx: features.eventIdx, old: old, new: new, size: size) {
            owedWindow = (owedWindow?.start ?? old, new)
        }
    }

    public mutating func interrupt() {
        signalled = used
        owedWindow = nil
    }

    public var owedInterrupt: OwedNotification? {
        guard let w = owedWindow else { return nil }
        let reason: String
        switch driverEvent.mode {
        case .desc: reason = "Driver Event Suppression DESC names slot \(driverEvent.offset) wrap \(driverEvent.wrap ? 1 : 0), which lies in the positions [\(w.start), \(w.end)) just marked used"
        default: reason = "Driver Event Suppression flags \(driverEvent.mode) do not suppress interrupts"
        }
        return OwedNotification(rule: .packedInterruptMissed, when: "the used position reached \(at(w.end))", reason: reason)
    }

    // MARK: entry points for judging observed (polled) rings

    /// The buffers in flight, oldest first (IN_ORDER bookkeeping order).
    private func inFlightInOrder(limit: Int) -> [Buffer] {
        var out: [Buffer] = []
        var k = orderStart
        while k < order.count && out.count < limit {
            let (s, bid, _) = order[k]
            k += 1
            if let bid { if let b = byId[bid], b.serial == s { out.append(b) } }
            else if let b = opaque.first(where: { $0.serial == s }) { out.append(b) }
        }
        return out
    }

    /// Whether a used descriptor at the device's position, naming `id` as a poll read it and
    /// spanning `count` positions, can stand for buffers in flight now. Without IN_ORDER: a buffer
    /// whose id was read as `id` (what the recorder matched it against) and whose list spans
    /// `count`. With IN_ORDER: the oldest buffers spanning exactly `count` positions.
    public func canComplete(id: UInt16, count: Int) -> Bool {
        if features.inOrder {
            var span = 0
            for b in inFlightInOrder(limit: count) {
                span += b.count
                if span >= count { return span == count }
            }
            return false
        }
        if let b = byId[id], b.count == count { return true }
        return opaque.contains { $0.readId == id && $0.count == count }
    }

    /// Applies a used descriptor {id, len, flags} at the device's position that spans `count`
    /// positions, as a poll read it (see `canComplete` for which buffers it retires).
    public mutating func completeObserved(id: UInt16, len: UInt32, flags: PackedRing.Flags, count: Int) -> StepResult {
        pristine = false
        var r = StepResult()
        let q = used
        var retired: [Buffer] = []
        if features.inOrder {
            var span = 0
            while span < count, let b = takeOldest() { retired.append(b); span += b.count }
            if let b = retired.last, !b.opaque, b.id != id {
                r.violations.append(Violation(.packedUsedId, "used descriptor at \(at(q)) names buffer id \(id), but the batch it ends (the oldest buffers over its \(count) positions) ends with buffer id \(b.id) (IN_ORDER)"))
            }
            if retired.isEmpty {
                r.violations.append(Violation(.packedUsedId, "used descriptor at \(at(q)) names buffer id \(id), but no buffer is in flight"))
            }
        } else if let b = byId[id], b.count == count {
            byId[id] = nil
            retired = [b]
        } else if let k = opaque.firstIndex(where: { $0.readId == id && $0.count == count }) {
            // Matched through an id that may not be the driver's: which buffer this is, and so its
            // writable bytes, is not known (IN_ORDER batches are fixed by position instead).
            var b = opaque.remove(at: k)
            b.writableBytes = nil
            retired = [b]
        } else {
            r.violations.append(Violation(.packedUsedId, "used descriptor at \(at(q)) names buffer id \(id), which is not in flight (never made available, or already used)"))
        }
        if let b = retired.last, let w = b.writableBytes, flags.contains(.write), UInt64(len) > w {
            r.violations.append(Violation(.vqUsedLen, "used descriptor at \(at(q)) for buffer id \(id) has len \(len), more than the buffer's \(w) device-writable bytes"))
        }
        used = min(avail, q + UInt64(count))
        if !deviceReadsVisible { next = used }
        r.completed = retired.count
        notePublication(old: q, new: used)
        return r
    }

    /// Why making available, at the driver's position, a list of `count` descriptors with buffer
    /// id `id` (nil: unknown) would break a rule now, or nil if it would not.
    public func exposureBlocker(count: Int, id: UInt16?) -> String? {
        if count > 0 && !cursor.allows(.publish(UInt16(clamping: count))) {
            return "only \(used + UInt64(size) - avail) descriptor(s) are free for its \(count)"
        }
        if let id, let b = byId[id] { return "the buffer with id \(id) made available at \(at(b.start)) is still in flight" }
        return nil
    }

    /// The buffer in flight with id `id`, if its id is known.
    public func buffer(id: UInt16) -> Buffer? { byId[id] }
    /// Ids of the buffers in flight whose ids are known.
    public var inFlightIds: [UInt16] { Array(byId.keys).sorted() }

    /// Whether the buffer made available at position `start` is still in flight.
    public func inFlight(start: UInt64) -> Bool {
        byId.values.contains { $0.start == start } || opaque.contains { $0.start == start }
    }

    /// Makes available, at the driver's position, a list as a poll read it: with its descriptors
    /// (written first, so that the chain rules judge them) or, when the read was not certain, only
    /// its length (`opaque`: id and content unknown).
    /// `known[k]`: whether the body of the list's k-th descriptor was read with certainty; the id
    /// is judged when the last one's was.
    public mutating func exposeObserved(_ descriptors: [PackedDescriptor], indirect tables: [UInt16: PackedIndirectTable],
                                        known: [Bool], readId: UInt16) -> StepResult {
        pristine = false
        var r = StepResult()
        let start = avail
        let count = descriptors.count
        if !cursor.allows(.publish(UInt16(clamping: count))) {
            // Past the free part of the ring: the finding, whatever the content.
            r.violations.append(Violation(.packedDriverOwnership, "driver makes a list of \(count) descriptor(s) available at \(at(start)), but only \(used + UInt64(size) - avail) descriptor(s) are free"))
            return r
        }
        for (k, d) in descriptors.enumerated() {
            let s = slot(start + UInt64(k))
            ring[Int(s)] = d
            if known[k], let t = tables[s] {
                for (j, e) in t.describedEntries { _ = writeIndirect(parent: s, entry: j, e) }
            }
        }
        // Exactly this list: what the model's ring holds after it is older than what the poll read.
        // Uncertain: its flags were read reliably (the device writes only id and len before it
        // publishes), its addr, len, id and tables may not be the driver's.
        let first = start
        expose(into: &r, limit: 1, known: { q in q >= first && Int(q - first) < known.count ? known[Int(q - first)] : false },
               idKnown: known.last ?? false, readId: readId)
        return r
    }
}
