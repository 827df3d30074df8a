import TraceFormat
import VhostUser
import VirtioProtocol

/// Why a relay pass stopped (split and packed alike): the ring is no longer relayed.
enum RelayFailure: Error {
    case fault(String)
    case arenaFull(String)
    case workBound
    /// The device wrote what the relay cannot place (packed: a used descriptor naming no buffer in
    /// flight), so where it goes next is unknown.
    case lost(String)
}

/// The relay's copies of the indirect tables one ring's driver exposed, in the shadow region's
/// arena: the device reads the copy (the table as it was recorded), never the driver's table.
/// One slot per descriptor index (split: table index; packed: ring slot), grown when a longer
/// table comes and otherwise reused, so a ring needs at most its largest tables' room.
/// Both formats' table entries are 16 bytes whose second word the events carry as it is
/// (split: len, flags, next; packed: len, id, flags).
struct IndirectArena {
    private let range: GuestRange
    private let guest: UInt64
    private var slot: [Int32], cap: [Int32]
    private var top = 0

    init(shadow: ShadowRing, descriptors n: Int) {
        range = shadow.arena; guest = shadow.arenaGuest
        slot = Array(repeating: -1, count: n); cap = Array(repeating: 0, count: n)
    }

    /// Copies the table of descriptor `parent` (`len` bytes at guest `addr` of the front-end's
    /// memory) into its slot, recording each whole entry as `kind` (`len / 16` of them, at most
    /// 65536). Returns the copy's guest address; nil when the table is empty or outside the
    /// front-end's memory (the device then finds the address the driver gave, as it would without
    /// the relay, and fails on it the same way).
    mutating func copy(parent: UInt16, addr: UInt64, len: UInt32, kind: EventKind, vq: UInt16, memory: MemoryTable, t: UInt64,
                       budget: inout Int, out: inout [TraceEvent], rec: inout [TraceEvent]) throws(RelayFailure) -> UInt64? {
        let unit = UInt64(SplitRing.descriptorSize), most = UInt64(SplitRing.maxIndirectEntries)
        let whole = Int(min(UInt64(len) / unit, most))
        // A partial last entry is copied too, so the device reads the same bytes it would have
        // (in 64 bits: a length near 4 GiB must not overflow).
        let entries = Int(min((UInt64(len) + unit - 1) / unit, most))
        guard entries > 0, let table = memory.guest(addr, length: UInt64(entries) * 16) else { return nil }
        let p = Int(parent)
        if Int(cap[p]) < entries {
            guard top + entries * 16 <= range.count else {
                throw .arenaFull("the indirect arena (\(range.count / 16) entries) is full")
            }
            slot[p] = Int32(top / 16); cap[p] = Int32(entries)
            top += entries * 16
        }
        let base = Int(slot[p]) * 16
        for k in 0..<entries {
            budget -= 1
            if budget < 0 { throw .workBound }
            guard let e = SplitRingView.descriptor(in: table, at: 16 * k) else { throw .fault("reading the indirect table of descriptor \(parent) faulted") }
            if k < whole {
                let ev = TraceEvent(kind, vq: vq, aux: UInt16(truncatingIfNeeded: k), timestamp: t, p0: e.addr, p1: e.packed, p2: UInt64(parent))
                out.append(ev); rec.append(ev)
            }
            var raw = (e.addr, e.packed)
            let ok = withUnsafeBytes(of: &raw) { range.write($0, at: base + 16 * k) }
            guard ok else { throw .fault("writing the indirect arena faulted") }
        }
        return guest + UInt64(base)
    }
}
