import TraceFormat
import VirtioProtocol

/// Named bug classes applied to a real trace, each a small edit at the first place that suits it,
/// so a test can show the checker catches that class in real traffic. `expectedRule` is the rule
/// the checker must report for it.
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

    public var name: String { rawValue }

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
        }
    }

    public var expectedRule: RuleID {
        switch self {
        case .doubleCompletion, .usedIdNeverAvailable: return .vqUsedId
        case .availIdxJump: return .vqInflight
        case .consumedPastAvail: return .vqAvailRead
        case .descriptorChangedInFlight: return .vqDriverOwnership
        case .secondWorker: return .vhostSingleConsumer
        case .rxOnDisabledQueue: return .netRxqInactive
        case .usedBeforeRingReady: return .vhostRingNotReady
        case .usedAfterStop: return .vhostRingStopped
        case .usedLenTooLong: return .vqUsedLen
        case .headOutOfRange: return .vqDescIndex
        case .badQueueSize: return .vqSize
        case .ringSetupBeforeOwner: return .vhostOwnerFirst
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
        var ev = input
        // Queue sizes as set so far (header, then SET_VRING_NUM).
        func sizeAt(_ i: Int, vq: UInt16) -> UInt32 {
            var n = Int(vq) < header.queueCount ? UInt32(header.queueSizes[Int(vq)]) : 0
            for e in ev[0..<i] where e.kind == .setVringNum && e.vq == vq { n = UInt32(truncatingIfNeeded: e.p0) }
            return n
        }
        func first(_ what: String, where p: (Int, TraceEvent) -> Bool) throws -> Int {
            guard let i = ev.indices.first(where: { p($0, ev[$0]) }) else { throw MutationError("no place for \(fault.name): the trace has no \(what)") }
            return i
        }
        func role(_ vq: UInt16) -> QueueRole { header.layout.role(of: Int(vq), queueCount: header.queueCount) }
        func isTX(_ vq: UInt16) -> Bool { if case .tx = role(vq) { return true }; return false }
        func isRX(_ vq: UInt16) -> Bool { if case .rx = role(vq) { return true }; return false }
        // Position of the trace's first completion (traffic is under way from there).
        let traffic = (try? first("used element") { $1.kind == .usedEntry }) ?? 0

        switch fault {
        case .doubleCompletion:
            // After a vq's last completion, the device completes the same head once more, and a
            // final avail observation shows the driver did not re-expose it in between. (Inside a
            // busy sampled trace a repeated id is indistinguishable from a fast legal re-exposure,
            // so the planted bug must come with the observation that rules that out.)
            // One pass for the last indices per vq, one for re-exposures: linear in the trace
            // (a scan per vq would be quadratic with tens of thousands of queues).
            var lastUsedEntry: [UInt16: Int] = [:], lastUsedIdx: [UInt16: Int] = [:], lastAvailIdx: [UInt16: Int] = [:]
            for (k, e) in ev.enumerated() {
                switch e.kind {
                case .usedEntry: lastUsedEntry[e.vq] = k
                case .usedIdx: lastUsedIdx[e.vq] = k
                case .availIdx: lastAvailIdx[e.vq] = k
                default: break
                }
            }
            var reexposed: Set<UInt16> = []
            for (k, e) in ev.enumerated() where e.kind == .availEntry {
                if let u = lastUsedEntry[e.vq], k > u, UInt64(e.aux) == ev[u].p1 { reexposed.insert(e.vq) }
            }
            for vq in lastUsedEntry.keys.sorted() {
                guard let u = lastUsedEntry[vq], let ui = lastUsedIdx[vq], ui > u, let ai = lastAvailIdx[vq] else { continue }
                let id = ev[u].p1
                if reexposed.contains(vq) { continue }
                let used = UInt16(truncatingIfNeeded: ev[ui].p0), t = ev.last!.timestamp
                ev += [TraceEvent(.usedEntry, vq: vq, timestamp: t, p0: UInt64(used), p1: id, p2: ev[u].p2, flags: .sampled),
                       TraceEvent(.usedIdx, vq: vq, timestamp: t, p0: UInt64(used &+ 1), flags: .sampled),
                       TraceEvent(.availIdx, vq: vq, timestamp: t, p0: ev[ai].p0, flags: .sampled)]
                return (ev, "events \(ev.count - 3)...: the device completes head \(id) on vq \(vq) again at used position \(used), and the driver has not re-exposed it")
            }
            throw MutationError("no place for \(fault.name): no vq whose last completed head stays unexposed")
        case .usedIdNeverAvailable:
            let i = try first("used element") { $1.kind == .usedEntry }
            let n = sizeAt(i, vq: ev[i].vq)
            ev[i].p1 = UInt64(n)
            return (ev, "event \(i): used element on vq \(ev[i].vq) names id \(n), past the \(n)-entry table, so never made available")
        case .availIdxJump:
            // The next avail.idx after traffic started moves queue size + 1 further than it did,
            // and every later index on that vq keeps the offset, so from there on more buffers
            // than the ring holds are outstanding at each used observation.
            let i = try first("avail index after traffic") { $0 > traffic && $1.kind == .availIdx }
            let vq = ev[i].vq
            let n = sizeAt(i, vq: vq)
            let prev = ev[0..<i].last { $0.kind == .availIdx && $0.vq == vq }.map { UInt16(truncatingIfNeeded: $0.p0) } ?? 0
            let delta = UInt16(truncatingIfNeeded: n &+ 1)
            for k in i..<ev.count where ev[k].vq == vq && (ev[k].kind == .availIdx || ev[k].kind == .availEntry) && (k >= i || ev[k].kind == .availIdx) {
                ev[k].p0 = UInt64(UInt16(truncatingIfNeeded: ev[k].p0) &+ delta)
            }
            // The entries of this exposure keep their positions (they precede the index event).
            return (ev, "event \(i): avail.idx on vq \(vq) moves \(prev) -> \(ev[i].p0), \(UInt16(truncatingIfNeeded: ev[i].p0) &- prev) entries, more than the queue size \(n)")
        case .consumedPastAvail:
            let i = try first("avail index after traffic") { $0 > traffic && $1.kind == .availIdx }
            let e = ev[i]
            ev.insert(TraceEvent(.availRead, vq: e.vq, aux: 0, timestamp: e.timestamp, p0: e.p0), at: i + 1)
            return (ev, "event \(i + 1): device reads avail position \(e.p0) on vq \(e.vq), which avail.idx \(e.p0) does not cover")
        case .descriptorChangedInFlight:
            // Right after an exposure, the head descriptor of the last exposed chain is rewritten.
            let i = try first("avail entry after traffic") { $0 > traffic && $1.kind == .availEntry }
            let head = ev[i].aux, vq = ev[i].vq
            guard let d = ev[0..<i].lastIndex(where: { $0.kind == .desc && $0.vq == vq && $0.aux == head }),
                  let pub = ev[i...].firstIndex(where: { $0.kind == .availIdx && $0.vq == vq }) else {
                throw MutationError("no place for \(fault.name): avail entry without its descriptor")
            }
            var w = ev[d]
            w.flags = []    // an exact write by the driver, not a sampled reading
            w.p1 = TraceEvent.packDesc(len: w.descLen &+ 1, flags: w.descFlags.rawValue, next: w.descNext)
            ev.insert(w, at: pub + 1)
            return (ev, "event \(pub + 1): driver rewrites descriptor \(head) on vq \(vq) (len \(ev[d].descLen) -> \(w.descLen)) right after exposing it")
        case .secondWorker:
            let i = try first("used index after traffic") { $0 >= traffic && $1.kind == .usedIdx }
            let vq = ev[i].vq, t = ev[i].timestamp
            ev.insert(contentsOf: [TraceEvent(.serviceBegin, vq: vq, worker: 0, timestamp: t),
                                   TraceEvent(.serviceBegin, vq: vq, worker: 1, timestamp: t),
                                   TraceEvent(.serviceEnd, vq: vq, worker: 1, timestamp: t, flags: .sampled),
                                   TraceEvent(.serviceEnd, vq: vq, worker: 0, timestamp: t, flags: .sampled)], at: i + 1)
            // Sampled ends: a recorder cannot know whether an interrupt was owed, so only the
            // overlap is new.
            return (ev, "events \(i + 1)...\(i + 4): workers 0 and 1 service vq \(vq) at the same time")
        case .rxOnDisabledQueue:
            let i = try first("RX completion after traffic") { j, e in j > traffic && e.kind == .usedIdx && isRX(e.vq) }
            let vq = ev[i].vq
            // Disable before this pass's used elements, so the completion follows the disable.
            let at = ev[0..<i].lastIndex { !($0.kind == .usedEntry && $0.vq == vq) }.map { $0 + 1 } ?? i
            ev.insert(.control(.setVringEnable, vq: vq, value: 0, t: ev[i].timestamp), at: at)
            return (ev, "event \(at): SET_VRING_ENABLE 0 on RX vq \(vq) just before the device completes receive buffers there")
        case .usedBeforeRingReady:
            let i = try first("used element") { $1.kind == .usedEntry }
            let vq = ev[i].vq
            let before = ev.count
            ev.removeAll { $0.kind == .setVringKick && $0.vq == vq }
            guard ev.count < before else { throw MutationError("no place for \(fault.name): vq \(vq) has no SET_VRING_KICK") }
            return (ev, "removed the SET_VRING_KICK of vq \(vq); its ring activity now comes before the ring was set up")
        case .usedAfterStop:
            let i = try first("used element after traffic") { $0 > traffic && $1.kind == .usedEntry }
            let e = ev[i]
            ev.insert(.control(.getVringBase, vq: e.vq, value: e.p0 & 0xffff, t: e.timestamp), at: i)
            return (ev, "event \(i): GET_VRING_BASE stops vq \(e.vq) before the device's next used element")
        case .usedLenTooLong:
            // On a sampled trace a chain completed within the poll that saw it exposed may have been
            // rewritten before the poller read it, so its length proves nothing (Specs/model.md).
            // Plant the bug on a completion that comes at least one poll after the exposure: two
            // avail observations on that vq between the head's avail entry and the used element.
            // One forward pass: the avail-index count of each vq when each head was last exposed.
            struct Key: Hashable { let vq: UInt16; let head: UInt64 }
            var availIdxSeen: [UInt16: Int] = [:]
            var exposedAt: [Key: Int] = [:]
            var found: Int?
            for (j, e) in ev.enumerated() {
                switch e.kind {
                case .availIdx: availIdxSeen[e.vq, default: 0] += 1
                case .availEntry: exposedAt[Key(vq: e.vq, head: UInt64(e.aux))] = availIdxSeen[e.vq, default: 0]
                case .usedEntry where j > traffic:
                    guard let at = exposedAt[Key(vq: e.vq, head: e.p1)] else { continue }
                    if !header.flags.contains(.sampled) || availIdxSeen[e.vq, default: 0] - at >= 2 { found = j }
                default: break
                }
                if found != nil { break }
            }
            guard let i = found else { throw MutationError("no place for \(fault.name): the trace has no used element completed a poll after its exposure") }
            ev[i].p2 = UInt64(UInt32.max)
            return (ev, "event \(i): used element on vq \(ev[i].vq) claims \(UInt32.max) bytes written")
        case .headOutOfRange:
            let i = try first("avail entry after traffic") { $0 > traffic && $1.kind == .availEntry }
            let n = sizeAt(i, vq: ev[i].vq)
            ev[i].aux = UInt16(truncatingIfNeeded: n)
            return (ev, "event \(i): avail entry on vq \(ev[i].vq) names head \(n) of a \(n)-entry table")
        case .badQueueSize:
            let i = try first("SET_VRING_NUM") { $1.kind == .setVringNum }
            let n = UInt32(truncatingIfNeeded: ev[i].p0)
            ev[i].p0 = UInt64(n > 1 ? n - 1 : 3)
            return (ev, "event \(i): SET_VRING_NUM on vq \(ev[i].vq) sets \(ev[i].p0), not a power of two")
        case .ringSetupBeforeOwner:
            // The back-end accepts ring setup from a front-end that never became its owner.
            let o = try first("SET_OWNER") { $1.kind == .setOwner && $1.succeeded }
            let n = try first("SET_VRING_NUM after SET_OWNER") { $0 > o && $1.kind == .setVringNum && $1.succeeded }
            let moved = ev.remove(at: n)
            ev.insert(moved, at: o)
            return (ev, "event \(o): SET_VRING_NUM on vq \(moved.vq) moved before SET_OWNER, and still succeeds")
        }
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
}
