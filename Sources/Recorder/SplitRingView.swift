import VhostUser
import VirtioProtocol

/// One descriptor as read from a table (main or indirect).
struct RawDescriptor: Equatable {
    var addr: UInt64
    var len: UInt32
    var flags: UInt16
    var next: UInt16
    var packed: UInt64 { UInt64(len) | UInt64(flags) << 32 | UInt64(next) << 48 }
    var hasNext: Bool { flags & SplitRing.DescFlags.next.rawValue != 0 }
    var isIndirect: Bool { flags & SplitRing.DescFlags.indirect.rawValue != 0 }
}

/// The three parts of a split ring in the front-end's memory, each bounds-checked against its
/// region when resolved; every read is guarded (nil when the memory faulted).
struct SplitRingView {
    let size: UInt32
    let desc: GuestRange
    let avail: GuestRange
    let used: GuestRange

    /// Resolves the ring's user addresses (SET_VRING_ADDR) in the table. Only what the recorder
    /// reads must lie inside: flags, idx and ring[N] (not the event-index words after them).
    init?(memory: MemoryTable, size: UInt32, desc d: UInt64, avail a: UInt64, used u: UInt64) {
        let n = UInt64(size)
        guard let dr = memory.user(d, length: 16 * n), let ar = memory.user(a, length: 4 + 2 * n),
              let ur = memory.user(u, length: 4 + 8 * n) else { return nil }
        self.size = size; desc = dr; avail = ar; used = ur
    }

    /// A ring whose parts are already resolved (the relay's shadow rings).
    init(size: UInt32, desc: GuestRange, avail: GuestRange, used: GuestRange) {
        self.size = size; self.desc = desc; self.avail = avail; self.used = used
    }

    var mask: UInt16 { UInt16(truncatingIfNeeded: size - 1) }

    func availIdx() -> UInt16? { avail.load16Acquire(at: 2) }
    func usedIdx() -> UInt16? { used.load16Acquire(at: 2) }

    /// The heads in avail slots of positions [from, from + count), in position order.
    func availSlots(from: UInt16, count: Int, into out: inout [UInt16]) -> Bool {
        copyRing(from: from, count: count, base: 4, stride: 2, range: avail, into: &out)
    }

    /// The used elements (id, len) of positions [from, from + count), as raw 64-bit words.
    func usedElems(from: UInt16, count: Int, into out: inout [UInt64]) -> Bool {
        copyRing(from: from, count: count, base: 4, stride: 8, range: used, into: &out)
    }

    func descriptor(_ i: UInt16) -> RawDescriptor? { SplitRingView.descriptor(in: desc, at: Int(i) * 16) }

    static func descriptor(in r: GuestRange, at offset: Int) -> RawDescriptor? {
        guard let raw = r.load16Bytes(at: offset) else { return nil }
        return RawDescriptor(addr: raw.0, len: UInt32(truncatingIfNeeded: raw.1), flags: UInt16(truncatingIfNeeded: raw.1 >> 32),
                             next: UInt16(truncatingIfNeeded: raw.1 >> 48))
    }

    /// Copies `count` consecutive ring entries starting at position `from` (slot = pos mod N), in at
    /// most two guarded copies (the run may wrap past the ring's end).
    private func copyRing<T: FixedWidthInteger>(from: UInt16, count: Int, base: Int, stride: Int, range: GuestRange, into out: inout [T]) -> Bool {
        out.removeAll(keepingCapacity: true)
        guard count > 0 else { return true }
        let n = Int(size)
        let first = Int(from & mask)
        let a = min(count, n - first)
        out.append(contentsOf: repeatElement(T.zero, count: count))
        return out.withUnsafeMutableBytes { buf in
            guard range.read(at: base + first * stride, into: UnsafeMutableRawBufferPointer(rebasing: buf[0..<(a * stride)])) else { return false }
            if count > a {
                return range.read(at: base, into: UnsafeMutableRawBufferPointer(rebasing: buf[(a * stride)..<(count * stride)]))
            }
            return true
        }
    }
}
