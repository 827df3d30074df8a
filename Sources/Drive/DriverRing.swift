import CSupport
import Glibc
import TraceFormat
import VhostUser
import VirtioProtocol

/// One split virtqueue as `drive`'s driver runs it. Every driver action writes guest memory and the
/// matching trace event, in that order, so the trace is exact on the driver side. The device side
/// is what the driver reads (`poll`): the used ring after an acquire load of used.idx, and the
/// call eventfd. See `Specs/scenarios.md` ("How device events are placed").
public final class DriverRing {
    public let vq: UInt16
    public let size: Int
    let mem: DriverMemory
    let trace: DriveTrace
    public let desc: GuestSpan
    public let avail: GuestSpan
    public let used: GuestSpan
    public let kickFd: Int32
    public let callFd: Int32
    public var eventIdx = false
    public var inOrder = false

    /// avail.idx as last published, and used.idx as last read.
    public private(set) var availIdx: UInt16
    public private(set) var usedIdx: UInt16
    private var free: [UInt16]
    /// Descriptor reserved for the decoy chain (never exposed: a completion naming it is the device
    /// consuming past avail.idx).
    public private(set) var decoy: UInt16?

    /// One chain the driver built: its descriptors and what it expects back.
    public struct Chain: Sendable {
        public var head: UInt16
        public var descriptors: [UInt16]
        /// Device-writable bytes.
        public var writable: UInt64
        /// Device-writable spans (RX buffers), in chain order.
        public var buffers: [GuestSpan] = []
        /// What the scenario calls it (a packet number, "hostile", ...).
        public var tag: Int = 0
        /// Free-running avail position it was exposed at (nil until exposed).
        public var position: UInt16?
        /// Built by hand (hostile chains): its descriptors are not returned to the free list.
        public var handMade = false
    }
    private var chains: [UInt16: Chain] = [:]
    /// IN_ORDER: heads in the order they were exposed.
    private var exposureOrder: [UInt16] = []
    private var exposureStart = 0
    /// IN_ORDER: the element each used slot held when last read, to tell written from stale.
    private var lastLap: [UInt64]

    /// A used element as read, with the chain it completes (nil when it names no chain in flight).
    public struct Completion: Sendable {
        public let position: UInt16
        public let head: UInt16
        /// nil when IN_ORDER left the element of this position unwritten.
        public let len: UInt32?
        public let chain: Chain?
    }

    public private(set) var interrupts = 0
    public private(set) var completed = 0
    /// What the device did that no chain explains (the checker says which rule it breaks).
    public private(set) var anomalies: [String] = []
    /// The device published more than the ring holds, or completed what was not in flight: the
    /// driver stops adding buffers (its bookkeeping could no longer be trusted).
    public private(set) var deviceFaulted = false
    /// Set when the ring is stopped (GET_VRING_BASE): polls still read the used ring (a device that
    /// goes on publishing is caught), but a notification racing the stop is drained unrecorded
    /// (drivers must tolerate spurious notifications).
    public var stopped = false
    /// Called for each element as it is read; an event it returns goes into the trace right after
    /// the element's used_entry (receive rings: the packet's rx_header).
    public var onElement: ((DriverRing, Completion) -> TraceEvent?)?
    /// Called with the completions of every poll that saw some, and the used.idx it read.
    public var onCompletions: ((DriverRing, [Completion], UInt16) -> Void)?

    // The notification state the driver asked for, mirrored to know when an interrupt is owed
    // (the same obligation the checker judges; the driver only uses it to wait long enough).
    public private(set) var availFlags: UInt16 = 0
    public private(set) var usedEvent: UInt16 = 0
    private var owedWindow: (start: UInt16, end: UInt16)?
    /// The device published what the driver asked to be interrupted for, and has not interrupted.
    public var owesInterrupt: Bool { owedWindow != nil }
    /// The driver has reported the missing interrupt; the next window starts afresh.
    public func forgetOwedNotification() { owedWindow = nil }

    public init(vq: UInt16, size: Int, base: UInt16, memory: DriverMemory, trace: DriveTrace, region: Int = 0,
                regions: (desc: Int, avail: Int, used: Int)? = nil, decoy: Bool = true) throws(DriveError) {
        self.vq = vq; self.size = size; mem = memory; self.trace = trace
        let r = regions ?? (region, region, region)
        desc = try memory.alloc(16 * size, align: 4096, region: r.desc, label: "vq \(vq) descriptor table")
        avail = try memory.alloc(6 + 2 * size, align: 64, region: r.avail, label: "vq \(vq) available ring")
        used = try memory.alloc(6 + 8 * size, align: 64, region: r.used, label: "vq \(vq) used ring")
        guard let k = EventNotifier.make(), let c = EventNotifier.make() else { throw .tool("eventfd: \(String(cString: strerror(errno)))") }
        kickFd = k; callFd = c
        availIdx = base; usedIdx = base
        free = (0..<UInt16(size)).reversed().map { $0 }
        lastLap = Array(repeating: 0, count: size)
        memory.allowDeviceWrites(used)
        // Fresh parts: zero, with both indices at the base (the device reads used.idx from memory).
        memory.fill(0, at: desc); memory.fill(0, at: avail)
        memory.write(UInt16(0), at: avail, 0); memory.write(base, at: avail, 2)
        memory.write(UInt16(0), at: used, 0); memory.write(base, at: used, 2)
        if decoy && size >= 4 { self.decoy = free.removeFirst() }
    }

    deinit { close(kickFd); close(callFd) }

    public var inFlight: Int { Int(availIdx &- usedIdx) }
    /// The head the next chain built from the free list starts with.
    public var nextHead: UInt16? { free.last }
    public var freeDescriptors: Int { free.count }
    public var outstanding: [Chain] { Array(chains.values) }

    // MARK: driver actions, each one memory write and one event

    public func writeDesc(_ i: UInt16, addr: UInt64, len: UInt32, flags: SplitRing.DescFlags, next: UInt16 = 0) {
        let o = 16 * Int(i)
        if o + 16 <= desc.length {
            mem.write(addr, at: desc, o); mem.write(len, at: desc, o + 8)
            mem.write(flags.rawValue, at: desc, o + 12); mem.write(next, at: desc, o + 14)
        }
        trace.emit(.desc(vq: vq, index: i, addr: addr, len: len, flags: flags, next: next))
    }

    /// Entry `entry` of the indirect table at `table` that descriptor `parent` points to.
    public func writeIndirect(parent: UInt16, table: GuestSpan, entry: Int, addr: UInt64, len: UInt32, flags: SplitRing.DescFlags, next: UInt16 = 0) {
        let o = 16 * entry
        mem.write(addr, at: table, o); mem.write(len, at: table, o + 8)
        mem.write(flags.rawValue, at: table, o + 12); mem.write(next, at: table, o + 14)
        trace.emit(.indirectDesc(vq: vq, parent: parent, index: UInt16(entry), addr: addr, len: len, flags: flags, next: next))
    }

    public func putAvail(pos: UInt16, head: UInt16) {
        mem.write(head, at: avail, 4 + 2 * (Int(pos) % size))
        trace.emit(.availEntry(vq: vq, pos: pos, head: head))
    }

    /// Publishes avail.idx = `idx` (reading the used ring first, so completions made before are
    /// placed before), then points the next slot at the decoy.
    public func publish(_ idx: UInt16) {
        _ = poll()
        mem.publish16(idx, at: avail, 2)
        trace.emit(.availIdx(vq: vq, idx: idx))
        availIdx = idx
        placeDecoy()
    }

    public func kick() {
        _ = EventNotifier.signal(kickFd)
        trace.emit(.simple(.kick, vq: vq))
    }

    public func setAvailFlags(_ f: UInt16) {
        availFlags = f
        if !eventIdx && f & SplitRing.availFlagNoInterrupt != 0 { owedWindow = nil }
        mem.write(f, at: avail, 0)
        trace.emit(.simple(.availFlags, vq: vq, value: UInt64(f)))
    }

    public func setUsedEvent(_ v: UInt16) {
        usedEvent = v
        if eventIdx, let w = owedWindow, !SplitRing.needEvent(event: v, new: w.end, old: w.start) { owedWindow = nil }
        mem.write(v, at: avail, 4 + 2 * size)
        trace.emit(.simple(.usedEvent, vq: vq, value: UInt64(v)))
    }

    /// The decoy chain sits in the slot of the next position, not yet published.
    private func placeDecoy() {
        guard let d = decoy, inFlight < size else { return }
        putAvail(pos: availIdx, head: d)
    }

    /// Writes the decoy chain's descriptor (a readable buffer the device must never see used).
    public func armDecoy(buffer: GuestSpan) {
        guard let d = decoy else { return }
        writeDesc(d, addr: buffer.guest, len: UInt32(buffer.length), flags: [])
        placeDecoy()
    }

    // MARK: building chains

    /// One part of a chain: a buffer, device-readable or device-writable.
    public struct Part: Sendable {
        public var addr: UInt64
        public var len: UInt32
        public var write: Bool
        public var span: GuestSpan?
        public init(_ s: GuestSpan, write: Bool) { addr = s.guest; len = UInt32(s.length); self.write = write; span = s }
        public init(addr: UInt64, len: UInt32, write: Bool) { self.addr = addr; self.len = len; self.write = write; span = nil }
    }

    /// Reorders the free descriptors (a driver that reclaims buffers in another order than the
    /// device used them), deterministically from `seed`.
    public func shuffleFree(seed: UInt64) {
        var state = seed
        for i in stride(from: free.count - 1, to: 0, by: -1) {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let j = Int((state >> 33) % UInt64(i + 1))
            free.swapAt(i, j)
        }
    }

    /// Takes `n` descriptors off the free list (nil when there are not that many).
    public func takeDescriptors(_ n: Int) -> [UInt16]? {
        guard n <= free.count else { return nil }
        let out = Array(free.suffix(n).reversed())
        free.removeLast(n)
        return out
    }

    /// A direct chain of `parts` in free descriptors. Not exposed yet.
    public func chain(_ parts: [Part], tag: Int = 0) throws(DriveError) -> Chain {
        guard !parts.isEmpty else { throw .tool("a chain needs at least one part") }
        guard let ds = takeDescriptors(parts.count) else { throw .tool("vq \(vq): \(parts.count) descriptor(s) wanted, \(free.count) free") }
        var c = Chain(head: ds[0], descriptors: ds, writable: 0, tag: tag)
        for (k, p) in parts.enumerated() {
            let last = k == parts.count - 1
            writeDesc(ds[k], addr: p.addr, len: p.len, flags: Self.flags(write: p.write, next: !last), next: last ? 0 : ds[k + 1])
            note(p, in: &c)
        }
        return c
    }

    /// A chain of `direct` parts in the main table followed by one INDIRECT descriptor whose table
    /// (allocated here) holds `indirect` parts.
    public func indirectChain(direct: [Part] = [], indirect: [Part], tag: Int = 0) throws(DriveError) -> Chain {
        guard let ds = takeDescriptors(direct.count + 1) else { throw .tool("vq \(vq): \(direct.count + 1) descriptor(s) wanted, \(free.count) free") }
        let table = try mem.alloc(16 * max(1, indirect.count), align: 16, region: desc.region, label: "vq \(vq) indirect table")
        var c = Chain(head: ds[0], descriptors: ds, writable: 0, tag: tag)
        let parent = ds[direct.count]
        for (k, p) in indirect.enumerated() {
            let last = k == indirect.count - 1
            writeIndirect(parent: parent, table: table, entry: k, addr: p.addr, len: p.len,
                          flags: Self.flags(write: p.write, next: !last), next: last ? 0 : UInt16(k + 1))
        }
        for (k, p) in direct.enumerated() {
            writeDesc(ds[k], addr: p.addr, len: p.len, flags: Self.flags(write: p.write, next: true), next: ds[k + 1])
        }
        // In chain order: the direct descriptors, then the table's entries.
        for p in direct + indirect { note(p, in: &c) }
        writeDesc(parent, addr: table.guest, len: UInt32(16 * indirect.count), flags: .indirect)
        return c
    }

    static func flags(write: Bool, next: Bool) -> SplitRing.DescFlags {
        var f: SplitRing.DescFlags = []
        if write { f.insert(.write) }
        if next { f.insert(.next) }
        return f
    }

    private func note(_ p: Part, in c: inout Chain) {
        guard p.write else { return }
        c.writable += UInt64(p.len)
        if let s = p.span { c.buffers.append(s) }
    }

    /// Registers a chain built by hand (hostile scenarios write descriptors themselves) so that its
    /// completion is recognised; `writable` spans are what the device may write for it.
    public func handMade(head: UInt16, descriptors: [UInt16], writable: [(addr: UInt64, len: UInt32)], tag: Int = 0) -> Chain {
        var c = Chain(head: head, descriptors: descriptors, writable: 0, tag: tag)
        c.handMade = true
        for w in writable { c.writable += UInt64(w.len) }
        return c
    }

    /// Makes `chains` available at the next positions (one avail_entry each, one avail_idx for
    /// all), allowing the device to write their writable buffers.
    public func expose(_ cs: [Chain], kick doKick: Bool = true) {
        var pos = availIdx
        for var c in cs {
            putAvail(pos: pos, head: c.head)
            c.position = pos
            chains[c.head] = c
            if inOrder { exposureOrder.append(c.head) }
            for b in c.buffers { mem.allowDeviceWrites(b) }
            pos = pos &+ 1
        }
        publish(pos)
        if doKick { kick() }
    }

    /// Writes `head` at the next avail position and moves avail.idx to `to` (hostile: beyond what
    /// was written, or by more than the ring holds). Chains registered are `cs`.
    public func publishRaw(entries: [UInt16], to idx: UInt16, chains cs: [Chain] = [], kick doKick: Bool = true) {
        var pos = availIdx
        for h in entries { putAvail(pos: pos, head: h); pos = pos &+ 1 }
        for var c in cs {
            c.position = c.position ?? availIdx
            chains[c.head] = c
            if inOrder { exposureOrder.append(c.head) }
        }
        _ = poll()
        mem.publish16(idx, at: avail, 2)
        trace.emit(.availIdx(vq: vq, idx: idx))
        availIdx = idx
        if doKick { kick() }
    }

    // MARK: the device side, as the driver reads it

    /// Reads used.idx (acquire), then the element of every position not read yet, and takes the
    /// call eventfd's count. Writes `used_entry` for each element, one `used_idx`, and one
    /// `interrupt` if the eventfd was signalled, in that order.
    @discardableResult
    public func poll() -> [Completion] {
        var out: [Completion] = []
        // The call eventfd is taken before used.idx is read: a signal taken now was sent after the
        // device published some index at most the one read next, so recording the interrupt after
        // that used_idx never places it before the publication it notifies. (Taken after the read,
        // a signal for a publication made in between would discharge an earlier window and leave
        // the later one looking unsignalled: a false "missed interrupt".)
        let signalled = (EventNotifier.take(callFd) ?? 0) > 0
        if let u = mem.load16Acquire(used, 2), u != usedIdx {
            let n = Int(u &- usedIdx)
            if n > size {
                anomalies.append("used.idx moved \(usedIdx) -> \(u): \(n) entries at once, more than the ring's \(size)")
                deviceFaulted = true
                trace.emit(.usedIdx(vq: vq, idx: u))
                usedIdx = u
            } else {
                for k in 0..<n {
                    let p = usedIdx &+ UInt16(k)
                    let slot = Int(p) % size
                    let id = mem.load(UInt32.self, used, 4 + 8 * slot) ?? 0
                    let len = mem.load(UInt32.self, used, 8 + 8 * slot) ?? 0
                    if inOrder {
                        let raw = UInt64(id) | UInt64(len) << 32
                        // A published index ends a batch (its element is written); another slot
                        // that changed since the last lap was written in this one.
                        let written = k == n - 1 || raw != lastLap[slot]
                        lastLap[slot] = raw
                        if written { trace.emit(.usedEntry(vq: vq, pos: p, id: id, len: len)) }
                        out.append(retireOldest(position: p, named: written ? id : nil, len: written ? len : nil))
                    } else {
                        trace.emit(.usedEntry(vq: vq, pos: p, id: id, len: len))
                        out.append(complete(position: p, id: id, len: len))
                    }
                    // What the driver reads in the buffer just used (an RX header), placed after its
                    // used_entry and before the used_idx that publishes it.
                    if let hook = onElement, let e = hook(self, out[out.count - 1]) { trace.emit(e) }
                }
                trace.emit(.usedIdx(vq: vq, idx: u))
                notePublication(old: usedIdx, new: u)
                usedIdx = u
                onCompletions?(self, out, u)
            }
        }
        if signalled && !stopped {
            interrupts += 1
            owedWindow = nil
            trace.emit(.simple(.interrupt, vq: vq))
        }
        return out
    }

    private func notePublication(old: UInt16, new: UInt16) {
        let owed = eventIdx ? SplitRing.needEvent(event: usedEvent, new: new, old: old) : availFlags & SplitRing.availFlagNoInterrupt == 0
        if owed { owedWindow = (owedWindow?.start ?? old, new) }
    }

    private func complete(position p: UInt16, id: UInt32, len: UInt32) -> Completion {
        guard id < UInt32(size), let c = chains.removeValue(forKey: UInt16(id)) else {
            anomalies.append("used element at position \(p) names head \(id), which is not in flight")
            deviceFaulted = true
            return Completion(position: p, head: UInt16(truncatingIfNeeded: id), len: len, chain: nil)
        }
        release(c)
        return Completion(position: p, head: c.head, len: len, chain: c)
    }

    private func retireOldest(position p: UInt16, named id: UInt32?, len: UInt32?) -> Completion {
        while exposureStart < exposureOrder.count, chains[exposureOrder[exposureStart]] == nil { exposureStart += 1 }
        guard exposureStart < exposureOrder.count, let c = chains.removeValue(forKey: exposureOrder[exposureStart]) else {
            anomalies.append("used position \(p) is published but no exposed buffer is left to retire (IN_ORDER)")
            deviceFaulted = true
            return Completion(position: p, head: UInt16(truncatingIfNeeded: id ?? 0), len: len, chain: nil)
        }
        exposureStart += 1
        if exposureStart > 4096 { exposureOrder.removeFirst(exposureStart); exposureStart = 0 }
        if let id, id != UInt32(c.head) {
            anomalies.append("used element at position \(p) names head \(id), but with IN_ORDER the buffer used there is head \(c.head)")
            deviceFaulted = true
        }
        release(c)
        return Completion(position: p, head: c.head, len: len, chain: c)
    }

    private func release(_ c: Chain) {
        completed += 1
        if !c.handMade { free.append(contentsOf: c.descriptors.reversed()) }
    }

    /// Whether the chain with head `h` is still in flight.
    public func isInFlight(_ h: UInt16) -> Bool { chains[h] != nil }
}
