import Synchronization
import TraceFormat
import VhostUser
import VirtioProtocol

/// One buffer segment of a chain, as the device will use it: a guest-physical span, readable or
/// writable, already resolved in the memory table.
struct Segment {
    var range: GuestRange
    var write: Bool
}

/// Why the device refuses a chain (and stops using the ring). Each driver bug the catalogue has a
/// rule for is named by it; the others (an address outside the memory table, a fault) end the
/// ring's observation (`ring_gap`) instead.
enum ChainFault: Equatable {
    case rule(RuleID, String)
    case unmapped(String)
    case fault(String)
    /// More work than the device does for one chain (no rule names it: the ring is not judged on).
    case bound(String)

    var message: String {
        switch self {
        case .rule(let r, let m): return "\(m) [\(r.rawValue)]"
        case .unmapped(let m), .fault(let m), .bound(let m): return m
        }
    }
}

/// A split ring as the device sees it (virtio 1.x "Split Virtqueues"): the three parts resolved in
/// the front-end's memory, mapped read-write, every access guarded. The avail ring's `used_event`
/// and the used ring's `avail_event` words (EVENT_IDX) are included.
struct DeviceRing {
    let size: UInt32
    let desc: GuestRange
    let avail: GuestRange
    let used: GuestRange

    init?(memory: MemoryTable, size: UInt32, desc d: UInt64, avail a: UInt64, used u: UInt64) {
        let n = UInt64(size)
        guard let dr = memory.user(d, length: 16 * n), let ar = memory.user(a, length: 6 + 2 * n),
              let ur = memory.user(u, length: 6 + 8 * n), ur.writable, ar.writable else { return nil }
        self.size = size; desc = dr; avail = ar; used = ur
    }

    var mask: UInt16 { UInt16(truncatingIfNeeded: size - 1) }
    private var usedEventOffset: Int { 4 + 2 * Int(size) }
    private var availEventOffset: Int { 4 + 8 * Int(size) }

    func availIdx() -> UInt16? { avail.load16Acquire(at: 2) }
    func availFlags() -> UInt16? { avail.load(UInt16.self, at: 0) }
    func usedEvent() -> UInt16? { avail.load(UInt16.self, at: usedEventOffset) }

    /// Heads of positions [from, from + count) (count <= size), in at most two guarded copies.
    func heads(from: UInt16, count: Int, into out: inout [UInt16]) -> Bool {
        out.removeAll(keepingCapacity: true)
        guard count > 0 else { return true }
        let n = Int(size), first = Int(from & mask), a = min(count, n - first)
        out.append(contentsOf: repeatElement(0, count: count))
        return out.withUnsafeMutableBytes { b in
            guard avail.read(at: 4 + 2 * first, into: UnsafeMutableRawBufferPointer(rebasing: b[0..<(2 * a)])) else { return false }
            if count > a { return avail.read(at: 4, into: UnsafeMutableRawBufferPointer(rebasing: b[(2 * a)..<(2 * count)])) }
            return true
        }
    }

    /// One main-table descriptor, or nil if reading faulted.
    func descriptor(_ i: UInt16) -> RawDesc? { RawDesc.read(desc, at: Int(i) * 16) }

    func writeUsed(pos: UInt16, id: UInt32, len: UInt32) -> Bool {
        used.store(UInt64(id) | UInt64(len) << 32, at: 4 + 8 * Int(pos & mask))
    }
    func publishUsed(_ idx: UInt16) -> Bool { used.store16Release(idx, at: 2) }
    func setUsedFlags(_ f: UInt16) -> Bool { used.store(f, at: 0) }
    func setAvailEvent(_ v: UInt16) -> Bool { used.store(v, at: availEventOffset) }
}

/// A `virtq_desc` as read.
struct RawDesc {
    var addr: UInt64
    var len: UInt32
    var flags: UInt16
    var next: UInt16
    var packed: UInt64 { UInt64(len) | UInt64(flags) << 32 | UInt64(next) << 48 }
    var hasNext: Bool { flags & SplitRing.DescFlags.next.rawValue != 0 }
    var isIndirect: Bool { flags & SplitRing.DescFlags.indirect.rawValue != 0 }
    var isWrite: Bool { flags & SplitRing.DescFlags.write.rawValue != 0 }

    static func read(_ r: GuestRange, at offset: Int) -> RawDesc? {
        var raw = (UInt64(0), UInt64(0))
        let ok = withUnsafeMutableBytes(of: &raw) { r.read(at: offset, into: $0) }
        guard ok else { return nil }
        return RawDesc(addr: raw.0, len: UInt32(truncatingIfNeeded: raw.1), flags: UInt16(truncatingIfNeeded: raw.1 >> 32),
                       next: UInt16(truncatingIfNeeded: raw.1 >> 48))
    }
}

/// Walks one chain the way a device must (virtio 1.x "The Virtqueue Descriptor Table", "Indirect
/// Descriptors"; drivers/vhost/vhost.c vhost_get_vq_desc / get_indirect), collecting its segments
/// and, when tracing, the descriptors exactly as read (`desc`, and `indirect_desc` for every entry
/// of an indirect table right after its parent). It stops at the first thing a device must refuse.
/// The descriptors are read once, when the walk reaches them (an indirect table entry by entry
/// along its chain, not the whole table): the segments used for the data are the ones traced.
struct DeviceChainWalker {
    private var stamps: [UInt32] = []
    private var generation: UInt32 = 0
    /// Descriptors read by the last walk (main table and indirect entries).
    private(set) var lastCount = 0

    /// The most descriptors one chain may have: its queue size (virtio 1.x: "A driver MUST NOT create
    /// a descriptor chain longer than the Queue Size of the device"), at least vhost's 1024 segments
    /// (UIO_MAXIOV), which small rings with indirect tables may reach.
    static func chainBound(size: Int) -> Int { max(1024, size) }

    mutating func walk(head: UInt16, ring: DeviceRing, memory: MemoryTable, indirectAllowed: Bool,
                       vq: UInt16, t: UInt64, trace: Bool, events: inout [TraceEvent],
                       segments: inout [Segment]) -> ChainFault? {
        // Appends to `segments` (the caller keeps a pass's chains in one array).
        let n = Int(ring.size)
        lastCount = 0
        guard Int(head) < n else { return .rule(.vqDescIndex, "head \(head) is outside the descriptor table (queue size \(n))") }
        if stamps.count != n { stamps = Array(repeating: 0, count: n); generation = 0 }
        generation &+= 1
        if generation == 0 { for k in stamps.indices { stamps[k] = 0 }; generation = 1 }
        var seenWrite = false
        var i = head
        while true {
            guard stamps[Int(i)] != generation else {
                return .rule(.vqChainLoop, "the chain from head \(head) comes back to descriptor \(i): a loop")
            }
            stamps[Int(i)] = generation
            guard let d = ring.descriptor(i) else { return .fault("reading descriptor \(i) faulted") }
            lastCount += 1
            if trace { events.append(TraceEvent(.desc, vq: vq, aux: i, timestamp: t, p0: d.addr, p1: d.packed)) }
            if d.isIndirect {
                if !indirectAllowed { return .rule(.vqIndirectFeature, "descriptor \(i) has INDIRECT but VIRTIO_F_INDIRECT_DESC was not negotiated") }
                if d.hasNext { return .rule(.vqIndirectNext, "descriptor \(i) has both INDIRECT and NEXT") }
                return indirect(parent: i, d, size: n, memory: memory, vq: vq, t: t, trace: trace, seenWrite: seenWrite, events: &events, segments: &segments)
            }
            if d.isWrite { seenWrite = true } else if seenWrite {
                return .rule(.vqChainOrder, "descriptor \(i) is device-readable but follows a device-writable one")
            }
            if let f = add(d, memory: memory, what: "descriptor \(i)", into: &segments) { return f }
            guard d.hasNext else { return nil }
            guard Int(d.next) < n else { return .rule(.vqDescIndex, "descriptor \(i) points to next \(d.next), outside the table (queue size \(n))") }
            i = d.next
        }
    }

    private mutating func indirect(parent: UInt16, _ d: RawDesc, size n: Int, memory: MemoryTable, vq: UInt16, t: UInt64, trace: Bool,
                                   seenWrite: Bool, events: inout [TraceEvent], segments: inout [Segment]) -> ChainFault? {
        let size = SplitRing.descriptorSize
        guard d.len != 0, d.len % size == 0, d.len / size <= SplitRing.maxIndirectEntries else {
            return .rule(.vqIndirectLen, "indirect descriptor \(parent) has len \(d.len): not a non-zero multiple of 16 covering at most 65536 entries")
        }
        let count = Int(d.len / size)
        guard let r = memory.guest(d.addr, length: UInt64(d.len)) else {
            return .unmapped("the indirect table of descriptor \(parent) at guest 0x\(String(d.addr, radix: 16)) (\(d.len) bytes) is outside the memory table")
        }
        let bound = Self.chainBound(size: n)
        var seenWrite = seenWrite
        var j = 0, visited = 0
        while true {
            visited += 1
            guard visited <= count else { return .rule(.vqChainLoop, "the indirect table of descriptor \(parent) visits more than its \(count) entries: a loop") }
            guard lastCount < bound else {
                return .bound("the chain through the indirect table of descriptor \(parent) has more than \(bound) descriptors; the device walks no further")
            }
            guard let e = RawDesc.read(r, at: 16 * j) else { return .fault("reading the indirect table of descriptor \(parent) faulted") }
            lastCount += 1
            if trace {
                events.append(TraceEvent(.indirectDesc, vq: vq, aux: UInt16(truncatingIfNeeded: j), timestamp: t, p0: e.addr, p1: e.packed, p2: UInt64(parent)))
            }
            if e.isIndirect { return .rule(.vqIndirectNested, "entry \(j) of the indirect table of descriptor \(parent) has INDIRECT") }
            if e.isWrite { seenWrite = true } else if seenWrite {
                return .rule(.vqChainOrder, "entry \(j) of the indirect table of descriptor \(parent) is device-readable but follows a device-writable one")
            }
            if let f = add(e, memory: memory, what: "entry \(j) of the indirect table of descriptor \(parent)", into: &segments) { return f }
            guard e.hasNext else { return nil }
            guard Int(e.next) < count else {
                return .rule(.vqDescIndex, "entry \(j) of the indirect table of descriptor \(parent) points to next \(e.next), outside its \(count) entries")
            }
            j = Int(e.next)
        }
    }

    private func add(_ d: RawDesc, memory: MemoryTable, what: String, into segments: inout [Segment]) -> ChainFault? {
        guard d.len > 0 else { return nil }
        guard let r = memory.guest(d.addr, length: UInt64(d.len)) else {
            return .unmapped("\(what) names guest 0x\(String(d.addr, radix: 16)) (\(d.len) bytes), outside the memory table")
        }
        segments.append(Segment(range: r, write: d.isWrite))
        return nil
    }
}

/// Full fence: a store (used.idx, avail_event, used.flags) before a load of what the driver wrote
/// (used_event, avail.flags, avail.idx), as vhost's smp_mb() in vhost_notify / vhost_enable_notify.
@inline(__always) func fullFence() { atomicMemoryFence(ordering: .sequentiallyConsistent) }
