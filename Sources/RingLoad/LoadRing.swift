import CSupport
import Drive
import VirtioProtocol

/// One split ring as the load generator fills it: the driver's and the device's writes, straight to
/// the shared pages (`DriverRing` laid the ring out and configured it; its per-action trace events
/// and bookkeeping would cost more than the recorder being measured).
///
/// Every buffer is a one-descriptor chain whose head is its slot (position mod size), pointing at a
/// buffer of its own: a slot's descriptor holds the same values every lap, so a descriptor read late
/// still says what it said when its position was exposed. A batch is exposed (descriptors, avail
/// entries, then avail.idx with a release store) and then completed by the device in order (used
/// elements, then used.idx with a release store): at most one batch is written ahead of a published
/// index on either side, which the recorder's write-ahead bound (32 by default) must cover.
struct LoadRing {
    let vq: UInt16
    let size: Int
    private let mask: Int
    private let desc: UnsafeMutableRawPointer
    private let avail: UnsafeMutableRawPointer
    private let used: UnsafeMutableRawPointer
    /// Guest address of buffer 0; buffer k is at `buffers + k * bufferLength`.
    private let buffers: UInt64
    private let bufferLength: UInt32
    /// Receive rings get device-writable buffers, and the device reports what it wrote.
    private let deviceWritable: Bool
    /// The next free-running position (avail.idx = used.idx after every batch).
    private(set) var index: UInt16
    private(set) var buffersDone: UInt64 = 0

    init(ring: DriverRing, memory: DriverMemory, buffers: GuestSpan, bufferLength: Int, deviceWritable: Bool) {
        vq = ring.vq; size = ring.size; mask = ring.size - 1
        func pointer(_ s: GuestSpan) -> UnsafeMutableRawPointer { memory.regions[s.region].base + s.offset }
        desc = pointer(ring.desc); avail = pointer(ring.avail); used = pointer(ring.used)
        self.buffers = buffers.guest
        self.bufferLength = UInt32(bufferLength)
        self.deviceWritable = deviceWritable
        index = ring.availIdx
    }

    /// The driver exposes `count` buffers and the device uses them (count <= size).
    mutating func batch(_ count: Int) {
        let flags: UInt16 = deviceWritable ? SplitRing.DescFlags.write.rawValue : 0
        let usedLen: UInt32 = deviceWritable ? min(64, bufferLength) : 0
        var p = index
        for _ in 0..<count {
            let slot = Int(p) & mask
            let d = desc + 16 * slot
            d.storeBytes(of: buffers + UInt64(slot) * UInt64(bufferLength), toByteOffset: 0, as: UInt64.self)
            d.storeBytes(of: bufferLength, toByteOffset: 8, as: UInt32.self)
            d.storeBytes(of: flags, toByteOffset: 12, as: UInt16.self)
            d.storeBytes(of: UInt16(0), toByteOffset: 14, as: UInt16.self)
            avail.storeBytes(of: UInt16(slot), toByteOffset: 4 + 2 * slot, as: UInt16.self)
            p &+= 1
        }
        publish(avail, p)
        var q = index
        for _ in 0..<count {
            let slot = Int(q) & mask
            used.storeBytes(of: UInt32(slot), toByteOffset: 4 + 8 * slot, as: UInt32.self)
            used.storeBytes(of: usedLen, toByteOffset: 8 + 8 * slot, as: UInt32.self)
            q &+= 1
        }
        publish(used, q)
        index = p
        buffersDone += UInt64(count)
    }

    /// The device's used.flags: NO_NOTIFY (it polls; the generator never kicks).
    func deviceNeedsNoKicks() { used.storeBytes(of: SplitRing.usedFlagNoNotify, toByteOffset: 0, as: UInt16.self) }

    /// A 16-bit index store after everything written before it (the ring's publication barrier;
    /// the call is opaque to the compiler, so no store moves across it either).
    private func publish(_ part: UnsafeMutableRawPointer, _ v: UInt16) {
        cs_fence_release()
        part.storeBytes(of: v, toByteOffset: 2, as: UInt16.self)
    }
}
