import VirtioProtocol
import VirtqueueModel

/// When what a poll read of a packed ring can be held against the driver. A packed ring has no
/// indices: the descriptors' flags are the index, so a recorder reads each descriptor's flags with
/// acquire semantics before its body, and follows the driver's and the device's positions itself
/// (`Specs/model.md`, "Polled packed rings"). The device writes a used descriptor's id and len into
/// a slot before the flags store that publishes it, so a body read near the device's used position
/// may show the device's values instead of the driver's.
public enum PackedSnapshotGuard {
    /// Positions beyond its published used position at which a device may already have written
    /// (not yet published) used descriptors, assumed at most: DPDK flushes a burst of 32 used
    /// descriptors, marking the first one last. A recorder may be told more.
    public static let defaultDeviceWriteAhead: UInt32 = 32
    /// Positions beyond its position whose descriptors a driver may have written before making
    /// them available (the rest of a list, written before its first descriptor), assumed at most.
    public static let defaultDriverWriteAhead: UInt32 = 32

    /// Whether the body (addr, len, id) a poll read at position `p` is what the driver wrote: the
    /// device cannot yet have written a used descriptor there when the poll read it. `usedEnd` is
    /// the first position the same poll's used-side scan found not yet used (read after the bodies);
    /// the device writes only at positions below its used position plus 1 + write-ahead.
    public static func bodyCertain(position p: UInt64, usedEnd: UInt64, deviceWriteAhead: UInt32 = defaultDeviceWriteAhead) -> Bool {
        p >= usedEnd + 1 + UInt64(deviceWriteAhead)
    }

    /// Whether a ring is drained at position `p`, from three flag reads in this order: the
    /// descriptor at `p - 1` marked used for its lap (`before`), the one at `p` marked used for the
    /// previous lap (`at`: not made available since), the one at `p - 1` again (`beforeAgain`).
    /// The first read puts the device's used position at `p` or beyond, hence the driver's too; the
    /// second, with the third showing the driver had not yet rewritten `p - 1` for the next lap,
    /// puts the driver's position at `p` exactly when it was made. Between the two reads both
    /// positions were `p`: every descriptor made available had been used, nothing was in flight.
    public static func drained(position p: UInt64, size: UInt32, before: PackedRing.Flags, at: PackedRing.Flags, beforeAgain: PackedRing.Flags) -> Bool {
        guard p > 0 else { return false }
        let w = PackedRing.wrap(p - 1, size: size)
        return before.isUsed(wrap: w) && beforeAgain.isUsed(wrap: w) && at.isUsed(wrap: !PackedRing.wrap(p, size: size))
    }

    /// Whether a used descriptor a poll read at position `q` may have been rewritten by the driver
    /// (for position q + N) before the read: the driver's position found by a later scan of the
    /// avail side, plus what it may write ahead, reaches q + N.
    public static func usedAtRisk(position q: UInt64, driverPositionAfter a: UInt64, size: UInt32,
                                  driverWriteAhead: UInt32 = defaultDriverWriteAhead) -> Bool {
        a + UInt64(driverWriteAhead) >= q + UInt64(size)
    }
}

/// Judges one packed ring observed by polling, by the principle of `PolledRing`: look for an order
/// of the observed exposures and completions that a legal run could have produced and feed it to
/// the exact model (`PackedVirtqueue`); report a finding only when no such order exists.
///
/// A poll lists, in position order from where the previous one ended, the lists it found made
/// available (each descriptor's flags read before its body; a list whose first descriptor is
/// available but a later one is not is listed up to that one, which is then a flags read alone,
/// and the poll's `avail` stays at its first descriptor), then the used descriptors it found at the
/// device's used position (skipping each buffer's list or IN_ORDER batch), then `poll avail=A
/// used=U`: the positions it reached, U being one it found not yet used. Flags are read reliably
/// (the device stores a used descriptor's flags only to publish it, after its id and len); a
/// descriptor's body is judged only where `PackedSnapshotGuard.bodyCertain` holds: the list's id
/// where its last descriptor's does, its content where all of them do. Otherwise the id is only
/// what the recorder matched used descriptors against.
public struct PolledPackedRing: PolledRingModel {
    public let size: UInt32
    public let base: RingBase
    public private(set) var features: RingFeatures
    public var format: RingFormat { .packed }
    public let deviceWriteAhead: UInt32
    public private(set) var ring: PackedVirtqueue?
    public private(set) var coverage = PolledCoverage()
    public private(set) var broken: String?

    private var poll = 0
    private var prevA: UInt64 = 0
    private var prevU: UInt64 = 0
    private var afterGap = false

    // The open poll.
    private struct Read { var slot: UInt16; var body: PackedDescriptor?; var flags: PackedRing.Flags; var entries: PackedIndirectTable; var ref: UInt64 }
    private var reads: [Read] = []
    private var pendingBody: (slot: UInt16, d: PackedDescriptor)?
    private var pendingEntries: [(parent: UInt16, entry: UInt16, d: PackedDescriptor)] = []
    private var pendingUsed: (slot: UInt16, id: UInt16, len: UInt32)?
    private var usedReads: [(slot: UInt16, id: UInt16, len: UInt32, flags: PackedRing.Flags, ref: UInt64)] = []

    struct Exposure {
        var start: UInt64; var descriptors: [PackedDescriptor]; var tables: [UInt16: PackedIndirectTable]
        /// Per descriptor: whether its body was read with certainty (the last one's decides the id).
        var known: [Bool] = []
        var readId: UInt16; var poll: Int; var ref: UInt64
        var idCertain: Bool { known.last ?? false }
        var certain: Bool { known.allSatisfy { $0 } }
    }
    struct Completion { var pos: UInt64; var count: Int; var id: UInt16; var len: UInt32; var flags: PackedRing.Flags; var poll: Int; var ref: UInt64 }
    private var exposures: [Exposure] = []
    private var exposureHead = 0
    private var completions: [Completion] = []
    private var completionHead = 0

    public init(size: UInt32, base: RingBase, features: RingFeatures, deviceWriteAhead: UInt32 = PackedSnapshotGuard.defaultDeviceWriteAhead) {
        self.size = size; self.base = base; self.features = features; self.deviceWriteAhead = deviceWriteAhead
    }

    public mutating func setFeatures(_ f: RingFeatures) { features = f; ring?.features = f }
    public mutating func setBase(_ b: RingBase) { ring?.setBase(b) }
    public mutating func interrupt() { ring?.interrupt() }
    public mutating func closeLegacyPoll() -> PollOutcome? { nil }

    func slot(_ p: UInt64) -> UInt16 { PackedRing.slot(p, size: size) }
    func wrap(_ p: UInt64) -> Bool { PackedRing.wrap(p, size: size) }

    // MARK: observations

    public mutating func observe(_ o: PolledObservation, ref: UInt64) -> PollOutcome? {
        switch o {
        case .packedDescriptor(let s, let d):
            pendingBody = (s, d)
            pendingEntries = []
        case .packedIndirect(let p, let e, let d):
            pendingEntries.append((p, e, d))
        case .packedFlags(let s, let f):
            var body: PackedDescriptor?
            var entries = PackedIndirectTable()
            if let b = pendingBody, b.slot == s {
                body = b.d
                for x in pendingEntries where x.parent == s { entries.set(x.entry, x.d) }
            }
            pendingBody = nil; pendingEntries = []
            reads.append(Read(slot: s, body: body, flags: f, entries: entries, ref: ref))
        case .packedUsed(let s, let id, let len):
            pendingUsed = (s, id, len)
        case .packedUsedFlags(let s, let f):
            if let u = pendingUsed, u.slot == s { usedReads.append((s, u.id, u.len, f, ref)) }
            else { usedReads.append((s, 0, 0, [], ref)) }   // a flags read without its body: malformed
            pendingUsed = nil
        case .poll(let a, let u):
            return endPoll(avail: a, used: u, ref: ref)
        default:
            // A split-ring observation on a packed ring.
            var out = PollOutcome()
            out.foreign = true
            return out
        }
        return nil
    }

    public mutating func gap() {
        finish()
        afterGap = true
        clearOpen()
    }

    /// The poll ending a gap may list the lists in flight where it restarts (`PackedResync`): kept.
    public mutating func gapEnds() {
        finish()
        afterGap = true
    }

    /// Forgets the indirect tables no buffer in flight uses (the checker's budget over all rings).
    public mutating func forgetIdleIndirectTables() { ring?.forgetIdleIndirectTables() }
    public var indirectEntriesHeld: Int { ring?.indirectEntriesHeld ?? 0 }
    public var indirectTablesHeld: Int { ring?.indirectTablesHeld ?? 0 }

    public mutating func finish() {
        coverage.completionsUndecided += UInt64(completions.count - completionHead)
        completions = []; completionHead = 0
    }

    private mutating func clearOpen() {
        reads = []; usedReads = []; pendingBody = nil; pendingEntries = []; pendingUsed = nil
    }

    // MARK: closing a poll

    private mutating func fail(_ why: String, _ out: inout PollOutcome) -> PollOutcome {
        out.anomaly = why
        broken = why
        return out
    }

    private mutating func endPoll(avail encA: UInt16, used encU: UInt16, ref: UInt64) -> PollOutcome {
        var out = PollOutcome()
        defer { clearOpen(); poll += 1 }
        if broken != nil { return out }
        if afterGap {
            // A restart: the recorder found the ring drained (`PackedSnapshotGuard.drained`), the
            // driver's and the device's positions both at the one it reports, nothing in flight;
            // or (`PackedResync`) the device's used position at `used` with the lists it lists in
            // flight, tiling [used, avail). Judging starts again there; what was pending before the
            // gap is left undecided. The lists are buffers in flight whose ids are not held against
            // the driver (one of them may already have been used, by a device that completes out of
            // order, before the restart): opaque, matched by the id read.
            var r = PackedVirtqueue(size: size, base: RingBase(index: encU & PackedRing.indexMask, wrap: encU & PackedRing.wrapBit != 0), features: features)
            guard usedReads.isEmpty, let a = PackedRing.decode(encA, after: r.avail, size: size), a - r.avail <= UInt64(size) else {
                return fail("after a ring_gap a packed ring restarts at a poll listing only the lists in flight between its used and avail positions; this one reports avail \(encA), used \(encU)", &out)
            }
            var pos = r.avail
            var i = 0
            var listed = 0
            while i < reads.count {
                var descs: [PackedDescriptor] = []
                while true {
                    guard i < reads.count, pos < a, let body = reads[i].body, reads[i].slot == slot(pos), reads[i].flags.isAvailable(wrap: wrap(pos)) else {
                        return fail("a restart poll after a ring_gap lists, at position \(pos), what is not the next descriptor of a list made available before its avail position \(encA)", &out)
                    }
                    var d = body
                    d.flags = reads[i].flags
                    descs.append(d)
                    i += 1; pos += 1
                    if !d.flags.contains(.next) { break }
                }
                let res = r.exposeObserved(descs, indirect: [:], known: Array(repeating: false, count: descs.count), readId: descs.last!.id)
                out.violations += res.violations.map { PolledViolation(ref: reads[i - 1].ref, violation: $0) }
                listed += 1
            }
            guard pos == a else {
                return fail("a restart poll after a ring_gap reports avail \(encA) but lists lists up to position \(pos)", &out)
            }
            afterGap = false
            if ring != nil { coverage.restarts += 1 }
            exposures = []; exposureHead = 0; completions = []; completionHead = 0
            out.exposed = listed
            coverage.exposures += UInt64(listed)
            coverage.restartLists += UInt64(listed)
            ring = r
            prevA = r.avail; prevU = r.used
            return out
        }
        if ring == nil {
            ring = PackedVirtqueue(size: size, base: base, features: features)
            prevA = ring!.avail; prevU = prevA
        }
        guard let a = PackedRing.decode(encA, after: prevA, size: size), let u = PackedRing.decode(encU, after: prevU, size: size) else {
            return fail("a poll reports positions (avail \(encA), used \(encU)) that do not follow on from \(PackedRing.encode(prevA, size: size)), \(PackedRing.encode(prevU, size: size)) on a ring of \(size)", &out)
        }
        // The avail side: complete lists from prevA to a. A list found incomplete (its first
        // descriptor available, a later one not) ends a scan; a later scan of the same poll starts
        // again at its first descriptor.
        var lists: [Exposure] = []
        var pos = prevA
        var i = 0
        var incomplete: (start: UInt64, missing: UInt64, ref: UInt64)?
        scan: while i < reads.count {
            let start = pos
            var descs: [PackedDescriptor] = [], tables: [UInt16: PackedIndirectTable] = [:]
            while true {
                guard i < reads.count else {
                    // The list goes on past what the poll read (the ring's end as the recorder saw it).
                    break scan
                }
                let r = reads[i]
                guard r.slot == slot(pos) else {
                    return fail("a poll lists a descriptor at slot \(r.slot) where position \(pos) (slot \(slot(pos))) comes next", &out)
                }
                i += 1
                guard let body = r.body, r.flags.isAvailable(wrap: wrap(pos)) else {
                    guard !descs.isEmpty else {
                        return fail("a poll lists, at position \(pos), a descriptor that is not available as part of what it found made available", &out)
                    }
                    if incomplete == nil { incomplete = (start, pos, r.ref) }
                    // Whatever the poll read next starts again at this list's first descriptor.
                    pos = start
                    continue scan
                }
                var d = body
                d.flags = r.flags
                descs.append(d)
                if r.entries.described > 0 { tables[r.slot] = r.entries }
                pos += 1
                if !r.flags.contains(.next) { break }
            }
            lists.append(Exposure(start: start, descriptors: descs, tables: tables, readId: descs.last!.id, poll: poll, ref: reads[i - 1].ref))
        }
        let listedEnd = lists.last.map { $0.start + UInt64($0.descriptors.count) } ?? prevA
        // A drained block: the recorder found descriptors from `listedEnd` on made available and
        // used before it could read them (the device overwrites a list in place) and the ring
        // drained at `a` (`PackedSnapshotGuard.drained`): everything made available up to `a` was used.
        let drainedBlock = listedEnd < a && a == u
        guard listedEnd == a || drainedBlock else {
            return fail("a poll reports the driver's position \(a) but lists lists up to position \(listedEnd)", &out)
        }
        // The used side: positions follow from the slots the used descriptors were read at.
        var done: [Completion] = []
        var q = prevU
        for (k, r) in usedReads.enumerated() {
            guard r.slot == slot(q), r.flags.isUsed(wrap: wrap(q)) else {
                return fail("a poll lists a used descriptor at slot \(r.slot) (flags \(r.flags)) where position \(q) (slot \(slot(q))) marked used comes next", &out)
            }
            let nextPos: UInt64
            if k + 1 < usedReads.count {
                let d = (UInt64(usedReads[k + 1].slot) + UInt64(size) - UInt64(r.slot)) % UInt64(size)
                nextPos = q + (d == 0 ? UInt64(size) : d)
            } else {
                nextPos = u
            }
            guard nextPos > q, nextPos - q <= UInt64(size) else {
                return fail("a poll's used descriptors and its used position \(u) do not make whole lists", &out)
            }
            done.append(Completion(pos: q, count: Int(nextPos - q), id: r.id, len: r.len, flags: r.flags, poll: poll, ref: r.ref))
            q = nextPos
        }
        guard q == u, u <= a else {
            return fail("a poll reports the device's position \(u) but its used descriptors reach \(q) (and the driver's is \(a))", &out)
        }
        if drainedBlock {
            // Which used descriptor ends which buffer is not known (some lists were never read), so
            // nothing of this poll is held against either side: its lists and used descriptors are
            // counted, what was pending is left undecided, and judging starts again at `a`, where
            // nothing is in flight.
            // Buffers of the block never listed: those used beyond what was listed and still in flight.
            let listedInFlight = (ring?.buffersInFlight ?? 0) + (exposures.count - exposureHead) + lists.count
            let unseen = max(0, done.count - listedInFlight)
            out.exposed = lists.count + unseen
            out.completed = done.count
            coverage.exposures += UInt64(lists.count + unseen)
            coverage.completions += UInt64(done.count)
            coverage.unseenExposures += UInt64(unseen)
            finish()
            exposures = []; exposureHead = 0
            ring = PackedVirtqueue(size: size, base: RingBase(index: encA & PackedRing.indexMask, wrap: encA & PackedRing.wrapBit != 0), features: features)
            prevA = ring!.avail; prevU = prevA
            return out
        }
        // A list read while the device could not yet have written any of it is what the driver made available.
        for k in lists.indices {
            lists[k].known = (0..<lists[k].descriptors.count).map {
                PackedSnapshotGuard.bodyCertain(position: lists[k].start + UInt64($0), usedEnd: u, deviceWriteAhead: deviceWriteAhead)
            }
        }
        if let inc = incomplete {
            // The first descriptor was available and a later one not: nothing can have reused the
            // later one, since the device's used position (read after it) had not reached the list.
            out.violations.append(PolledViolation(ref: inc.ref, violation: Violation(.packedChainHeadLast,
                "a poll found the first descriptor of the list at position \(inc.start) (slot \(slot(inc.start))) available and its descriptor at position \(inc.missing) (slot \(slot(inc.missing))) not: the first descriptor of a list goes last")))
        }
        out.exposed = lists.count
        out.completed = done.count
        coverage.exposures += UInt64(lists.count)
        coverage.chainsJudged += UInt64(lists.filter(\.certain).count)
        coverage.completions += UInt64(done.count)
        exposures += lists
        completions += done
        prevA = a; prevU = u
        out.violations += advance()
        compact()
        return out
    }

    // MARK: the search for a legal order (as `PolledRing`)

    private var nextExposure: Exposure? { exposureHead < exposures.count ? exposures[exposureHead] : nil }
    private var nextCompletion: Completion? { completionHead < completions.count ? completions[completionHead] : nil }

    private func windowAllows(completion c: Completion) -> Bool { nextExposure.map { $0.poll >= c.poll } ?? true }
    private func windowAllows(exposure e: Exposure) -> Bool { nextCompletion.map { $0.poll >= e.poll - 1 } ?? true }

    private func exposureEnabled(_ e: Exposure) -> Bool {
        ring!.exposureBlocker(count: e.descriptors.count, id: e.idCertain ? e.readId : nil) == nil
    }

    private func couldStillBeExposed(_ c: Completion) -> Bool {
        let r = ring!
        return r.avail + UInt64(c.count) <= r.used + UInt64(size)
    }

    private func forceCompletion() -> Bool {
        guard let c = nextCompletion else { return false }
        guard let e = nextExposure else { return true }
        if !windowAllows(exposure: e) { return true }
        if !windowAllows(completion: c) { return false }
        if features.inOrder { return false }
        for k in exposureHead..<exposures.count where exposures[k].poll <= c.poll + 1 && exposures[k].readId == c.id { return false }
        return true
    }

    private mutating func advance() -> [PolledViolation] {
        var out: [PolledViolation] = []
        while nextExposure != nil || nextCompletion != nil {
            if let c = nextCompletion, windowAllows(completion: c), ring!.canComplete(id: c.id, count: c.count) {
                out += complete(c)
            } else if let e = nextExposure, windowAllows(exposure: e), exposureEnabled(e) {
                out += expose(e)
            } else if nextExposure == nil, let c = nextCompletion, c.poll == poll, couldStillBeExposed(c) {
                // An exposure the next poll sees may still explain it.
                break
            } else if forceCompletion() {
                out += complete(nextCompletion!)
            } else {
                out += expose(nextExposure!)
            }
        }
        return out
    }

    private mutating func complete(_ c: Completion) -> [PolledViolation] {
        completionHead += 1
        return ring!.completeObserved(id: c.id, len: c.len, flags: c.flags, count: c.count).violations.map { PolledViolation(ref: c.ref, violation: $0) }
    }

    private mutating func expose(_ e: Exposure) -> [PolledViolation] {
        exposureHead += 1
        return ring!.exposeObserved(e.descriptors, indirect: e.tables, known: e.known, readId: e.readId)
            .violations.map { PolledViolation(ref: e.ref, violation: $0) }
    }

    private mutating func compact() {
        if exposureHead == exposures.count { exposures.removeAll(keepingCapacity: true); exposureHead = 0 }
        else if exposureHead > 1024 && exposureHead * 2 > exposures.count { exposures.removeFirst(exposureHead); exposureHead = 0 }
        if completionHead == completions.count { completions.removeAll(keepingCapacity: true); completionHead = 0 }
        else if completionHead > 1024 && completionHead * 2 > completions.count { completions.removeFirst(completionHead); completionHead = 0 }
    }
}
