import PolledSemantics
import Testing
import VirtioProtocol

/// `PackedSnapshotGuard.drained`, checked against its claim on every small case: a tiny driver makes
/// lists of one or two descriptors available (the second one's flags first), a tiny device uses any
/// buffer in flight (or, IN_ORDER-free but in order, the oldest) by marking a used descriptor at its
/// used position and skipping the buffer's descriptors. The recorder tests positions p within a lap
/// after a used position u the device had reached before its reads, and the driver never makes
/// q + N available before the recorder has read q (the lap assumption). Between the predicate's three
/// flag reads (slot p - 1, slot p, slot p - 1 again) any number of steps may happen (up to a bound).
/// Whenever the predicate holds, the driver's and the device's positions were both p when slot p was
/// read: nothing was in flight. Without the recorder's u (any p), a stale mark two laps old passes
/// the first read: the test needs it.
@Suite struct PackedDrainedTests {
    struct State: Hashable {
        var n: Int
        var flags: [UInt16]
        var d = 0, u = 0               // driver's position, device's used position
        var lists: [Int] = []          // lengths of the buffers in flight, in ring order
        var tail = false               // the driver has stored a two-list's second flags, not its first
        func wrap(_ p: Int) -> Bool { (p / n) % 2 == 0 }
        func slot(_ p: Int) -> Int { p % n }
        func read(_ p: Int) -> PackedRing.Flags { PackedRing.Flags(rawValue: flags[slot(p)]) }

        /// Every next state: the driver's steps and the device's.
        func steps(outOfOrder: Bool) -> [State] {
            var out: [State] = []
            let inFlight = lists.reduce(0, +)
            if tail {
                var s = self
                s.flags[slot(d)] = PackedRing.Flags.available(wrap: wrap(d)).union(.next).rawValue
                s.lists.append(2); s.d += 2; s.tail = false
                out.append(s)
            } else {
                if inFlight + 1 <= n {
                    var s = self
                    s.flags[slot(d)] = PackedRing.Flags.available(wrap: wrap(d)).rawValue
                    s.lists.append(1); s.d += 1
                    out.append(s)
                }
                if inFlight + 2 <= n && n >= 2 {
                    var s = self
                    s.flags[slot(d + 1)] = PackedRing.Flags.available(wrap: wrap(d + 1)).rawValue
                    s.tail = true
                    out.append(s)
                }
            }
            for i in lists.indices where i == 0 || outOfOrder {
                var s = self
                s.flags[slot(u)] = PackedRing.Flags.usedMark(wrap: wrap(u)).rawValue
                s.u += lists[i]
                s.lists.remove(at: i)
                out.append(s)
            }
            return out
        }
    }

    /// States reachable from `s` in at most `k` steps (s included).
    static func within(_ s: State, _ k: Int, outOfOrder: Bool) -> Set<State> {
        var seen: Set<State> = [s], frontier: Set<State> = [s]
        for _ in 0..<k {
            var next: Set<State> = []
            for x in frontier { for y in x.steps(outOfOrder: outOfOrder) where !seen.contains(y) { seen.insert(y); next.insert(y) } }
            frontier = next
        }
        return seen
    }

    @Test("PackedSnapshotGuard.drained: whenever its three reads pass, nothing was in flight at the second (rings of 1 to 4, lists of one or two, in order and out of order)",
          arguments: [1, 2, 3, 4])
    func drainedMeansNothingInFlight(n: Int) {
        var checked = 0, held = 0
        for outOfOrder in [false, true] {
            let start = State(n: n, flags: Array(repeating: 0, count: n))
            // The recorder's used position u: one the device had reached (state s0) before the
            // reads; it tests positions p in (u, u + N], as `drainedScan` does.
            for s0 in Self.within(start, n + 2, outOfOrder: outOfOrder) {
                let u = s0.u
                for s1 in Self.within(s0, n, outOfOrder: outOfOrder) {
                    for p in (u + 1)...(u + n) {
                        // The lap assumption: the driver has not made p - 1 + N available before
                        // p - 1 was read, nor p + N before p was.
                        guard s1.d <= p - 1 + n else { continue }
                        let before = s1.read(p - 1)
                        // Between the first two reads, enough steps for the driver to come round again.
                        for s2 in Self.within(s1, 2 * n + 1, outOfOrder: outOfOrder) where s2.d <= p + n {
                            let at = s2.read(p)
                            for s3 in Self.within(s2, 1, outOfOrder: outOfOrder) where s3.d <= p - 1 + n {
                                checked += 1
                                guard PackedSnapshotGuard.drained(position: UInt64(p), size: UInt32(n), before: before, at: at, beforeAgain: s3.read(p - 1)) else { continue }
                                held += 1
                                #expect(s2.d == p && s2.u == p && s2.lists.isEmpty, "n \(n): drained at \(p) (u \(u)) with driver \(s2.d), device \(s2.u) in flight \(s2.lists)")
                            }
                        }
                    }
                }
            }
        }
        #expect(held > 0 && checked > held)
        print("drained n=\(n): \(checked) read triples, \(held) passed the test, each with nothing in flight")
    }
}
