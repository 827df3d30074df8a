import Testing
import VirtioProtocol
import VirtqueueModel

/// The packed model, one rule or mechanism at a time (the traces under Traces/ tell the same
/// stories through the checker).
@Suite struct PackedStoryTests {
    /// A conformant driver and device for one packed ring, stepping the model.
    struct Peer {
        var q: PackedVirtqueue
        var a: UInt64 = 0, u: UInt64 = 0
        var lengths: [UInt16: Int] = [:]
        var out: [Violation] = []
        init(size: UInt32, base: RingBase = .start, features: RingFeatures = RingFeatures()) {
            q = PackedVirtqueue(size: size, base: base, features: features)
            a = PackedRing.position(base, size: size); u = a
        }
        var n: UInt32 { q.size }
        func slot(_ p: UInt64) -> UInt16 { PackedRing.slot(p, size: n) }
        func w(_ p: UInt64) -> Bool { PackedRing.wrap(p, size: n) }
        /// Makes a list of `count` descriptors with buffer id `id` available, its head's flags last.
        mutating func post(id: UInt16, count: Int = 1, write: Bool = false) -> StepResult {
            let p0 = a
            for k in 0..<count { out += q.writeDescriptor(slot: slot(p0 + UInt64(k)), addr: 0x1000, len: 64, id: id) }
            var last = StepResult()
            for k in (Array(1..<count) + [0]) {
                let p = p0 + UInt64(k)
                var f = PackedRing.Flags.available(wrap: w(p))
                if k < count - 1 { f.insert(.next) }
                if write { f.insert(.write) }
                last = q.storeAvailFlags(slot: slot(p), f)
                out += last.violations
            }
            a += UInt64(count)
            lengths[id] = count
            return last
        }
        /// The device marks the buffer `id` used at its position (skipping `span`, default the buffer's length).
        mutating func use(id: UInt16, len: UInt32 = 0, span: Int? = nil) -> StepResult {
            out += q.writeUsed(slot: slot(u), id: id, len: len)
            let r = q.storeUsedFlags(slot: slot(u), .usedMark(wrap: w(u)))
            out += r.violations
            u += UInt64(span ?? lengths[id]!)
            return r
        }
    }

    @Test("PACKED-WRAP-COUNTER: the wrap counters flip after the last slot, for every size 1...7, over three laps")
    func wrapCountersFlipAtTheRingEnd() {
        for n in 1...7 as ClosedRange<UInt32> {
            var p = Peer(size: n)
            for i in 0..<(3 * Int(n)) {
                #expect(p.post(id: UInt16(i % 3)).exposed == 1)
                #expect(p.use(id: UInt16(i % 3)).completed == 1)
            }
            #expect(p.out.isEmpty, "N=\(n): \(p.out)")
            #expect(p.q.used == 3 * UInt64(n) && p.q.avail == p.q.used)
        }
    }

    @Test("PACKED-WRAP-COUNTER: a driver that keeps wrap 1 past the ring end is caught at slot 0 of the second lap")
    func driverNotFlipping() {
        var p = Peer(size: 3)
        for i in 0..<3 { _ = p.post(id: UInt16(i)); _ = p.use(id: UInt16(i)) }
        _ = p.q.writeDescriptor(slot: 0, addr: 0x1000, len: 64, id: 0)
        let r = p.q.storeAvailFlags(slot: 0, .avail)
        #expect(r.violations.map(\.rule) == [.packedWrapCounter] && r.exposed == 0)
    }

    @Test("a list's used descriptor skips all its descriptors; out of order, the next one goes where that list ends")
    func outOfOrderSkipsByListLength() {
        var p = Peer(size: 5)
        _ = p.post(id: 1, count: 3)
        _ = p.post(id: 2)
        // id 2 completes first: its used descriptor at position 0 skips 1; id 1's at position 1 skips 3.
        #expect(p.use(id: 2).completed == 1)
        #expect(p.q.used == 1)
        #expect(p.use(id: 1).completed == 1)
        #expect(p.q.used == 4 && p.out.isEmpty)
    }

    @Test("IN_ORDER: one used descriptor (the last buffer's id) retires the batch; the skipped slots keep the driver's flags")
    func inOrderBatch() {
        var p = Peer(size: 4, features: RingFeatures(inOrder: true))
        for id in 1...3 as ClosedRange<UInt16> { _ = p.post(id: id) }
        let r = p.use(id: 3, span: 3)
        #expect(r.completed == 3 && r.violations.isEmpty && p.q.used == 3)
        #expect(p.q.ring[1].flags.isAvailable(wrap: true))
    }

    @Test("PACKED-USED-ID with IN_ORDER: an id not in flight")
    func inOrderUnknownId() {
        var p = Peer(size: 4, features: RingFeatures(inOrder: true))
        _ = p.post(id: 1)
        #expect(p.use(id: 9, span: 1).violations.map(\.rule) == [.packedUsedId])
    }

    @Test("a device that marks a batch's first used descriptor last (DPDK's flush) publishes the whole batch at that store")
    func firstUsedMarkedLast() {
        var p = Peer(size: 4)
        for id in 0...2 as ClosedRange<UInt16> { _ = p.post(id: id) }
        _ = p.q.writeUsed(slot: 1, id: 1, len: 0)
        _ = p.q.writeUsed(slot: 2, id: 2, len: 0)
        _ = p.q.writeUsed(slot: 0, id: 0, len: 0)
        #expect(p.q.storeUsedFlags(slot: 1, .usedMark(wrap: true)).completed == 0)
        #expect(p.q.storeUsedFlags(slot: 2, .usedMark(wrap: true)).completed == 0)
        let r = p.q.storeUsedFlags(slot: 0, .usedMark(wrap: true))
        #expect(r.completed == 3 && r.violations.isEmpty && p.q.used == 3)
    }

    @Test("PACKED-CHAIN-HEAD-LAST is reported once, and the list is handed over when its rest follows")
    func headLastThenRest() {
        var q = PackedVirtqueue(size: 4)
        _ = q.writeDescriptor(slot: 0, addr: 1, len: 1, id: 0)
        _ = q.writeDescriptor(slot: 1, addr: 1, len: 1, id: 7)
        let head = q.storeAvailFlags(slot: 0, [.next, .avail])
        #expect(head.violations.map(\.rule) == [.packedChainHeadLast] && head.exposed == 0)
        let rest = q.storeAvailFlags(slot: 1, .avail)
        #expect(rest.violations.isEmpty && rest.exposed == 1 && q.avail == 2)
    }

    @Test("PACKED-DRIVER-OWNERSHIP: a full ring refuses one more store; ring base 32768 is index 0, wrap 1")
    func fullRingAndBase() {
        let b = RingFormat.packed.base(32768)
        #expect(b == RingBase(index: 0, wrap: true))
        #expect(RingFormat.packed.base(5) == RingBase(index: 5, wrap: false))
        var p = Peer(size: 3, base: RingFormat.packed.base(2))   // index 2, wrap 0: position 5
        #expect(p.q.avail == 5)
        for id in 0..<3 as Range<UInt16> { #expect(p.post(id: id).exposed == 1) }
        #expect(p.out.isEmpty)
        let r = p.q.storeAvailFlags(slot: 2, .available(wrap: true))
        #expect(r.violations.map(\.rule) == [.packedDriverOwnership])
    }

    @Test("queue sizes: packed allows any size 1...32768, split only powers of two")
    func sizes() {
        #expect(RingFormat.packed.isValidQueueSize(3) && RingFormat.packed.isValidQueueSize(32768))
        #expect(!RingFormat.packed.isValidQueueSize(0) && !RingFormat.packed.isValidQueueSize(32769))
        #expect(!RingFormat.split.isValidQueueSize(3) && RingFormat.split.isValidQueueSize(32768))
    }

    @Test("position encoding: decode(encode(p)) finds p again from any point up to a lap behind it", arguments: [1, 2, 3, 5, 32768] as [UInt32])
    func positionEncoding(_ n: UInt32) {
        for p in [0, 1, UInt64(n) - 1, UInt64(n), 2 * UInt64(n) + 1, 7 * UInt64(n) + UInt64(n) / 2] {
            let e = PackedRing.encode(p, size: n)
            for back in [0, 1, UInt64(n)] where p >= back {
                #expect(PackedRing.decode(e, after: p - back, size: n) == p)
            }
        }
    }

    /// What QEMU's vring_packed_need_event and DPDK's vhost_vring_call_packed compute, in 16 bits.
    static func referenceNeedEvent(offWrap: UInt16, usedWrap: Bool, new: UInt16, old: UInt16, size: UInt16) -> Bool {
        var off = offWrap & 0x7FFF
        if (offWrap >> 15 != 0) != usedWrap { off = off &- size }
        var o = old
        if new <= o { o = o &- size }
        return (new &- off &- 1) < (new &- o)
    }

    @Test("PACKED-INTERRUPT-MISSED: the position-window definition agrees with the 16-bit off_wrap formula of QEMU and DPDK", arguments: [1, 2, 3, 4, 7] as [UInt32])
    func needEventAgreesWithReference(_ n: UInt32) {
        // Every window [old, new) of 1...N positions starting anywhere in three laps, every event slot and wrap.
        for old in 0..<UInt64(3 * n) {
            for len in 1...UInt64(n) {
                let new = old + len
                for off in 0..<UInt16(n) {
                    for wrap in [false, true] {
                        let e = PackedRing.EventSuppression(offWrap: off | (wrap ? 0x8000 : 0), flags: 2)
                        let mine = PackedRing.descInWindow(e, old: old, new: new, size: n)
                        let ref = Self.referenceNeedEvent(offWrap: e.offWrap, usedWrap: PackedRing.wrap(new, size: n),
                                                          new: PackedRing.slot(new, size: n), old: PackedRing.slot(old, size: n), size: UInt16(n))
                        #expect(mine == ref, "N=\(n) old=\(old) new=\(new) off=\(off) wrap=\(wrap)")
                    }
                }
            }
        }
    }
}
