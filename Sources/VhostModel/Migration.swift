import VirtioProtocol

/// Dirty logging (vhost-user.rst "Migration"; drivers/vhost/vhost.c vhost_log_write): which pages
/// the back-end marked, and since when. Marks are compared with the moment a chain was made
/// available: the front-end may clear the log at any time (it syncs and resets it), so only a mark
/// made after the buffer could have been written proves the write was logged.
public struct DirtyLog: Sendable {
    /// Logging is on: VHOST_F_LOG_ALL negotiated and a log base set.
    public private(set) var logAll = false
    public private(set) var baseSet = false
    public var active: Bool { logAll && baseSet }
    /// Marks as page ranges with the serial of the event that made them: a log covers guest memory,
    /// which a trace does not bound, so pages are not kept one by one.
    struct Mark: Sendable { var first: UInt64; var last: UInt64; var serial: UInt64 }
    private var marks: [Mark] = []
    /// Marks kept at most. Marks older than every chain in flight are dropped first; if that is not
    /// enough the rule stops judging (it never guesses).
    public static let markBudget = 4096
    public private(set) var overflowed = false

    public init() {}

    public mutating func features(_ f: Features) { logAll = f.has(.logAll) }
    public mutating func setLogBase() { baseSet = true }

    /// The back-end marked [addr, addr + len) at event serial `serial`; marks older than `keepSince`
    /// can no longer matter (every chain in flight was exposed after them).
    public mutating func mark(addr: UInt64, len: UInt64, serial: UInt64, keepSince: @autoclosure () -> UInt64) {
        guard let (first, last) = Self.pageRange(addr, len) else { return }
        if marks.count >= Self.markBudget {
            let keep = keepSince()
            marks.removeAll { $0.serial < keep }
            if marks.count >= Self.markBudget { overflowed = true; marks = [] }
        }
        if !overflowed { marks.append(Mark(first: first, last: last, serial: serial)) }
    }

    /// The pages of [addr, addr + len) not marked at or after serial `since` (at most `limit` of them).
    public func unmarked(addr: UInt64, len: UInt64, since: UInt64, limit: Int = 8) -> [UInt64] {
        guard !overflowed, let (first, last) = Self.pageRange(addr, len) else { return [] }
        let cover = marks.filter { $0.serial >= since && $0.last >= first && $0.first <= last }.sorted { $0.first < $1.first }
        var out: [UInt64] = []
        var next = first // first page not yet known to be covered
        for m in cover {
            if m.first > next {
                var p = next
                while p < m.first && out.count < limit { out.append(p); p += 1 }
            }
            if m.last >= next { next = m.last &+ 1 }
            if next > last || next == 0 { return out }
        }
        var p = next
        while p <= last && out.count < limit { out.append(p); if p == UInt64.max { break }; p += 1 }
        return out
    }

    /// First and last page numbers overlapping [addr, addr + len); nil for an empty range.
    public static func pageRange(_ addr: UInt64, _ len: UInt64) -> (UInt64, UInt64)? {
        guard len > 0 else { return nil }
        let first = addr / VhostLog.pageSize
        let last = (addr &+ (len - 1)) / VhostLog.pageSize
        return last >= first ? (first, last) : (first, UInt64.max / VhostLog.pageSize)
    }
}

/// GET_VRING_BASE hands over a ring's state; the front-end resumes from it (vhost-user.rst
/// "Migrating back-end state": "setting the initial vring base indices (to the same value as on the
/// source side, so that operation can resume)").
public struct VringHandover: Sendable {
    /// Per vq: the base GET_VRING_BASE returned and not yet resumed from.
    private var handedOver: [UInt16?]

    public init(queueCount: Int) { handedOver = Array(repeating: nil, count: queueCount) }

    public mutating func gotBase(vq: Int, base: UInt16) { handedOver[vq] = base }

    /// The ring was rebuilt (device or ring reset): the handed-over state no longer applies.
    public mutating func forget(vq: Int) { handedOver[vq] = nil }
    public mutating func forgetAll() { handedOver = Array(repeating: nil, count: handedOver.count) }

    /// SET_VRING_BASE on `vq` with `base`.
    public mutating func setBase(vq: Int, base: UInt16) -> [Violation] {
        defer { handedOver[vq] = nil }
        guard let b = handedOver[vq], b != base else { return [] }
        return [Violation(.vhostVringBaseResume, "SET_VRING_BASE \(base) on vq \(vq), but GET_VRING_BASE handed over \(b) and the ring was not rebuilt since: the device would skip or repeat \(Int(SplitRing.distance(from: min(b, base), to: max(b, base)))) avail entries")]
    }
}

/// "Started but disabled: the back-end must process and discard any TX packets" (vhost-user.rst
/// "Ring states"), as a liveness rule with a stated bound: a buffer made available on such a ring is
/// used within `bound` nanoseconds of trace time. Judged from timestamps, on exact traces, only while
/// timestamps do not go backwards, and only for deadlines that passed before the trace's last event.
public struct DisabledTxDrain: Sendable {
    public static let bound: UInt64 = 1_000_000_000
    /// Per vq: heads in flight with the time their deadline started.
    private var pending: [[UInt16: UInt64]]
    /// Vqs with something pending, and the earliest start on each (so an event costs nothing until a
    /// deadline can have passed).
    private var earliest: [Int: UInt64] = [:]
    private var lastTime: UInt64 = 0
    /// Timestamps went backwards: the bound means nothing in this trace.
    public private(set) var timeUnusable = false

    public init(queueCount: Int) { pending = Array(repeating: [:], count: queueCount) }

    /// Every event's timestamp passes here first; returns false once time is unusable.
    public mutating func tick(_ t: UInt64) -> Bool {
        if t < lastTime {
            timeUnusable = true
            for q in earliest.keys { pending[q] = [:] }
            earliest = [:]
        }
        lastTime = max(lastTime, t)
        return !timeUnusable
    }

    /// Head `h` made available on `vq` at `t` (or the ring became started and disabled with it in flight).
    public mutating func exposed(vq: Int, head: UInt16, at t: UInt64) {
        guard !timeUnusable, pending[vq][head] == nil else { return }
        pending[vq][head] = t
        earliest[vq] = min(earliest[vq] ?? t, t)
    }

    public mutating func used(vq: Int, head: UInt16) {
        pending[vq][head] = nil
        if pending[vq].isEmpty { earliest[vq] = nil }
    }

    /// The ring is stopped, enabled or rebuilt: no deadline runs.
    public mutating func clear(vq: Int) { pending[vq] = [:]; earliest[vq] = nil }

    public var anyPending: Bool { !earliest.isEmpty }

    public func pendingHeads(vq: Int) -> [UInt16] { Array(pending[vq].keys) }

    /// Heads whose deadline passed at `now`, per vq; each is reported once.
    public mutating func overdue(now: UInt64) -> [(vq: Int, head: UInt16, since: UInt64)] {
        guard !timeUnusable else { return [] }
        var out: [(vq: Int, head: UInt16, since: UInt64)] = []
        for (q, first) in earliest where now >= first && now - first > Self.bound {
            let late = pending[q].filter { now >= $0.value && now - $0.value > Self.bound }
            for (h, t) in late { pending[q][h] = nil; out.append((q, h, t)) }
            earliest[q] = pending[q].values.min()
        }
        return out.sorted { ($0.vq, $0.head) < ($1.vq, $1.head) }
    }
}
