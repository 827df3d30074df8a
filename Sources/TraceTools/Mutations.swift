import TraceFormat
import VirtioProtocol

/// Named bug classes applied to a real trace, each a small edit at the first place that suits it,
/// so a test can show the checker catches that class in real traffic. On a polled trace each class
/// is planted where the polls decide it (`Specs/model.md`, "Polled observations"): a bug the
/// samples cannot tell from legal behaviour would prove nothing about the checker.
public enum BugClass: String, CaseIterable, Sendable {
    case doubleCompletion = "double-completion"
    case usedIdNeverAvailable = "used-id-never-available"
    case availIdxJump = "avail-idx-jump"
    case consumedPastAvail = "consumed-past-avail"
    case descriptorChangedInFlight = "descriptor-changed-in-flight"
    case secondWorker = "second-worker"
    case rxOnDisabledQueue = "rx-on-disabled-queue"
    case usedBeforeRingReady = "used-before-ring-ready"
    case usedAfterStop = "used-after-stop"
    case usedLenTooLong = "used-len-too-long"
    case headOutOfRange = "head-out-of-range"
    case badQueueSize = "bad-queue-size"
    case ringSetupBeforeOwner = "ring-setup-before-owner"
    case inOrderSwap = "in-order-swap"
    case chainFaultOnReusedHead = "chain-fault-on-reused-head"
    case chainFaultCompletedLater = "chain-fault-completed-later"
    case usedOverMissingElement = "used-over-missing-element"
    // Packed rings.
    case packedDescRewrittenInFlight = "packed-desc-rewritten-in-flight"
    case packedHeadFirst = "packed-head-first"
    case packedWrapNotFlipped = "packed-wrap-not-flipped"
    case packedUsedWrongWrap = "packed-used-wrong-wrap"
    case packedUsedIdNotInFlight = "packed-used-id-not-in-flight"
    case packedBufferIdReused = "packed-buffer-id-reused"
    case packedOverrun = "packed-overrun"
    case packedUsedPastAvail = "packed-used-past-avail"
    case packedReadOutOfOrder = "packed-read-out-of-order"
    case packedInterruptDropped = "packed-interrupt-dropped"
    case packedEventReserved = "packed-event-reserved"
    case packedUsedLenTooLong = "packed-used-len-too-long"

    public var name: String { rawValue }

    /// A class of the packed ring (planted only in traces that negotiated VIRTIO_F_RING_PACKED).
    public var packed: Bool { rawValue.hasPrefix("packed-") }

    public var summary: String {
        switch self {
        case .doubleCompletion: return "the device completes the same head twice (the next used element repeats the previous id)"
        case .usedIdNeverAvailable: return "a used element names an id that was never made available (one past the table)"
        case .availIdxJump: return "avail.idx jumps past the queue size (more buffers in flight than the ring holds)"
        case .consumedPastAvail: return "the device reads the avail entry at avail.idx, one the driver has not published"
        case .descriptorChangedInFlight: return "the driver rewrites the head descriptor of a chain the device owns"
        case .secondWorker: return "a second worker services a vq while the first is still in its pass"
        case .rxOnDisabledQueue: return "the device completes RX buffers on a ring SET_VRING_ENABLE disabled"
        case .usedBeforeRingReady: return "ring activity on a vq whose SET_VRING_KICK never came"
        case .usedAfterStop: return "the device keeps completing after GET_VRING_BASE stopped the ring"
        case .usedLenTooLong: return "a used len larger than the chain's device-writable bytes"
        case .headOutOfRange: return "an avail entry names a head outside the descriptor table"
        case .badQueueSize: return "SET_VRING_NUM accepts a size that is not a power of two"
        case .ringSetupBeforeOwner: return "a ring message (SET_VRING_NUM) succeeds before SET_OWNER"
        case .inOrderSwap: return "with IN_ORDER, the last two used elements of a batch are swapped"
        case .chainFaultOnReusedHead: return "a head the driver reuses within one poll gets a looping chain the last time, which the device completes a poll later"
        case .chainFaultCompletedLater: return "a chain the device completes a poll after its exposure loops"
        case .usedOverMissingElement: return "the device publishes one more used position without writing its element (the slot still holds the last lap's)"
        case .packedDescRewrittenInFlight: return "packed: the driver writes a descriptor again right after the flags store that made it available"
        case .packedHeadFirst: return "packed: the first descriptor of a list is made available before the rest (polled: a poll finds it so)"
        case .packedWrapNotFlipped: return "packed: the first descriptor after the ring's end is made available with the last lap's wrap counter"
        case .packedUsedWrongWrap: return "packed: the device marks a descriptor used with the other lap's wrap counter"
        case .packedUsedIdNotInFlight: return "packed: a used descriptor names a buffer id no buffer in flight has"
        case .packedBufferIdReused: return "packed: a list is made available with the buffer id of one still in flight"
        case .packedOverrun: return "packed: the driver stores flags on a descriptor the device owns"
        case .packedUsedPastAvail: return "packed: with nothing in flight the device writes a used descriptor"
        case .packedReadOutOfOrder: return "packed: the device takes a descriptor out of ring order"
        case .packedInterruptDropped: return "packed: an interrupt the Driver Event Suppression asks for is dropped"
        case .packedEventReserved: return "packed: the Driver Event Suppression is written with the reserved flags value 3"
        case .packedUsedLenTooLong: return "packed: a used descriptor claims one byte more than its buffer's writable ones"
        }
    }

    /// The rule the checker must report (`inOrder`: the trace negotiated VIRTIO_F_IN_ORDER;
    /// `packed`: VIRTIO_F_RING_PACKED, which only changes which size rule a bad size breaks).
    public func expectedRule(inOrder: Bool = false, packed: Bool = false) -> RuleID {
        switch self {
        case .badQueueSize: return packed ? .packedSize : .vqSize
        case .packedDescRewrittenInFlight: return .packedFlagsLast
        case .packedHeadFirst: return .packedChainHeadLast
        case .packedWrapNotFlipped, .packedUsedWrongWrap: return .packedWrapCounter
        case .packedUsedIdNotInFlight: return .packedUsedId
        case .packedBufferIdReused: return .packedBufferId
        case .packedOverrun: return .packedDriverOwnership
        case .packedUsedPastAvail: return .packedDeviceOwnership
        case .packedReadOutOfOrder: return .packedDeviceOrder
        case .packedInterruptDropped: return .packedInterruptMissed
        case .packedEventReserved: return .packedEventFlags
        case .packedUsedLenTooLong: return .vqUsedLen
        case .doubleCompletion, .usedIdNeverAvailable, .inOrderSwap: return .vqUsedId
        case .availIdxJump: return .vqInflight
        case .consumedPastAvail: return .vqAvailRead
        case .descriptorChangedInFlight: return .vqDriverOwnership
        case .secondWorker: return .vhostSingleConsumer
        case .rxOnDisabledQueue: return .netRxqInactive
        case .usedBeforeRingReady: return .vhostRingNotReady
        case .usedAfterStop: return .vhostRingStopped
        case .usedLenTooLong: return .vqUsedLen
        case .headOutOfRange: return .vqDescIndex
        case .ringSetupBeforeOwner: return .vhostOwnerFirst
        case .chainFaultOnReusedHead, .chainFaultCompletedLater: return .vqChainLoop
        // With IN_ORDER the slot's stale element is compared with the buffer retired there.
        case .usedOverMissingElement: return inOrder ? .vqUsedId : .vqUsedIdx
        }
    }
}

public struct MutationError: Error, CustomStringConvertible {
    public let description: String
    init(_ s: String) { description = s }
}

public enum Mutator {
    /// Applies `fault` to the events; returns the new events and a sentence saying what changed.
    public static func apply(_ fault: BugClass, header: TraceHeader, events input: [TraceEvent]) throws -> (events: [TraceEvent], change: String) {
        if fault.packed {
            guard negotiated(.ringPacked, header: header, events: input) else {
                throw MutationError("no place for \(fault.name): the trace did not negotiate VIRTIO_F_RING_PACKED")
            }
            return try PackedMutator.apply(fault, header: header, events: input)
        }
        guard negotiated(.ringPacked, header: header, events: input) else { return try applyToSplit(fault, header: header, events: input) }
        do { return try applyToSplit(fault, header: header, events: input) } catch let e as MutationError {
            // The classes of split-ring data find none in a packed trace (its packed-* siblings do).
            throw MutationError("\(e.description) (the trace's rings are packed: a split-ring class has no split data to edit)")
        }
    }

    private static func applyToSplit(_ fault: BugClass, header: TraceHeader, events input: [TraceEvent]) throws -> (events: [TraceEvent], change: String) {
        var ev = input
        let sampled = header.flags.contains(.sampled)
        let view = sampled ? PolledView(events: ev) : PolledView(events: [])
        let inOrder = negotiated(.inOrder, header: header, events: ev)
        // Queue sizes as last set (header, then SET_VRING_NUM): one pass.
        var sizes: [UInt16: UInt32] = [:]
        for e in ev where e.kind == .setVringNum { sizes[e.vq] = UInt32(truncatingIfNeeded: e.p0) }
        func sizeOf(_ vq: UInt16) -> UInt32 {
            sizes[vq] ?? (Int(vq) < header.queueCount ? UInt32(header.queueSizes[Int(vq)]) : 0)
        }
        func first(_ what: String, where p: (Int, TraceEvent) -> Bool) throws -> Int {
            guard let i = ev.indices.first(where: { p($0, ev[$0]) }) else { throw MutationError("no place for \(fault.name): the trace has no \(what)") }
            return i
        }
        func noPlace(_ why: String) -> MutationError { MutationError("no place for \(fault.name): \(why)") }
        func role(_ vq: UInt16) -> QueueRole { header.layout.role(of: Int(vq), queueCount: header.queueCount) }
        func isRX(_ vq: UInt16) -> Bool { if case .rx = role(vq) { return true }; return false }
        let rings = Set(view.polls.map(\.vq)).sorted()
        // Position of the trace's first completion (traffic is under way from there).
        let traffic = (try? first("used element") { $1.kind == .usedEntry }) ?? 0
        /// Drops the events of a last poll of `vq` that the trace cut short, so that polls can follow.
        func dropCutShort(_ vq: UInt16) {
            guard let cut = view.cutShort[vq], !cut.isEmpty else { return }
            let drop = Set(cut)
            ev = ev.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
        }
        /// Appends a poll of `vq` (after everything) and a quiet one, the way a recorder would.
        func appendPolls(_ vq: UInt16, last p: PolledView.Poll, used entries: [(UInt16, UInt32, UInt32)], newAvail: UInt16? = nil) {
            let t = ev.last?.timestamp ?? 0
            let u = p.used &+ UInt16(entries.count)
            for (pos, id, len) in entries { ev.append(TraceEvent(.usedEntry, vq: vq, timestamp: t, p0: UInt64(pos), p1: UInt64(id), p2: UInt64(len), flags: .sampled)) }
            if p.marked {
                ev.append(TraceEvent(.poll, vq: vq, timestamp: t, p0: UInt64(newAvail ?? p.avail), p1: UInt64(u), flags: .sampled))
                ev.append(TraceEvent(.poll, vq: vq, timestamp: t, p0: UInt64(newAvail ?? p.avail), p1: UInt64(u), flags: .sampled))
            } else {
                ev.append(TraceEvent(.usedIdx, vq: vq, timestamp: t, p0: UInt64(u), flags: .sampled))
                ev.append(TraceEvent(.availIdx, vq: vq, timestamp: t, p0: UInt64(newAvail ?? p.avail), flags: .sampled))
            }
        }

        switch fault {
        case .doubleCompletion where !sampled:
            // Exact trace: after a vq's last completion, the device completes the same head again,
            // which the driver did not make available since. One pass for the last indices per vq.
            var lastUsed: [UInt16: Int] = [:], lastIdx: [UInt16: Int] = [:]
            for (k, e) in ev.enumerated() {
                if e.kind == .usedEntry { lastUsed[e.vq] = k } else if e.kind == .usedIdx { lastIdx[e.vq] = k }
            }
            var reexposed = Set<UInt16>()
            for (k, e) in ev.enumerated() where e.kind == .availEntry {
                if let u = lastUsed[e.vq], k > u, UInt64(e.aux) == ev[u].p1 { reexposed.insert(e.vq) }
            }
            for vq in lastUsed.keys.sorted() where !reexposed.contains(vq) {
                guard let u = lastUsed[vq], let ui = lastIdx[vq], ui > u else { continue }
                let used = UInt16(truncatingIfNeeded: ev[ui].p0), t = ev.last!.timestamp
                ev += [TraceEvent(.usedEntry, vq: vq, worker: ev[u].worker, timestamp: t, p0: UInt64(used), p1: ev[u].p1, p2: ev[u].p2),
                       TraceEvent(.usedIdx, vq: vq, worker: ev[u].worker, timestamp: t, p0: UInt64(used &+ 1))]
                return (ev, "events \(ev.count - 2)...: the device completes head \(ev[u].p1) on vq \(vq) again at used position \(used), and the driver has not re-exposed it")
            }
            throw noPlace("no vq whose last completed head stays unexposed")
        case .doubleCompletion, .usedOverMissingElement:
            guard sampled else { throw noPlace("only polled traces are edited for this class") }
            // After a ring's last poll, the device publishes one more used position. A quiet poll
            // follows: the driver made nothing available that could explain it. On a ring with
            // nothing in flight any completion is impossible; its element either repeats the last
            // completed head or (missing element) is what the slot held a lap earlier.
            for vq in rings {
                let ps = view.polls(of: vq)
                guard let p = ps.last, p.avail == p.used, let lastDone = ps.last(where: { !$0.completions.isEmpty })?.completions.last else { continue }
                let n = UInt16(truncatingIfNeeded: sizeOf(vq))
                let stale = n > 0 ? ps.flatMap(\.completions).last(where: { $0.pos == p.used &- n }) : nil
                if fault == .doubleCompletion {
                    // The repeated element must differ from what its slot held a lap earlier:
                    // otherwise the samples cannot tell it was written at all (VQ-USED-IDX).
                    if let st = stale, st.id == lastDone.id && st.len == lastDone.len { continue }
                    dropCutShort(vq)
                    appendPolls(vq, last: p, used: [(p.used, lastDone.id, lastDone.len)])
                    return (ev, "after event \(p.end): the device completes head \(lastDone.id) on vq \(vq) again at used position \(p.used), with nothing in flight")
                }
                guard let stale else { continue }
                dropCutShort(vq)
                appendPolls(vq, last: p, used: [(p.used, stale.id, stale.len)])
                return (ev, "after event \(p.end): the device publishes used position \(p.used) on vq \(vq) without writing it (the slot still holds id \(stale.id) from position \(stale.pos))")
            }
            throw noPlace("no ring ends with nothing in flight\(fault == .usedOverMissingElement ? " and a full lap seen" : "")")
        case .usedIdNeverAvailable:
            guard sampled else {
                let i = try first("used element") { $1.kind == .usedEntry }
                ev[i].p1 = UInt64(sizeOf(ev[i].vq))
                return (ev, "event \(i): used element on vq \(ev[i].vq) names id \(ev[i].p1), past the table")
            }
            // The last element of a poll: the device certainly wrote it (it published used.idx past it).
            guard let p = view.polls.first(where: { $0.end > traffic && !$0.completions.isEmpty }), let c = p.completions.last else {
                throw noPlace("no poll saw a completion")
            }
            let n = sizeOf(p.vq)
            ev[c.entry].p1 = UInt64(n)
            return (ev, "event \(c.entry): used element on vq \(p.vq) names id \(n), past the \(n)-entry table, so never made available")
        case .availIdxJump:
            guard sampled else { throw noPlace("only polled traces are edited for this class") }
            // At a ring's last poll, the driver makes one more buffer available than the ring holds:
            // the poll reads avail.idx more than N past the used.idx it reads next.
            for vq in rings {
                let ps = view.polls(of: vq)
                guard let p = ps.last, let e = p.exposures.last ?? ps.last(where: { !$0.exposures.isEmpty })?.exposures.last else { continue }
                let n = UInt16(truncatingIfNeeded: sizeOf(vq))
                let inFlight = p.avail &- p.used
                guard n > 0, inFlight <= n else { continue }
                let extra = Int(n - inFlight) + 1
                let t = ev.last?.timestamp ?? 0
                var added: [TraceEvent] = []
                for k in 0..<extra {
                    added += e.reads.map { var r = ev[$0]; r.timestamp = t; return r }
                    added.append(TraceEvent(.availEntry, vq: vq, aux: e.head, timestamp: t, p0: UInt64(p.avail &+ UInt16(k)), flags: .sampled))
                }
                let a = p.avail &+ UInt16(extra)
                dropCutShort(vq)
                if p.marked {
                    added.append(TraceEvent(.poll, vq: vq, timestamp: t, p0: UInt64(a), p1: UInt64(p.used), flags: .sampled))
                } else {
                    added.append(TraceEvent(.availIdx, vq: vq, timestamp: t, p0: UInt64(a), flags: .sampled))
                }
                ev += added
                return (ev, "after event \(p.end): avail.idx on vq \(vq) moves to \(a) with used.idx at \(p.used): \(inFlight + UInt16(extra)) buffers in flight, more than the queue size \(n)")
            }
            throw noPlace("no ring with polls")
        case .consumedPastAvail:
            // An instrumented device's read event: the recorder never writes these, so the exact model judges it.
            let i = try first("poll after traffic") { $0 > traffic && ($1.kind == .availIdx || $1.kind == .poll) }
            let e = ev[i]
            ev.insert(TraceEvent(.availRead, vq: e.vq, aux: 0, timestamp: e.timestamp, p0: e.p0 & 0xffff), at: i + 1)
            return (ev, "event \(i + 1): device reads avail position \(e.p0 & 0xffff) on vq \(e.vq), which avail.idx \(e.p0 & 0xffff) does not cover")
        case .descriptorChangedInFlight:
            guard sampled else { throw noPlace("only polled traces are edited for this class") }
            // A chain exposed in one poll and still in flight (completion not seen) through the next
            // poll, which walks into its head descriptor and reads other content there.
            for vq in rings {
                let ps = view.polls(of: vq)
                for (k, x, done) in PolledView.completionPolls(ps, inOrder: inOrder) where (done ?? Int.max) > k && PolledView.trusted(ps[k], size: sizeOf(vq)) {
                    let e = ps[k].exposures[x]
                    // Another chain read in the same poll (the device owned this one throughout it).
                    guard let r = e.reads.first(where: { ev[$0].kind == .desc && ev[$0].aux == e.head }),
                          let other = ps[k].exposures[(x + 1)...].first(where: { $0.head != e.head }) else { continue }
                    var w = ev[r]
                    w.timestamp = ev[other.entry].timestamp
                    w.p1 = TraceEvent.packDesc(len: w.descLen &+ 1, flags: w.descFlags.rawValue, next: w.descNext)
                    ev.insert(w, at: other.entry)
                    return (ev, "event \(other.entry): a poll of vq \(vq) reads descriptor \(e.head) with len \(w.descLen), while the chain exposed at position \(e.pos) with len \(ev[r].descLen) is still in flight")
                }
            }
            throw noPlace("no chain stays in flight until after the poll that saw it made available")
        case .secondWorker:
            let i = try first("used index after traffic") { $0 >= traffic && ($1.kind == .usedIdx || $1.kind == .poll) }
            let vq = ev[i].vq, t = ev[i].timestamp
            ev.insert(contentsOf: [TraceEvent(.serviceBegin, vq: vq, worker: 0, timestamp: t),
                                   TraceEvent(.serviceBegin, vq: vq, worker: 1, timestamp: t),
                                   TraceEvent(.serviceEnd, vq: vq, worker: 1, timestamp: t, flags: .sampled),
                                   TraceEvent(.serviceEnd, vq: vq, worker: 0, timestamp: t, flags: .sampled)], at: i + 1)
            return (ev, "events \(i + 1)...\(i + 4): workers 0 and 1 service vq \(vq) at the same time")
        case .rxOnDisabledQueue:
            guard sampled else { throw noPlace("only polled traces are edited for this class") }
            // The ring is disabled before a poll, and a later poll still sees RX completions: they
            // were published after the earlier poll, so certainly while the ring was disabled.
            // No SET_VRING_ENABLE of that vring between the two polls (QEMU re-enables rings when
            // the guest changes its queue count), or the completions would be legal again.
            let enables = ev.indices.filter { ev[$0].kind == .setVringEnable }
            for vq in rings where isRX(vq) {
                let ps = view.polls(of: vq)
                guard let k = ps.indices.first(where: { k in
                    k > 0 && ps[k].end > traffic && !ps[k].completions.isEmpty
                        && !enables.contains { ev[$0].vq == vq && $0 > ps[k - 1].start && $0 <= ps[k].end }
                }) else { continue }
                let before = ps[k - 1]
                ev.insert(.control(.setVringEnable, vq: vq, value: 0, t: ev[before.start].timestamp), at: before.start)
                return (ev, "event \(before.start): SET_VRING_ENABLE 0 on RX vq \(vq), two polls before the device completes receive buffers there")
            }
            throw noPlace("no RX ring with completions after a first poll")
        case .usedBeforeRingReady:
            let i = try first("used element") { $1.kind == .usedEntry }
            let vq = ev[i].vq
            let before = ev.count
            ev.removeAll { $0.kind == .setVringKick && $0.vq == vq }
            guard ev.count < before else { throw noPlace("vq \(vq) has no SET_VRING_KICK") }
            return (ev, "removed the SET_VRING_KICK of vq \(vq); its ring activity now comes before the ring was set up")
        case .usedAfterStop:
            guard sampled else { throw noPlace("only polled traces are edited for this class") }
            // GET_VRING_BASE between two polls; the next one still sees completions.
            guard let p = view.polls.first(where: { $0.end > traffic && !$0.completions.isEmpty }) else { throw noPlace("no poll saw a completion") }
            ev.insert(.control(.getVringBase, vq: p.vq, value: UInt64(p.prevUsed), t: ev[p.start].timestamp), at: p.start)
            return (ev, "event \(p.start): GET_VRING_BASE stops vq \(p.vq) before a poll that sees its used.idx move on")
        case .usedLenTooLong:
            // On a polled trace: a completion a poll after its exposure (the chain was read while owned).
            for vq in (sampled ? rings : []) {
                let ps = view.polls(of: vq)
                for (k, x, done) in PolledView.completionPolls(ps, inOrder: inOrder) {
                    guard let d = done, d > k else { continue }
                    let e = ps[k].exposures[x]
                    guard let c = ps[d].completions.first(where: { inOrder ? true : UInt16(truncatingIfNeeded: $0.id) == e.head }) else { continue }
                    let target = inOrder ? (ps[d].completions.first { $0.pos == e.pos }?.entry ?? c.entry) : c.entry
                    ev[target].p2 = UInt64(UInt32.max)
                    return (ev, "event \(target): used element on vq \(vq) claims \(UInt32.max) bytes written into the chain exposed at position \(e.pos)")
                }
            }
            if !sampled {
                // Exact trace: a completion of a head the driver made available (one pass).
                struct Key: Hashable { let vq: UInt16; let head: UInt64 }
                var exposed = Set<Key>()
                for (i, e) in ev.enumerated() {
                    if e.kind == .availEntry { exposed.insert(Key(vq: e.vq, head: UInt64(e.aux))) }
                    if e.kind == .usedEntry && exposed.contains(Key(vq: e.vq, head: e.p1)) {
                        ev[i].p2 = UInt64(UInt32.max)
                        return (ev, "event \(i): used element on vq \(e.vq) claims \(UInt32.max) bytes written")
                    }
                }
            }
            throw noPlace("no chain completed a poll after its exposure")
        case .headOutOfRange:
            let i: Int
            if sampled {
                guard let p = view.polls.first(where: { $0.end > traffic && !$0.exposures.isEmpty && PolledView.trusted($0, size: sizeOf($0.vq)) }) else { throw noPlace("no poll saw an exposure") }
                i = p.exposures[0].entry
            } else {
                i = try first("avail entry after traffic") { $0 > traffic && $1.kind == .availEntry }
            }
            let n = sizeOf(ev[i].vq)
            ev[i].aux = UInt16(truncatingIfNeeded: n)
            return (ev, "event \(i): avail entry on vq \(ev[i].vq) names head \(n) of a \(n)-entry table")
        case .badQueueSize:
            let i = try first("SET_VRING_NUM") { $1.kind == .setVringNum }
            let n = UInt32(truncatingIfNeeded: ev[i].p0)
            if negotiated(.ringPacked, header: header, events: ev) {
                // A packed ring takes any size up to 32768: one past it.
                ev[i].p0 = UInt64(PackedRing.maxQueueSize + 1)
                return (ev, "event \(i): SET_VRING_NUM on vq \(ev[i].vq) sets \(ev[i].p0), more than a packed ring may have")
            }
            ev[i].p0 = UInt64(n > 1 ? n - 1 : 3)
            return (ev, "event \(i): SET_VRING_NUM on vq \(ev[i].vq) sets \(ev[i].p0), not a power of two")
        case .ringSetupBeforeOwner:
            // The back-end accepts ring setup from a front-end that never became its owner.
            let o = try first("SET_OWNER") { $1.kind == .setOwner && $1.succeeded }
            let n = try first("SET_VRING_NUM after SET_OWNER") { $0 > o && $1.kind == .setVringNum && $1.succeeded }
            let moved = ev.remove(at: n)
            ev.insert(moved, at: o)
            return (ev, "event \(o): SET_VRING_NUM on vq \(moved.vq) moved before SET_OWNER, and still succeeds")
        case .inOrderSwap:
            guard inOrder else { throw noPlace("the trace did not negotiate VIRTIO_F_IN_ORDER") }
            guard sampled else { throw noPlace("only polled traces are edited for this class") }
            // The last two elements of a poll: the last one was certainly written, and now names the
            // buffer retired one position before it.
            guard let p = view.polls.first(where: { $0.end > traffic && $0.completions.count >= 2 && $0.completions[$0.completions.count - 1].id != $0.completions[$0.completions.count - 2].id }) else {
                throw noPlace("no poll saw two completions with different ids")
            }
            let a = p.completions[p.completions.count - 2], b = p.completions[p.completions.count - 1]
            ev[a.entry].p1 = UInt64(b.id); ev[b.entry].p1 = UInt64(a.id)
            return (ev, "events \(a.entry) and \(b.entry): used ids \(a.id) and \(b.id) on vq \(p.vq) swapped")
        case .chainFaultOnReusedHead, .chainFaultCompletedLater:
            guard sampled else { throw noPlace("only polled traces are edited for this class") }
            // The last exposure of a head in a poll whose completion comes a poll later: its chain was
            // read while the device owned it. Every read of that descriptor in the poll shows the loop
            // (they all happened while it was owned).
            for vq in rings {
                let ps = view.polls(of: vq)
                for (k, x, done) in PolledView.completionPolls(ps, inOrder: inOrder) where (done ?? Int.max) > k && ps[k].end > traffic {
                    let e = ps[k].exposures[x]
                    if fault == .chainFaultOnReusedHead && ps[k].exposures.filter({ $0.head == e.head }).count < 2 { continue }
                    guard ps[k].exposures[(x + 1)...].allSatisfy({ $0.head != e.head }) else { continue }
                    let reads = ps[k].exposures.flatMap(\.reads).filter { ev[$0].kind == .desc && ev[$0].aux == e.head }
                    guard !reads.isEmpty else { continue }
                    for r in reads { ev[r].p1 = TraceEvent.packDesc(len: ev[r].descLen, flags: ev[r].descFlags.rawValue | SplitRing.DescFlags.next.rawValue, next: e.head) }
                    return (ev, "events \(reads.map(String.init).joined(separator: ",")): the chain at head \(e.head) on vq \(vq) (position \(e.pos)) loops to itself")
                }
            }
            throw noPlace(fault == .chainFaultOnReusedHead ? "no head is made available twice in one poll and completed a poll later" : "no chain is completed a poll after its exposure")

        default:
            throw noPlace("a packed class")
        }
    }

    public static func negotiated(_ bit: FeatureBit, header: TraceHeader, events: [TraceEvent]) -> Bool {
        var f = header.features
        for e in events where e.kind == .setFeatures && e.succeeded { f = e.p0 }
        return f & bit.mask != 0
    }

    /// Events `mutate` holds at most: it edits the whole trace in memory (40 bytes an event), so a
    /// longer trace is refused rather than allowed to take any amount of memory.
    public static let maxEvents = 1 << 23

    /// Reads `input`, applies the fault, writes `output`.
    public static func apply(_ fault: BugClass, input: String, output: String, maxEvents: Int = Mutator.maxEvents) throws -> String {
        let r = try TraceReader(path: input)
        var events: [TraceEvent] = []
        while let (e, off) = try r.next() {
            guard events.count < maxEvents else {
                throw TraceError(offset: off, "mutate edits traces of at most \(maxEvents) events in memory; this one is longer")
            }
            events.append(e)
        }
        let (out, change) = try apply(fault, header: r.header, events: events)
        let w = try TraceWriter(path: output, header: r.header)
        for e in out { w.write(e) }
        w.close()
        return change
    }

    /// Whether `fault` can be planted in a trace with these properties at all (the rest of the
    /// classes need only traffic): IN_ORDER swaps need IN_ORDER; a reused head needs a driver that
    /// reuses heads within one poll (Linux's LIFO free list, not DPDK's ring order).
    public static func needs(_ fault: BugClass) -> String? {
        switch fault {
        case .inOrderSwap: return "VIRTIO_F_IN_ORDER"
        case .chainFaultOnReusedHead: return "a driver that reuses a head within one poll"
        // On polled traces: a ring whose last poll shows nothing in flight (a capture cut in the
        // middle of traffic may have none), and for the missing element a full lap seen.
        case .doubleCompletion: return "a ring that ends with nothing in flight (polled traces)"
        case .usedOverMissingElement: return "a ring that ends with nothing in flight after a full lap"
        case .packedReadOutOfOrder: return "an exact packed trace with the device's reads"
        case .packedHeadFirst: return "a packed ring with lists of two or more (exact) or polls"
        case .packedWrapNotFlipped: return "a packed ring used past its end"
        case _ where fault.packed: return "VIRTIO_F_RING_PACKED and an exact trace"
        default: return nil
        }
    }
}
