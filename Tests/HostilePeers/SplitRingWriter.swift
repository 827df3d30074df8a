import VirtioProtocol

/// Writes a split ring inside a `GuestMemory` the way a driver (avail side) and a device (used
/// side) do, or the way a hostile peer would: nothing here checks what it is told to write.
public struct SplitRingWriter: Sendable {
    public let memory: GuestMemory
    public let size: Int
    public let descOffset: Int
    public let availOffset: Int
    public let usedOffset: Int

    /// A ring of `size` entries at `offset` (desc, then avail, then used, each aligned).
    public init(memory: GuestMemory, size: Int, at offset: Int) {
        self.memory = memory; self.size = size
        descOffset = offset
        availOffset = offset + 16 * size
        usedOffset = (availOffset + 6 + 2 * size + 3) & ~3
    }

    /// Bytes the three parts span.
    public static func span(size: Int) -> Int { ((16 * size + 6 + 2 * size + 3) & ~3) + 6 + 8 * size }

    public var descAddr: UInt64 { memory.user(descOffset) }
    public var availAddr: UInt64 { memory.user(availOffset) }
    public var usedAddr: UInt64 { memory.user(usedOffset) }

    public func desc(_ i: Int, addr: UInt64, len: UInt32, flags: SplitRing.DescFlags = [], next: UInt16 = 0) {
        let o = descOffset + 16 * i
        memory.put(addr, at: o); memory.put(len, at: o + 8); memory.put(flags.rawValue, at: o + 12); memory.put(next, at: o + 14)
    }

    /// A one-descriptor buffer at guest offset `bufferOffset`.
    public func simpleBuffer(_ i: Int, bufferOffset: Int, len: UInt32 = 64, write: Bool = false) {
        desc(i, addr: memory.guest(bufferOffset), len: len, flags: write ? .write : [])
    }

    public func availSlot(pos: UInt16, head: UInt16) { memory.put(head, at: availOffset + 4 + 2 * Int(pos % UInt16(truncatingIfNeeded: size))) }
    public func availIdx(_ v: UInt16) { memory.publish(v, at: availOffset + 2) }
    public var currentAvailIdx: UInt16 { memory.get(UInt16.self, at: availOffset + 2) }

    /// Makes `head` available at position `pos` and publishes `pos + 1`.
    public func expose(head: UInt16, at pos: UInt16) {
        availSlot(pos: pos, head: head)
        availIdx(pos &+ 1)
    }

    public func usedElem(pos: UInt16, id: UInt32, len: UInt32) {
        let o = usedOffset + 4 + 8 * Int(pos % UInt16(truncatingIfNeeded: size))
        memory.put(id, at: o); memory.put(len, at: o + 4)
    }
    public func usedIdx(_ v: UInt16) { memory.publish(v, at: usedOffset + 2) }

    /// The device completes `id` at position `pos` and publishes `pos + 1`.
    public func complete(id: UInt32, len: UInt32 = 0, at pos: UInt16) {
        usedElem(pos: pos, id: id, len: len)
        usedIdx(pos &+ 1)
    }
}
