import VirtioProtocol

/// Finding a lost packed ring again without waiting for it to drain (`Specs/model.md`, "Restarting
/// a packed ring with buffers in flight"). A receive ring is always full of available buffers, so it
/// never drains; this restarts at a used position with the lists in flight there, read from memory.
///
/// Two steps, in two (or more) polls:
/// 1. **Candidate**: a flags scan locates the lap boundary (where the driver writes), a walk back
///    from it the used frontier (heuristics only: nothing below rests on them). From the first
///    position after a descriptor marked available without NEXT (a list's last descriptor, so a
///    list starts there), every list marked available is read (each descriptor's flags before its
///    body) up to the first position not available: `end`. Then every list's first descriptor's
///    flags are read again (time t2): which were still not marked used.
/// 2. **Confirm**, at a later poll: the lists' first descriptors' flags once more. Restart at list
///    `j` when some earlier list head `y` was not marked used at t2 and is now marked used for its
///    lap, list `j` starts at least 1 + W (the device's write-ahead) beyond `y`, and `j`'s first
///    descriptor is now marked used for its lap.
///
/// Why it is sound: a device marks used only positions where it writes a used descriptor (a used
/// boundary), so `y` and `X = start(j)` are used boundaries. `y` not marked at t2 means the device's
/// published used position had not passed `y` at t2, so at every body read (all before t2) the device
/// could have written used descriptors only below `y` + 1 + W <= X: every body from X on is the
/// driver's, and every list from X on was in flight (marked available, not published used). The
/// lists tile [X, end) as the driver made them available (a list starts after the one read without
/// NEXT; flags are the driver's). A buffer made available before X that the device had not yet used
/// (a device that completes out of order) is not listed: its id is none of the listed ones (ids in
/// flight are distinct, and every listed list was made available while it was in flight), so a used
/// descriptor naming it matches nothing and the recorder writes `ring_gap`.
public struct PackedResync: Sendable {
    public struct Read: Sendable, Equatable {
        public var pos: UInt64
        public var addr: UInt64
        public var len: UInt32
        public var id: UInt16
        public var flags: PackedRing.Flags
    }
    public struct List: Sendable, Equatable {
        public var descs: [Read]
        public var start: UInt64 { descs[0].pos }
        public var count: Int { descs.count }
        /// The buffer id: the last descriptor's.
        public var id: UInt16 { descs[descs.count - 1].id }
    }
    public enum Outcome: Sendable, Equatable { case restart(Int), wait, expired }

    public let size: UInt32
    public let deviceWriteAhead: UInt32
    /// The lists read, in ring order, tiling [lists[0].start, end).
    public private(set) var lists: [List] = []
    /// The first position not read as available (the driver's position when it was read).
    public private(set) var end: UInt64 = 0
    /// Per list: its first descriptor was still not marked used at the re-read after all bodies.
    private var unflagged: [Bool] = []
    public private(set) var attempts = 0
    /// Polls a candidate is tried before a new one is read.
    public static let maxAttempts = 256

    func slot(_ p: UInt64) -> UInt16 { PackedRing.slot(p, size: size) }
    func wrap(_ p: UInt64) -> Bool { PackedRing.wrap(p, size: size) }

    /// Step 1. `near`: any position of the follower's (positions are meaningful modulo 2N only).
    /// nil when no candidate with two lists or more was found now.
    public init?(size: UInt32, deviceWriteAhead: UInt32, near: UInt64,
                 flags: (UInt16) -> PackedRing.Flags?, body: (UInt16) -> (addr: UInt64, len: UInt32, id: UInt16)?) {
        self.size = size; self.deviceWriteAhead = deviceWriteAhead
        let n = UInt64(size)
        // The lap boundary: slots below it were written in the newer lap.
        var first: Bool?
        var k: UInt16 = 0
        for s in 0..<UInt16(truncatingIfNeeded: size) {
            guard let f = flags(s) else { return nil }
            let av = f.contains(.avail)
            if let v = first { if av != v { k = s; break } } else { first = av }
        }
        guard let av0 = first else { return nil }
        let enc = k | ((k == 0 ? !av0 : av0) ? PackedRing.wrapBit : 0)
        guard var d = PackedRing.decode(enc, after: near, size: size) else { return nil }
        if d < n { d += 2 * n }
        func available(_ p: UInt64) -> Bool? { flags(slot(p)).map { $0.isAvailable(wrap: wrap(p)) } }
        // Back to the used frontier (or a lap).
        var p = d
        while p > d - n + 1 {
            guard let a = available(p - 1) else { return nil }
            if !a { break }
            p -= 1
        }
        // Forward to a list's last descriptor: a list starts after it.
        var e = p
        while true {
            guard e < d, let f = flags(slot(e)), f.isAvailable(wrap: wrap(e)) else { return nil }
            if !f.contains(.next) { break }
            e += 1
        }
        var q = e + 1
        let limit = e + n   // never slot e again
        reading: while q < limit {
            var descs: [Read] = []
            var r = q
            while true {
                guard r < limit, let f = flags(slot(r)) else { break reading }
                guard f.isAvailable(wrap: wrap(r)) else { break reading }   // not available (yet): the list is dropped
                guard let b = body(slot(r)) else { return nil }
                descs.append(Read(pos: r, addr: b.addr, len: b.len, id: b.id, flags: f))
                r += 1
                if !f.contains(.next) { break }
            }
            lists.append(List(descs: descs))
            q = r
        }
        end = lists.last.map { $0.start + UInt64($0.count) } ?? e + 1
        guard lists.count >= 2 else { return nil }
        for l in lists {
            guard let f = flags(slot(l.start)) else { return nil }
            unflagged.append(!f.isUsed(wrap: wrap(l.start)))
        }
    }

    /// Step 2, at a later poll: `.restart(j)` to restart at `lists[j].start` with `lists[j...]` in
    /// flight and the driver at `end`; `.wait` to try again at the next poll; `.expired` when the
    /// driver has passed the last list (or after `maxAttempts`).
    public mutating func confirm(flags: (UInt16) -> PackedRing.Flags?) -> Outcome {
        attempts += 1
        var y: UInt64?
        for (i, l) in lists.enumerated() {
            guard let f = flags(slot(l.start)) else { return .expired }
            let used = f.isUsed(wrap: wrap(l.start))
            if let y0 = y {
                if used && l.start >= y0 + 1 + UInt64(deviceWriteAhead) { return .restart(i) }
            } else if unflagged[i] && used {
                y = l.start
            }
            if i == lists.count - 1 && !used && !f.isAvailable(wrap: wrap(l.start)) { return .expired }
        }
        return attempts >= Self.maxAttempts ? .expired : .wait
    }
}
