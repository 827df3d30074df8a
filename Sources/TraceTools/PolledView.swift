import PolledSemantics
import TraceFormat
import VirtioProtocol

/// The polls of a polled trace, ring by ring: which events each poll read, and the indices it saw.
/// Traces with `poll` events and traces of older recorders are both understood (the latter divided
/// as `LegacyPolls` says), so tools can edit a trace where the polls decide what they plant.
public struct PolledView: Sendable {
    public struct Exposure: Sendable {
        public var pos: UInt16
        public var head: UInt16
        /// Index of the `avail_entry` event.
        public var entry: Int
        /// Indices of the descriptor reads for this position (`desc`, `indirect_desc`).
        public var reads: [Int]
    }
    public struct Completion: Sendable {
        public var pos: UInt16
        public var id: UInt32
        public var len: UInt32
        /// Index of the `used_entry` event.
        public var entry: Int
    }
    public struct Poll: Sendable {
        public var vq: UInt16
        /// Index of the poll's first event and of the event that ends it (`poll`, or the old
        /// recorder's last `avail_idx`/`used_idx`).
        public var start: Int
        public var end: Int
        public var prevAvail: UInt16
        public var prevUsed: UInt16
        public var avail: UInt16
        public var used: UInt16
        public var exposures: [Exposure] = []
        public var completions: [Completion] = []
        /// Ended by a `poll` event (a current recorder's snapshot).
        public var marked: Bool
    }

    public private(set) var polls: [Poll] = []
    /// The same polls, ring by ring (linear to build, so that tools stay linear with many rings).
    private var byRing: [UInt16: [Poll]] = [:]
    /// Per ring, the events of a last poll the trace cut short (no index ends it): not a poll.
    public private(set) var cutShort: [UInt16: [Int]] = [:]

    public init(events: [TraceEvent]) {
        var open: [UInt16: Poll] = [:]
        var legacy: [UInt16: LegacyPolls] = [:]
        var marked = Set<UInt16>()
        var reads: [UInt16: [Int]] = [:]
        var prev: [UInt16: (a: UInt16, u: UInt16)] = [:]

        var members: [UInt16: [Int]] = [:]
        func end(_ vq: UInt16, keep: Bool) {
            if let p = open.removeValue(forKey: vq), keep {
                polls.append(p)
                prev[vq] = (p.avail, p.used)
            }
            reads[vq] = []
            members[vq] = []
            legacy[vq] = LegacyPolls()
        }
        func current(_ vq: UInt16, _ i: Int) -> Poll {
            if let p = open[vq] { return p }
            let (a, u) = prev[vq] ?? (0, 0)
            return Poll(vq: vq, start: i, end: i, prevAvail: a, prevUsed: u, avail: a, used: u, marked: false)
        }
        func endLegacy(_ vq: UInt16) { end(vq, keep: legacy[vq]?.complete == true) }

        for (i, e) in events.enumerated() {
            let vq = e.vq
            if e.kind.plane == .control {
                // A control event ends the open legacy poll of every ring (as the checker reads it).
                for q in Array(open.keys) where !marked.contains(q) { endLegacy(q) }
                if e.kind == .setVringKick || e.kind == .setVringNum || e.kind == .resetOwner { prev[vq] = nil }
                continue
            }
            guard e.isSampled || e.kind.plane == .observation else { continue }
            if !marked.contains(vq) {
                let part: LegacyPolls.Part?
                switch e.kind {
                case .desc, .indirectDesc, .availEntry: part = .availPart
                case .usedEntry: part = .usedPart
                case .availIdx: part = .availDone
                case .usedIdx: part = .usedDone
                default: part = nil
                }
                if let part {
                    var g = legacy[vq] ?? LegacyPolls()
                    let wasComplete = g.complete
                    if g.closesPoll(before: part) {
                        end(vq, keep: wasComplete)
                        g = LegacyPolls()
                        _ = g.closesPoll(before: part)
                    }
                    legacy[vq] = g
                }
            }
            var p = current(vq, i)
            members[vq, default: []].append(i)
            switch e.kind {
            case .desc, .indirectDesc:
                reads[vq, default: []].append(i)
            case .availEntry:
                p.exposures.append(Exposure(pos: UInt16(truncatingIfNeeded: e.p0), head: e.aux, entry: i, reads: reads[vq] ?? []))
                reads[vq] = []
            case .usedEntry:
                p.completions.append(Completion(pos: UInt16(truncatingIfNeeded: e.p0), id: UInt32(truncatingIfNeeded: e.p1), len: UInt32(truncatingIfNeeded: e.p2), entry: i))
            case .availIdx:
                p.avail = UInt16(truncatingIfNeeded: e.p0)
            case .usedIdx:
                p.used = UInt16(truncatingIfNeeded: e.p0)
            case .poll:
                marked.insert(vq)
                p.avail = UInt16(truncatingIfNeeded: e.p0); p.used = UInt16(truncatingIfNeeded: e.p1); p.marked = true
            case .ringGap:
                open[vq] = nil; reads[vq] = []; prev[vq] = nil
                continue
            default:
                continue
            }
            p.end = i
            open[vq] = p
            if e.kind == .poll { end(vq, keep: true) }
        }
        for (q, m) in members where !m.isEmpty && !(legacy[q]?.complete ?? false) || (marked.contains(q) && !(members[q] ?? []).isEmpty) {
            cutShort[q] = m
        }
        for q in Array(open.keys) where !marked.contains(q) { endLegacy(q) }
        polls.sort { $0.end < $1.end }
        for p in polls { byRing[p.vq, default: []].append(p) }
    }

    /// Whether a legacy poll's entries can be trusted: the checker's lap guard (`SnapshotGuard`)
    /// with what an old recorder's trace says. Current recorders apply the guard themselves.
    public static func trusted(_ p: Poll, size: UInt32) -> Bool {
        if p.marked { return true }
        return !SnapshotGuard.availSideAtRisk(prevAvail: p.prevAvail, avail: p.avail, availAgain: p.avail, used: p.used, size: size)
            && !SnapshotGuard.usedSideAtRisk(prevUsed: p.prevUsed, used: p.used, usedAgain: p.used, availAfter: nil, size: size)
    }

    /// The polls of one ring, in order.
    public func polls(of vq: UInt16) -> [Poll] { byRing[vq] ?? [] }

    /// For each exposure, the index of the poll (in `polls(of:)`) that saw the completion of its
    /// buffer, or nil if none did: matched by head, or with IN_ORDER by position.
    public static func completionPolls(_ polls: [Poll], inOrder: Bool) -> [(poll: Int, exposure: Int, completedIn: Int?)] {
        var out: [(Int, Int, Int?)] = []
        if inOrder {
            var byPos: [UInt16: Int] = [:]
            for (k, p) in polls.enumerated() { for c in p.completions { byPos[c.pos] = k } }
            for (k, p) in polls.enumerated() { for (x, e) in p.exposures.enumerated() { out.append((k, x, byPos[e.pos])) } }
            return out
        }
        // Without IN_ORDER: the next completion of the same head after the exposure.
        var pending: [UInt16: [(Int, Int)]] = [:]
        for (k, p) in polls.enumerated() {
            for (x, e) in p.exposures.enumerated() { pending[e.head, default: []].append((k, x)) }
            for c in p.completions {
                let h = UInt16(truncatingIfNeeded: c.id)
                if var list = pending[h], !list.isEmpty {
                    let (pk, x) = list.removeFirst()
                    pending[h] = list
                    out.append((pk, x, k))
                }
            }
        }
        for (h, list) in pending { _ = h; for (pk, x) in list { out.append((pk, x, nil)) } }
        return out
    }
}
