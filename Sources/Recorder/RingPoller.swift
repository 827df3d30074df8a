import CSupport
import TraceFormat
import VirtioProtocol

/// Follows one split virtqueue by polling shared memory, and turns what changed into sampled events.
///
/// Per poll, in this order (the checker's sampling rules rely on it):
/// 1. read avail.idx; for each newly exposed entry read its slot and its chain's descriptors and emit
///    `desc`/`indirect_desc` (current table contents), then `avail_entry`; then one `avail_idx`;
/// 2. read used.idx; emit `used_entry` for each new element, then one `used_idx`.
/// Every emitted value was read from memory at that moment, so all carry the `.sampled` flag.
struct RingPoller {
    let vq: UInt16
    var size: UInt32 = 0
    var descAddr: UInt64 = 0
    var availAddr: UInt64 = 0
    var usedAddr: UInt64 = 0
    var addrSet = false
    var base: UInt16 = 0
    var kickSet = false
    /// Stopped by GET_VRING_BASE (or never started).
    var stopped = true

    /// Resolved pointers into the mapped memory (nil: not mapped).
    private var desc: UnsafeRawPointer?
    private var avail: UnsafeRawPointer?
    private var used: UnsafeRawPointer?
    private(set) var lastAvail: UInt16 = 0
    private(set) var lastUsed: UInt16 = 0
    /// The recorder fell more than a ring behind; ring entries were overwritten before it read them.
    private(set) var overrun = false
    /// Why this ring is not followed, if it should be but cannot be (mapping).
    private var mappingProblem: String?
    /// Why the recorder gave up on this ring (fell behind); kept across stops and restarts.
    private(set) var lost: String?
    var problem: String? { lost ?? mappingProblem }

    // Counters for progress output.
    private(set) var buffersExposed: UInt64 = 0
    private(set) var buffersUsed: UInt64 = 0

    init(vq: UInt16) { self.vq = vq }

    var active: Bool { desc != nil && !stopped && !overrun }

    /// Called when the ring is (re)started: SET_VRING_KICK with size, addresses and memory known.
    mutating func start(memory: GuestMemory) {
        stopped = false
        lastAvail = base
        lastUsed = base
        overrun = false
        resolve(memory: memory)
    }

    /// Recomputes the pointers (after a new memory table). Returns a problem description, if any.
    mutating func resolve(memory: GuestMemory) {
        desc = nil; avail = nil; used = nil; mappingProblem = nil
        guard !stopped else { return }
        guard SplitRing.isValidQueueSize(size) else { mappingProblem = "queue size \(size) is not a valid split ring size"; return }
        guard addrSet else { mappingProblem = "no SET_VRING_ADDR"; return }
        let n = UInt64(size)
        guard let d = memory.user(descAddr, 16 * n),
              let a = memory.user(availAddr, 6 + 2 * n),
              let u = memory.user(usedAddr, 6 + 8 * n) else {
            mappingProblem = "ring addresses (desc 0x\(String(descAddr, radix: 16)), avail 0x\(String(availAddr, radix: 16)), used 0x\(String(usedAddr, radix: 16))) are not inside the mapped memory table"
            return
        }
        desc = d; avail = a; used = u
    }

    /// One poll. `emit` receives the events in trace order.
    mutating func poll(memory: GuestMemory, now: UInt64, emit: (TraceEvent) -> Void) {
        guard let desc, let avail, let used, !stopped, !overrun else { return }
        let n = UInt16(truncatingIfNeeded: size)   // size 32768 fits; masks use size - 1
        let mask = UInt16(truncatingIfNeeded: size - 1)

        // 1. Newly exposed buffers.
        let availIdx = cs_load16_acquire(avail + 2)
        let exposed = availIdx &- lastAvail
        if exposed != 0 {
            if UInt32(exposed) > size {
                fellBehind("avail.idx moved by \(exposed) (> queue size \(size)) between two polls")
                return
            }
            var pos = lastAvail
            while pos != availIdx {
                let head = cs_load16(avail + 4 + 2 * Int(pos & mask))
                emitChain(head: head, n: n, desc: desc, memory: memory, now: now, emit: emit)
                emit(TraceEvent(.availEntry, vq: vq, aux: head, timestamp: now, p0: UInt64(pos), flags: .sampled))
                pos &+= 1
            }
            emit(TraceEvent(.availIdx, vq: vq, timestamp: now, p0: UInt64(availIdx), flags: .sampled))
            buffersExposed += UInt64(exposed)
            lastAvail = availIdx
        }

        // 2. Newly used buffers, read after the avail side so every completion of an exposure
        //    seen above comes after it in the trace.
        let usedIdx = cs_load16_acquire(used + 2)
        let completed = usedIdx &- lastUsed
        if completed != 0 {
            if UInt32(completed) > size {
                fellBehind("used.idx moved by \(completed) (> queue size \(size)) between two polls")
                return
            }
            var pos = lastUsed
            while pos != usedIdx {
                let elem = used + 4 + 8 * Int(pos & mask)
                let id = cs_load32(elem)
                let len = cs_load32(elem + 4)
                emit(TraceEvent(.usedEntry, vq: vq, timestamp: now, p0: UInt64(pos), p1: UInt64(id), p2: UInt64(len), flags: .sampled))
                pos &+= 1
            }
            emit(TraceEvent(.usedIdx, vq: vq, timestamp: now, p0: UInt64(usedIdx), flags: .sampled))
            buffersUsed += UInt64(completed)
            lastUsed = usedIdx
        }
    }

    private mutating func fellBehind(_ why: String) {
        // Entries were overwritten before they could be read: emitting guesses would make the
        // checker report violations nobody committed, so the ring is no longer followed.
        overrun = true
        lost = "recorder fell behind on vq \(vq): \(why); this ring is no longer recorded"
    }

    /// Emits the chain starting at `head` as it is in the table now.
    private func emitChain(head: UInt16, n: UInt16, desc: UnsafeRawPointer, memory: GuestMemory, now: UInt64, emit: (TraceEvent) -> Void) {
        var i = head
        var visited: UInt32 = 0
        // A head or next beyond the table is emitted as is (the checker reports it) but not followed.
        while UInt32(i) < size && visited < size {
            let d = desc + 16 * Int(i)
            let addr = cs_load64(d), len = cs_load32(d + 8), flags = cs_load16(d + 12), next = cs_load16(d + 14)
            emit(TraceEvent(.desc, vq: vq, aux: i, timestamp: now, p0: addr,
                            p1: TraceEvent.packDesc(len: len, flags: flags, next: next), flags: .sampled))
            visited += 1
            if flags & SplitRing.DescFlags.indirect.rawValue != 0 {
                emitIndirect(parent: i, addr: addr, len: len, memory: memory, now: now, emit: emit)
            }
            guard flags & SplitRing.DescFlags.next.rawValue != 0 else { break }
            i = next
        }
    }

    private func emitIndirect(parent: UInt16, addr: UInt64, len: UInt32, memory: GuestMemory, now: UInt64, emit: (TraceEvent) -> Void) {
        let entries = min(len / SplitRing.descriptorSize, SplitRing.maxIndirectEntries)
        guard entries > 0, let table = memory.guest(addr, UInt64(entries) * 16) else { return }
        for k in 0..<Int(entries) {
            let d = table + 16 * k
            var raw = (UInt64(0), UInt64(0))
            withUnsafeMutableBytes(of: &raw) { $0.copyMemory(from: UnsafeRawBufferPointer(start: d, count: 16)) }
            let a = UInt64(littleEndian: raw.0)
            let rest = UInt64(littleEndian: raw.1)
            emit(TraceEvent(.indirectDesc, vq: vq, aux: UInt16(truncatingIfNeeded: k), timestamp: now, p0: a, p1: rest,
                            p2: UInt64(parent), flags: .sampled))
        }
    }
}
