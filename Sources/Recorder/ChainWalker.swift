import TraceFormat
import VhostUser
import VirtioProtocol

/// Reads one descriptor chain as it is in memory now and turns it into `desc` events (and
/// `indirect_desc` for every entry of an indirect table, right after its parent). The walk stops
/// at the first revisited index (a loop: the last `next` emitted already shows it), at an index
/// beyond the table (emitted as read, not followed), or at a descriptor without NEXT.
struct ChainWalker {
    enum Failure: Error {
        /// Reading faulted (the memory shrank under the mapping).
        case fault
        /// An indirect table lies outside the mapped memory.
        case unmappedIndirect(UInt64)
        case budget(WorkBudget.Exceeded)
    }

    /// Per-index stamp of the walk that last visited it: a visited set that costs nothing to clear.
    private var stamps: [UInt32] = []
    private var generation: UInt32 = 0

    mutating func walk(head: UInt16, ring: SplitRingView, memory: MemoryTable, vq: UInt16, t: UInt64,
                       budget: inout WorkBudget, into out: inout [TraceEvent]) throws(Failure) {
        let n = Int(ring.size)
        if stamps.count != n { stamps = Array(repeating: 0, count: n); generation = 0 }
        generation &+= 1
        if generation == 0 {
            for k in stamps.indices { stamps[k] = 0 }
            generation = 1
        }
        var i = head
        while Int(i) < n && stamps[Int(i)] != generation {
            stamps[Int(i)] = generation
            do { try budget.spend() } catch { throw .budget(error) }
            guard let d = ring.descriptor(i) else { throw .fault }
            out.append(TraceEvent(.desc, vq: vq, aux: i, timestamp: t, p0: d.addr, p1: d.packed, flags: .sampled))
            if d.isIndirect { try indirect(parent: i, d, memory: memory, vq: vq, t: t, budget: &budget, into: &out) }
            guard d.hasNext else { return }
            i = d.next
        }
    }

    /// Every entry of the table (len / 16 of them, at most the 65536 vhost accepts), in table order.
    private func indirect(parent: UInt16, _ d: RawDescriptor, memory: MemoryTable, vq: UInt16, t: UInt64,
                          budget: inout WorkBudget, into out: inout [TraceEvent]) throws(Failure) {
        let entries = Int(min(d.len / SplitRing.descriptorSize, SplitRing.maxIndirectEntries))
        guard entries > 0 else { return }
        guard let table = memory.guest(d.addr, length: UInt64(entries) * 16) else { throw .unmappedIndirect(d.addr) }
        for k in 0..<entries {
            do { try budget.spend() } catch { throw .budget(error) }
            guard let e = SplitRingView.descriptor(in: table, at: 16 * k) else { throw .fault }
            out.append(TraceEvent(.indirectDesc, vq: vq, aux: UInt16(truncatingIfNeeded: k), timestamp: t, p0: e.addr, p1: e.packed,
                                  p2: UInt64(parent), flags: .sampled))
        }
    }
}
