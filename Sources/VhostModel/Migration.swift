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
    /// Per page (guest-physical address / 4 KiB): the serial of the last mark.
    private var marked: [UInt64: UInt64] = [:]
    /// Pages tracked at most; beyond it the oldest knowledge is dropped and the rule stops judging
    /// (never guesses): a log covers guest memory, which a trace does not bound.
    public static let pageBudget = 1 << 22
    public private(set) var overflowed = false

    public init() {}

    public mutating func features(_ f: Features) { logAll = f.has(.logAll) }
    public mutating func setLogBase() { baseSet = true }

    /// The back-end marked [addr, addr + len) at event serial `serial`.
    public mutating func mark(addr: UInt64, len: UInt64, serial: UInt64) {
        for p in Self.pages(addr, len) {
            if marked.count >= Self.pageBudget && marked[p] == nil { overflowed = true; marked = [:] }
            marked[p] = serial
        }
    }

    /// Pages of [addr, addr + len) not marked at or after serial `since`.
    public func unmarked(addr: UInt64, len: UInt64, since: UInt64) -> [UInt64] {
        guard !overflowed else { return [] }
        return Self.pages(addr, len).filter { p in marked[p].map { $0 < since } ?? true }
    }

    /// Page numbers overlapping [addr, addr + len); none for an empty range.
    public static func pages(_ addr: UInt64, _ len: UInt64) -> [UInt64] {
        guard len > 0 else { return [] }
        let first = addr / VhostLog.pageSize
        let last = (addr &+ (len - 1)) / VhostLog.pageSize
        guard last >= first else { return [] }
        // A buffer's len is 32 bits: at most 2^20 + 1 pages, bounded.
        return Array(first...last)
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
    private var lastTime: UInt64 = 0
    /// Timestamps went backwards: the bound means nothing in this trace.
    public private(set) var timeUnusable = false

    public init(queueCount: Int) { pending = Array(repeating: [:], count: queueCount) }

    /// Every event's timestamp passes here first; returns false once time is unusable.
    public mutating func tick(_ t: UInt64) -> Bool {
        if t < lastTime { timeUnusable = true; pending = pending.map { _ in [:] } }
        lastTime = max(lastTime, t)
        return !timeUnusable
    }

    /// Head `h` made available on `vq` at `t` (or the ring became started and disabled with it in flight).
    public mutating func exposed(vq: Int, head: UInt16, at t: UInt64) {
        if pending[vq][head] == nil { pending[vq][head] = t }
    }

    public mutating func used(vq: Int, head: UInt16) { pending[vq][head] = nil }

    /// The ring is stopped, enabled or rebuilt: no deadline runs.
    public mutating func clear(vq: Int) { pending[vq] = [:] }

    public var anyPending: Bool { pending.contains { !$0.isEmpty } }

    public func pendingHeads(vq: Int) -> [UInt16] { Array(pending[vq].keys) }

    /// Heads on `vq` whose deadline passed at `now`; each is reported once.
    public mutating func overdue(vq: Int, now: UInt64) -> [(head: UInt16, since: UInt64)] {
        guard !timeUnusable, !pending[vq].isEmpty else { return [] }
        let late = pending[vq].filter { now >= $0.value && now - $0.value > Self.bound }
        for (h, _) in late { pending[vq][h] = nil }
        return late.map { ($0.key, $0.value) }.sorted { $0.head < $1.head }
    }
}
