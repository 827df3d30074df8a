import Foundation
import PolledSemantics
import Testing
import VirtioProtocol

/// `PackedResync`, checked against its claim on every small case: a tiny driver makes lists of one
/// or two descriptors available (a two-list's second flags first), a tiny device writes a used
/// descriptor's id and len at its write position (up to W beyond its published used position) for
/// any buffer it can take (out of order), or the oldest, or (IN_ORDER) a batch of the two oldest
/// with one used descriptor, and stores the flags of any written used descriptor in any order (a
/// DPDK burst marks its first one last); the published used position passes the stored ones in
/// order. From every state reachable in a few steps, the restart procedure runs with every
/// interleaving of up to `budget` steps between its reads (from the forward walk on; the lap scan
/// and the walk back only choose where to look). Whenever it restarts at X with lists [X, end):
/// X is a position where the device wrote a used descriptor, every list is one the driver made
/// available there (same length), every body read is the driver's, and a used descriptor written at
/// X or beyond that names a listed id names that list (or one the device used before X: a buffer
/// the recorder then cannot tell, which ends in `ring_gap`).
@Suite struct PackedResyncTests {
    struct L: Hashable { var start: Int; var count: Int; var id: UInt16 }
    struct State: Hashable {
        var n: Int, w: Int
        var flags: [UInt16], addr: [UInt64], len: [UInt32], ids: [UInt16]
        var d = 0, tail = false, tailId: UInt16 = 0
        var avail: [L] = []                       // made available, not yet named by a used descriptor
        var pending: [(pos: Int, l: [L], flagged: Bool)] = []
        var u = 0                                 // published used position
        var boundaries: Set<Int> = []             // where used descriptors were written (recent)
        var driverList: [Int: L] = [:]            // the driver's lists by start (recent)
        var named: [Int: [L]] = [:]               // boundary -> the buffers it names (recent)
        static func == (a: State, b: State) -> Bool { a.key == b.key }
        func hash(into h: inout Hasher) { h.combine(key) }
        var key: [Int] {
            var k = [d, tail ? 1 : 0, Int(tailId), u] + flags.map(Int.init) + addr.map(Int.init) + len.map(Int.init) + ids.map(Int.init)
            for l in avail { k += [l.start, l.count, Int(l.id)] }
            for p in pending { k += [p.pos, p.flagged ? 1 : 0] + p.l.flatMap { [$0.start, $0.count, Int($0.id)] } }
            k += boundaries.sorted() + [-1] + driverList.keys.sorted() + [-2]
            return k
        }
        init(n: Int, w: Int) {
            self.n = n; self.w = w
            flags = Array(repeating: 0, count: n); addr = Array(repeating: 0, count: n)
            len = Array(repeating: 0, count: n); ids = Array(repeating: 0, count: n)
        }
        func wrap(_ p: Int) -> Bool { (p / n) % 2 == 0 }
        func slot(_ p: Int) -> Int { p % n }
        var writePos: Int { pending.last.map { $0.pos + $0.l.reduce(0) { $0 + $1.count } } ?? u }
        var idsInUse: Set<UInt16> { Set(avail.map(\.id) + pending.flatMap { $0.l.map(\.id) } + (tail ? [tailId] : [])) }
        var freeId: UInt16 { (0...UInt16(n + 1)).first { !idsInUse.contains($0) }! }

        mutating func writeDriver(_ p: Int, id: UInt16, next: Bool) {
            let s = slot(p)
            addr[s] = UInt64(p + 1); len[s] = UInt32(100 + p); ids[s] = id
            var f = PackedRing.Flags.available(wrap: wrap(p))
            if next { f.insert(.next) }
            flags[s] = f.rawValue
        }
        mutating func prune() {
            boundaries = boundaries.filter { $0 >= d - 2 * n }
            driverList = driverList.filter { $0.key >= d - 2 * n }
            named = named.filter { $0.key >= d - 2 * n }
        }

        func steps(outOfOrder: Bool, inOrderBatches: Bool) -> [State] {
            var out: [State] = []
            if tail {
                var s = self
                let f = PackedRing.Flags.available(wrap: wrap(d)).union(.next)
                s.flags[slot(d)] = f.rawValue
                let l = L(start: d, count: 2, id: tailId)
                s.avail.append(l); s.driverList[d] = l; s.d += 2; s.tail = false
                s.prune(); out.append(s)
            } else {
                if d < u + n {
                    var s = self
                    let id = freeId
                    s.writeDriver(d, id: id, next: false)
                    let l = L(start: d, count: 1, id: id)
                    s.avail.append(l); s.driverList[d] = l; s.d += 1
                    s.prune(); out.append(s)
                }
                if d + 1 < u + n && n >= 2 {
                    var s = self
                    let id = freeId
                    // Both bodies, the second descriptor's flags; the first's flags are the next step.
                    s.writeDriver(d + 1, id: id, next: false)
                    let s0 = slot(d)
                    s.addr[s0] = UInt64(d + 1); s.len[s0] = UInt32(100 + d); s.ids[s0] = id
                    s.tail = true; s.tailId = id
                    out.append(s)
                }
            }
            let wp = writePos
            if wp <= u + w {
                var choices: [[Int]] = avail.indices.filter { $0 == 0 || outOfOrder }.map { [$0] }
                if inOrderBatches && avail.count >= 2 { choices.append([0, 1]) }
                for c in choices {
                    var s = self
                    let ls = c.map { avail[$0] }
                    let last = ls.last!
                    s.ids[slot(wp)] = last.id; s.len[slot(wp)] = 7
                    for k in c.reversed() { s.avail.remove(at: k) }
                    s.pending.append((wp, ls, false))
                    s.boundaries.insert(wp); s.named[wp] = ls
                    out.append(s)
                }
            }
            for k in pending.indices where !pending[k].flagged {
                var s = self
                let p = pending[k].pos
                s.flags[slot(p)] = PackedRing.Flags.usedMark(wrap: wrap(p)).rawValue
                s.pending[k].flagged = true
                while let f = s.pending.first, f.flagged { s.u += f.l.reduce(0) { $0 + $1.count }; s.pending.removeFirst() }
                out.append(s)
            }
            return out
        }
    }

    static func within(_ s: State, _ k: Int, outOfOrder: Bool, batches: Bool) -> Set<State> {
        var seen: Set<State> = [s], frontier: Set<State> = [s]
        for _ in 0..<k {
            var next: Set<State> = []
            for x in frontier { for y in x.steps(outOfOrder: outOfOrder, inOrderBatches: batches) where !seen.contains(y) { seen.insert(y); next.insert(y) } }
            frontier = next
        }
        return seen
    }

    /// One run: the choices made so far are replayed, new choice points take their first option.
    final class Run {
        var state: State
        let prefix: [Int]
        var taken: [Int] = [], sizes: [Int] = []
        var budget: Int
        var interleave = false
        let outOfOrder: Bool, batches: Bool
        init(_ s: State, prefix: [Int], budget: Int, outOfOrder: Bool, batches: Bool) {
            state = s; self.prefix = prefix; self.budget = budget; self.outOfOrder = outOfOrder; self.batches = batches
        }
        func choose(_ k: Int) -> Int {
            let i = taken.count
            let c = i < prefix.count ? prefix[i] : 0
            taken.append(c); sizes.append(k)
            return c
        }
        /// Before a read: any number of steps (within the budget), chosen.
        func beforeRead() {
            guard interleave else { return }
            while budget > 0 {
                let opts = state.steps(outOfOrder: outOfOrder, inOrderBatches: batches)
                let c = choose(opts.count + 1)
                if c == 0 { return }
                state = opts[c - 1]; budget -= 1
            }
        }
        func flags(_ s: UInt16) -> PackedRing.Flags? { beforeRead(); return PackedRing.Flags(rawValue: state.flags[Int(s)]) }
        func body(_ s: UInt16) -> (addr: UInt64, len: UInt32, id: UInt16)? { beforeRead(); return (state.addr[Int(s)], state.len[Int(s)], state.ids[Int(s)]) }
        var next: [Int]? {
            guard let i = sizes.indices.last(where: { taken[$0] + 1 < sizes[$0] }) else { return nil }
            return Array(taken[..<i]) + [taken[i] + 1]
        }
    }

    struct Tally { var runs = 0, restarts = 0, waits = 0 }

    static func explore(n: Int, w: Int, outOfOrder: Bool, batches: Bool, depth: Int, budget: Int, between: Int) -> Tally {
        var t = Tally()
        let m = 2 * n
        for s0 in within(State(n: n, w: w), depth, outOfOrder: outOfOrder, batches: batches) {
            var prefix: [Int]? = []
            while let pre = prefix {
                let r = Run(s0, prefix: pre, budget: budget, outOfOrder: outOfOrder, batches: batches)
                t.runs += 1
                // The lap scan and the walk back only choose where to look: read without steps.
                var scanned = 0
                let flags: (UInt16) -> PackedRing.Flags? = { s in
                    scanned += 1
                    if scanned > n { r.interleave = true }
                    return r.flags(s)
                }
                if var c = PackedResync(size: UInt32(n), deviceWriteAhead: UInt32(w), near: UInt64(max(0, s0.u - 1)), flags: flags, body: r.body) {
                    r.interleave = true
                    for _ in 0..<2 {
                        // Steps between the two polls (a budget of their own), then the confirming reads.
                        r.budget += between
                        r.beforeRead()
                        let o = c.confirm(flags: r.flags)
                        if case .restart(let j) = o {
                            t.restarts += 1
                            check(c, from: j, r.state, m: m, s0: s0)
                            break
                        }
                        if o == .expired { break }
                        t.waits += 1
                    }
                }
                prefix = r.next
            }
        }
        return t
    }

    /// The claim, against the run's ghost state when the restart is decided.
    static func check(_ c: PackedResync, from j: Int, _ s: State, m: Int, s0: State) {
        func abs(_ p: UInt64) -> Int { s.d - ((s.d % m - Int(p % UInt64(m)) + m) % m) }
        let lists = Array(c.lists[j...])
        let x = abs(lists[0].start)
        #expect(s.boundaries.contains(x), "restart at \(x): no used descriptor was written there (from \(s0.key))")
        var ids: [UInt16: Int] = [:]
        var pos = x
        for l in lists {
            let st = abs(l.start)
            #expect(st == pos, "lists do not tile: \(st) after \(pos)")
            #expect(s.driverList[st].map { $0.count == l.count && $0.id == l.id } == true,
                    "list at \(st) (count \(l.count), id \(l.id)) is not the driver's \(String(describing: s.driverList[st])) (from \(s0.key))")
            for d in l.descs {
                let p = abs(d.pos)
                #expect(d.addr == UInt64(p + 1) && d.len == UInt32(100 + p), "body at \(p) read as \(d.addr)/\(d.len): not the driver's (from \(s0.key))")
            }
            ids[l.id] = st
            pos = st + l.count
        }
        #expect(abs(c.end) == pos)
        // Used descriptors at X or beyond naming a listed id name that list, or the device used that
        // list before (below X: the recorder then sees two lists with that id; or at X or beyond,
        // where the recorder matched it), and the id was made available again since.
        for (b, ls) in s.named where b >= x {
            for l in ls {
                guard let st = ids[l.id], st != l.start else { continue }
                let usedBefore = s.named.contains { $0.key < b && $0.value.contains { $0.start == st } }
                #expect(usedBefore, "used descriptor at \(b) names id \(l.id) of the list at \(l.start), not the listed one at \(st) (from \(s0.key))")
            }
        }
    }

    /// CI runs the in-order device (seconds); CONFORMANCE_EXHAUSTIVE=1 adds the device that completes
    /// out of order and IN_ORDER batches, from prefixes one step deeper (about 80 s).
    static let exhaustive = ProcessInfo.processInfo.environment["CONFORMANCE_EXHAUSTIVE"] != nil

    @Test("PackedResync: a restart is at a used boundary, with the driver's lists in flight read as the driver wrote them (a ring of 3, device write-ahead 0; in order; CONFORMANCE_EXHAUSTIVE=1 also out of order and IN_ORDER batches)")
    func restartIsAtABoundaryWithTheDriversLists() {
        let orders = Self.exhaustive ? [(true, false), (false, false), (false, true)] : [(false, false)]
        for (outOfOrder, batches) in orders {
            let clock = ContinuousClock.now
            let t = Self.explore(n: 3, w: 0, outOfOrder: outOfOrder, batches: batches, depth: Self.exhaustive ? 4 : 3, budget: 1, between: 3)
            print("PackedResync n=3 W=0 outOfOrder=\(outOfOrder) batches=\(batches): \(t.runs) runs, \(t.restarts) restarts, \(t.waits) waits, \(ContinuousClock.now - clock)")
            #expect(t.restarts > 0, "no restart found: the claim was checked on nothing")
        }
    }
}
