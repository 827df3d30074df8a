import TraceFormat
import VirtioProtocol
import VirtqueueModel
import PolledSemantics

/// The packed bug classes of `mutate`. On an exact trace each replays the trace through the packed
/// model (`PackedVirtqueue`, through the ring-format seam's `RingStep`) to find the first place,
/// after traffic started and with no interrupt owed, where exactly that bug can be planted; plants
/// it; and ends the trace right after it, so that one bug gives one finding. On a polled trace the
/// classes the polls decide are appended after a ring's last poll.
enum PackedMutator {
    /// One vq's model and what the replay needs to build it.
    struct Ring { var model: PackedVirtqueue; var lastDesc: [UInt16: Int] = [:]; var lastFlags: [UInt16: Int] = [:] }

    /// Replays `events` and calls `place` before each data-plane event of a packed ring, with the
    /// vq's model as it is just before it; the first non-nil edit wins. Traffic has started once a
    /// buffer has been used on the ring.
    static func firstPlace(header: TraceHeader, events: [TraceEvent], dropsInterrupt: Bool = false,
                           _ place: (Int, TraceEvent, Ring) -> [TraceEvent]?) -> [TraceEvent]? {
        var features = Features(header.features)
        var sizes = header.queueSizes.map(UInt32.init)
        var bases: [RingBase?] = Array(repeating: nil, count: header.queueCount)
        var rings: [Ring?] = Array(repeating: nil, count: header.queueCount)
        var traffic = Array(repeating: false, count: header.queueCount)
        for (i, e) in events.enumerated() {
            let q = Int(e.vq)
            if e.kind.plane == .control {
                guard e.succeeded else { continue }
                switch e.kind {
                case .setFeatures: features = Features(e.p0); rings = rings.map { _ in nil }
                case .setVringNum where q < sizes.count: sizes[q] = UInt32(truncatingIfNeeded: e.p0); rings[q] = nil
                case .setVringBase where q < sizes.count:
                    bases[q] = RingFormat.packed.base(e.p0)
                    rings[q]?.model.setBase(bases[q]!)
                default: break
                }
                continue
            }
            guard RingFormat(features: features) == .packed, !e.isSampled, q < rings.count, RingFormat.packed.isValidQueueSize(sizes[q]) else { continue }
            if rings[q] == nil {
                rings[q] = Ring(model: PackedVirtqueue(size: sizes[q], base: bases[q] ?? .start, features: RingFeatures(features)))
            }
            // The trace ends at the edit: no ring may owe an interrupt there (the ring of an
            // interrupt the edit drops excepted).
            let othersQuiet = rings.indices.allSatisfy { $0 == q || rings[$0]?.model.owedInterrupt == nil }
            if traffic[q], othersQuiet, rings[q]!.model.owedInterrupt == nil || (dropsInterrupt && e.kind == .interrupt), let edit = place(i, e, rings[q]!) { return edit }
            if e.kind == .interrupt { rings[q]!.model.interrupt(); continue }
            guard let step = RingStep(event: e) else { continue }
            let r = rings[q]!.model.apply(step)
            if r.completed > 0 { traffic[q] = true }
            if e.kind == .packedDesc { rings[q]!.lastDesc[e.aux] = i }
            if e.kind == .packedFlags { rings[q]!.lastFlags[e.aux] = i }
        }
        return nil
    }

    static func after(_ m: PackedVirtqueue, _ e: TraceEvent) -> (PackedVirtqueue, StepResult)? {
        guard let step = RingStep(event: e) else { return nil }
        var m2 = m
        let r = m2.apply(step)
        return (m2, r)
    }

    static func apply(_ fault: BugClass, header: TraceHeader, events ev: [TraceEvent]) throws -> (events: [TraceEvent], change: String) {
        var change = ""
        func noPlace(_ why: String) -> MutationError { MutationError("no place for \(fault.name): \(why)") }
        if header.flags.contains(.sampled) {
            guard fault == .packedHeadFirst else { throw noPlace("on polled packed traces only packed-head-first is planted (the other classes are not decided by polls)") }
            return try headFirstPolled(header: header, events: ev)
        }
        let edit = firstPlace(header: header, events: ev, dropsInterrupt: fault == .packedInterruptDropped) { i, e, ring in
            let m = ring.model
            let vq = e.vq
            let t = e.timestamp
            func slot(_ p: UInt64) -> UInt16 { m.slot(p) }
            switch fault {
            case .packedDescRewrittenInFlight:
                // The store that exposes a list, then its first descriptor written again.
                guard e.kind == .packedFlags, let (_, r) = after(m, e), r.exposed == 1, r.violations.isEmpty, let d = ring.lastDesc[e.aux] else { return nil }
                change = "event \(i + 1): the driver writes descriptor \(e.aux) on vq \(vq) again right after the flags store that made it available"
                var w = ev[d]; w.timestamp = t
                return Array(ev[...i]) + [w]
            case .packedHeadFirst:
                // A list of two or more: its first descriptor's flags move before the rest's.
                guard e.kind == .packedFlags, let (m2, r) = after(m, e), r.exposed == 1, r.violations.isEmpty, m2.avail - m.avail >= 2,
                      let j = ring.lastFlags[slot(m.avail + 1)], j < i, let d = ring.lastDesc[e.aux], d < j else { return nil }
                change = "event \(j): the flags store that makes the list at descriptor \(e.aux) on vq \(vq) available moves before the stores of the rest of the list"
                return Array(ev[..<j]) + [ev[i]] + Array(ev[j..<i])
            case .packedWrapNotFlipped:
                // The first descriptor after the ring's end made available with the last lap's counter.
                guard e.kind == .packedFlags, e.aux == 0, let p = m.driverPosition(slot: 0), p == m.avail, p >= UInt64(m.size) else { return nil }
                change = "event \(i): the driver makes descriptor 0 on vq \(vq) available at position \(p) with the wrap counter of the lap before (not flipped after slot \(m.size - 1))"
                var w = e; w.p0 ^= UInt64(PackedRing.Flags([.avail, .used]).rawValue)
                return Array(ev[..<i]) + [w]
            case .packedUsedWrongWrap:
                guard e.kind == .packedUsedFlags, let q = m.deviceOwned(slot: e.aux), q == m.used else { return nil }
                change = "event \(i): the device marks descriptor \(e.aux) on vq \(vq) used with the other lap's wrap counter"
                var w = e; w.p0 ^= UInt64(PackedRing.Flags([.avail, .used]).rawValue)
                return Array(ev[..<i]) + [w]
            case .packedUsedIdNotInFlight:
                // A used descriptor at the device's position names an id no buffer in flight has.
                guard e.kind == .packedUsed, e.aux == slot(m.used),
                      let f = ev[(i + 1)...].firstIndex(where: { $0.vq == vq && $0.kind == .packedUsedFlags && $0.aux == e.aux }) else { return nil }
                let ids = Set(m.inFlightIds)
                guard let foreign = (0...UInt16.max).first(where: { !ids.contains($0) }) else { return nil }
                change = "event \(i): the used descriptor at descriptor \(e.aux) on vq \(vq) names buffer id \(foreign), which is not in flight"
                var w = e; w.p1 = TraceEvent.packPacked(len: e.packedLen, id: foreign)
                return Array(ev[..<i]) + [w] + Array(ev[(i + 1)...f]).filter { !($0.vq == vq && ($0.kind == .packedUsed || $0.kind == .packedUsedFlags) && $0.aux != e.aux) }
            case .packedBufferIdReused:
                // A list made available with the id of a buffer still in flight.
                guard e.kind == .packedFlags, let (m2, r) = after(m, e), r.exposed == 1, r.violations.isEmpty,
                      let last = ring.lastDesc[slot(m2.avail - 1)], let other = m.inFlightIds.first(where: { $0 != ev[last].packedId }) else { return nil }
                change = "event \(last): the last descriptor of the list made available at event \(i) on vq \(vq) carries buffer id \(other), still in flight"
                var out = Array(ev[...i])
                out[last].p1 = TraceEvent.packPacked(len: ev[last].packedLen, id: other)
                return out
            case .packedOverrun:
                // With something in flight, a flags store on the descriptor at the device's position.
                guard m.avail > m.used, e.kind.plane == .driver else { return nil }
                change = "event \(i): the driver stores available flags on descriptor \(slot(m.used)) of vq \(vq), which the device owns"
                return Array(ev[..<i]) + [.packedFlags(vq: vq, slot: slot(m.used), flags: .available(wrap: m.wrap(m.used + UInt64(m.size))), t: t)]
            case .packedUsedPastAvail:
                guard m.avail == m.used, e.kind.plane == .device || e.kind.plane == .driver else { return nil }
                change = "event \(i): with nothing in flight, the device writes a used descriptor into descriptor \(slot(m.used)) of vq \(vq)"
                return Array(ev[..<i]) + [.packedUsed(vq: vq, worker: e.kind.hasWorker ? e.worker : TraceEvent.none, slot: slot(m.used), id: 0, len: 0, t: t)]
            case .packedReadOutOfOrder:
                guard m.deviceReadsVisible, e.kind == .packedRead, m.avail >= m.next + 2 else { return nil }
                change = "event \(i): the device takes descriptor \(slot(m.avail - 1)) of vq \(vq) before the one at its next position"
                return Array(ev[..<i]) + [.packedRead(vq: vq, worker: e.worker, slot: slot(m.avail - 1), t: t)]
            case .packedInterruptDropped:
                guard e.kind == .interrupt, m.owedInterrupt != nil,
                      let end = ev[(i + 1)...].firstIndex(where: { $0.vq == vq && $0.kind == .serviceEnd }),
                      !ev[(i + 1)..<end].contains(where: { $0.vq == vq && ($0.kind == .driverEvent || $0.kind == .interrupt) }) else { return nil }
                change = "event \(i): the interrupt the driver asked for on vq \(vq) is dropped, and the pass ends without it"
                return Array(ev[..<i]) + Array(ev[(i + 1)...end])
            case .packedEventReserved:
                guard e.kind.plane == .driver else { return nil }
                change = "event \(i): the driver writes the Driver Event Suppression of vq \(vq) with the reserved flags value 3"
                return Array(ev[..<i]) + [.eventSuppression(.driverEvent, vq: vq, PackedRing.EventSuppression(offWrap: 0, flags: 3), t: t)]
            case .packedUsedLenTooLong:
                guard e.kind == .packedUsed, e.aux == slot(m.used), let b = m.buffer(id: e.packedId), let w = b.writableBytes, w < UInt64(UInt32.max),
                      let f = ev[(i + 1)...].firstIndex(where: { $0.vq == vq && $0.kind == .packedUsedFlags && $0.aux == e.aux }) else { return nil }
                // With IN_ORDER the used descriptor describes the batch's last buffer: the one it names.
                change = "event \(i): the used descriptor for buffer id \(e.packedId) on vq \(vq) claims \(w + 1) bytes written, one more than its \(w) writable ones"
                var u = e; u.p1 = TraceEvent.packPacked(len: UInt32(w + 1), id: e.packedId)
                var fl = ev[f]; fl.p0 |= UInt64(PackedRing.Flags.write.rawValue)
                // The device then notifies, as the driver may have asked.
                let irq = TraceEvent.simple(.interrupt, vq: vq, worker: fl.worker, t: fl.timestamp)
                return Array(ev[..<i]) + [u] + Array(ev[(i + 1)..<f]).filter { !($0.vq == vq && ($0.kind == .packedUsed || $0.kind == .packedUsedFlags)) } + [fl, irq]
            default:
                return nil
            }
        }
        guard let out = edit else { throw noPlace("the trace has no packed ring with traffic where it fits") }
        return (out, change)
    }

    /// Polled: after a ring's last poll, a poll finds a list's first descriptor available and the
    /// next one not (the driver made the first one available first).
    static func headFirstPolled(header: TraceHeader, events ev: [TraceEvent]) throws -> (events: [TraceEvent], change: String) {
        var sizes = header.queueSizes.map(UInt32.init)
        for e in ev where e.kind == .setVringNum && e.succeeded && Int(e.vq) < sizes.count { sizes[Int(e.vq)] = UInt32(truncatingIfNeeded: e.p0) }
        for (i, e) in ev.enumerated().reversed() where e.kind == .poll {
            let n = sizes[Int(e.vq)]
            guard RingFormat.packed.isValidQueueSize(n), n >= 2 else { continue }
            let a = UInt16(truncatingIfNeeded: e.p0), u = UInt16(truncatingIfNeeded: e.p1)
            let (ai, aw, ui, uw) = (UInt32(a & PackedRing.indexMask), a & PackedRing.wrapBit != 0, UInt32(u & PackedRing.indexMask), u & PackedRing.wrapBit != 0)
            let inFlight = aw == uw ? ai &- ui : ai + n &- ui
            guard ai < n, ui < n, inFlight + 2 <= n else { continue }
            let next = (ai + 1) % n, nextWrap = next == 0 ? !aw : aw
            let vq = e.vq, t = ev.last?.timestamp ?? e.timestamp
            // The next descriptor still holds the last lap's flags: not available for its position.
            let added: [TraceEvent] = [
                { var d = TraceEvent.packedDesc(vq: vq, slot: UInt16(ai), addr: 0x9000_0000, len: 64, id: 0, t: t); d.flags = .sampled; return d }(),
                { var f = TraceEvent.packedFlags(vq: vq, slot: UInt16(ai), flags: PackedRing.Flags.available(wrap: aw).union(.next), t: t); f.flags = .sampled; return f }(),
                { var f = TraceEvent.packedFlags(vq: vq, slot: UInt16(next), flags: .available(wrap: !nextWrap), t: t); f.flags = .sampled; return f }(),
                TraceEvent(.poll, vq: vq, timestamp: t, p0: e.p0, p1: e.p1, flags: .sampled),
            ]
            return (Array(ev[...i]) + added,
                    "after event \(i): a poll of vq \(vq) finds the first descriptor of a list at slot \(ai) available and the next one (slot \(next)) not")
        }
        throw MutationError("no place for packed-head-first: no polled packed ring with room for a list of two")
    }
}
