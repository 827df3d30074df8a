import VirtioProtocol

/// Writes a packed ring inside a `GuestMemory` the way a driver and a device do (each descriptor's
/// addr, len and id first, then its flags with a release store), or the way a hostile peer would:
/// nothing here checks what it is told to write. Positions are free-running; slot = position mod N.
public struct PackedRingWriter: Sendable {
    public let memory: GuestMemory
    public let size: Int
    public let descOffset: Int
    /// The two 4-byte event suppression structures after the ring (driver's, then device's).
    public var driverEventOffset: Int { descOffset + 16 * size }
    public var deviceEventOffset: Int { descOffset + 16 * size + 4 }

    public init(memory: GuestMemory, size: Int, at offset: Int) { self.memory = memory; self.size = size; descOffset = offset }

    public var descAddr: UInt64 { memory.user(descOffset) }
    public var driverEventAddr: UInt64 { memory.user(driverEventOffset) }
    public var deviceEventAddr: UInt64 { memory.user(deviceEventOffset) }

    public func slot(_ p: Int) -> Int { p % size }
    public func wrap(_ p: Int) -> Bool { (p / size) % 2 == 0 }

    public func body(_ p: Int, addr: UInt64, len: UInt32, id: UInt16) {
        let o = descOffset + 16 * slot(p)
        memory.put(addr, at: o); memory.put(len, at: o + 8); memory.put(id, at: o + 12)
    }
    public func storeFlags(_ p: Int, _ f: PackedRing.Flags) { memory.publish(f.rawValue, at: descOffset + 16 * slot(p) + 14) }

    /// Makes a list of `count` descriptors with buffer id `id` available at positions p..., the
    /// first one's flags last (`headFirst`: the first one's before the rest, as a buggy driver would);
    /// `flagsStored` stops after that many flags stores (a driver caught in the middle of its list).
    public func expose(at p: Int, count: Int = 1, id: UInt16, write: Bool = false, headFirst: Bool = false, flagsStored: Int? = nil) {
        for k in 0..<count { body(p + k, addr: memory.guest(0x8000 + 0x100 * ((p + k) % 64)), len: 64, id: id) }
        func flags(_ k: Int) -> PackedRing.Flags {
            var f = PackedRing.Flags.available(wrap: wrap(p + k))
            if k < count - 1 { f.insert(.next) }
            if write { f.insert(.write) }
            return f
        }
        let order = headFirst ? Array(0..<count) : Array(1..<count) + [0]
        for k in order.prefix(flagsStored ?? count) { storeFlags(p + k, flags(k)) }
    }

    /// The device marks a used descriptor with `id` at position `q` (its id and len, then its flags).
    public func use(at q: Int, id: UInt16, len: UInt32 = 0) {
        let o = descOffset + 16 * slot(q)
        memory.put(len, at: o + 8); memory.put(id, at: o + 12)
        var f = PackedRing.Flags.usedMark(wrap: wrap(q))
        if len > 0 { f.insert(.write) }
        storeFlags(q, f)
    }
}
