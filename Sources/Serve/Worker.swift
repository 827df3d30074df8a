import CSupport
import Foundation
import Glibc
import Synchronization
import TraceFormat
import VhostUser
import VirtioProtocol

/// One worker thread of the back-end: it serves exactly the vrings the mapping gives it (no other
/// worker ever touches them), in passes, and sleeps on their kick eventfds when there is nothing
/// to do (or polls rings whose front-end gave no kick fd).
final class Worker: @unchecked Sendable {
    let id: Int
    let device: Device
    /// The vrings this worker serves (the mapping's, fixed for the whole run).
    let vrings: [Vring]
    private let cond = NSCondition()
    private var pauseRequests = 0
    private var paused = false
    private var stopping = false
    private var exited = false
    private let wakeFd: Int32
    /// Set while the worker sleeps in ppoll: a producer of frames for its RX rings wakes it.
    let sleeping = Atomic<Bool>(false)

    // Scratch, reused across passes.
    private var events: [TraceEvent] = []
    private var heads: [UInt16] = []
    private var segs: [Segment] = []
    private var chains: [(pos: UInt16, head: UInt16, start: Int, end: Int)] = []
    private var walker = DeviceChainWalker()
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 64)

    // Counters (read after the thread has ended).
    private(set) var passes: UInt64 = 0
    private(set) var buffers: UInt64 = 0
    private(set) var cpuNs: UInt64 = 0
    private(set) var wakeups: UInt64 = 0

    init(id: Int, device: Device, vrings: [Vring]) {
        self.id = id; self.device = device; self.vrings = vrings
        wakeFd = EventNotifier.make() ?? -1
        events.reserveCapacity(4096)
    }

    deinit {
        if wakeFd >= 0 { close(wakeFd) }
        scratch.deallocate()
    }

    var w: UInt16 { UInt16(id) }

    func start() {
        let t = Thread { [self] in run() }
        t.name = "serve-worker-\(id)"
        t.start()
    }

    func wake() { if wakeFd >= 0 { _ = EventNotifier.signal(wakeFd) } }

    /// Returns once the worker is between passes and will not start another until `resume`.
    func pause() {
        cond.lock()
        pauseRequests += 1
        cond.unlock()
        wake()
        cond.lock()
        while !paused && !exited { cond.wait() }
        cond.unlock()
    }

    func resume() {
        cond.lock()
        pauseRequests -= 1
        cond.broadcast()
        cond.unlock()
        wake()
    }

    /// Ends the thread (after its current pass) and waits for it.
    func stopAndJoin() {
        cond.lock()
        stopping = true
        cond.broadcast()
        cond.unlock()
        wake()
        cond.lock()
        while !exited { cond.wait() }
        cond.unlock()
    }

    private func between() -> Bool {
        cond.lock()
        defer { cond.unlock() }
        if pauseRequests > 0 {
            paused = true
            cond.broadcast()
            while pauseRequests > 0 && !stopping { cond.wait() }
            paused = false
        }
        return !stopping
    }

    private func run() {
        var idleSince: UInt64 = 0
        let spin = UInt64(device.options.spinMicros) * 1000
        while between() {
            var worked = false
            for v in vrings where v.serving {
                if pass(v) { worked = true }
            }
            flush()
            let t = cs_now_ns()
            if worked { idleSince = 0; continue }
            if idleSince == 0 { idleSince = t }
            if t &- idleSince < spin { continue }
            // Going to sleep: ask for kicks again, then look once more (a kick sent while
            // notifications were off is not coming).
            var more = false
            for v in vrings where v.serving && enableKicks(v) { more = true }
            flush()
            if more { idleSince = 0; continue }
            sleep()
            idleSince = 0
        }
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        cpuNs = UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
        cond.lock()
        exited = true
        cond.broadcast()
        cond.unlock()
    }

    private func sleep() {
        var fds: [Int32] = [wakeFd]
        var rings: [Vring] = []
        var polling = false
        for v in vrings where v.serving {
            if v.kickFd >= 0 && !v.polling { fds.append(v.kickFd); rings.append(v) } else { polling = true }
        }
        sleeping.store(true, ordering: .sequentiallyConsistent)
        // A frame queued for one of our RX rings between the last pass and now must not wait.
        if vrings.contains(where: { !$0.isTX && $0.serving && !device.loop[$0.pair].isEmpty && $0.pendingRx > 0 }) {
            sleeping.store(false, ordering: .sequentiallyConsistent)
            return
        }
        var ready = [UInt8](repeating: 0, count: fds.count)
        let timeout = polling ? max(1, device.options.pollMicros) * 1000 : 100_000_000
        _ = cs_wait_many(fds, Int32(fds.count), timeout, &ready)
        sleeping.store(false, ordering: .sequentiallyConsistent)
        wakeups += 1
        if ready[0] != 0 { _ = EventNotifier.take(wakeFd) }
        let t = device.now
        for (k, v) in rings.enumerated() where ready[k + 1] != 0 {
            if let n = EventNotifier.take(v.kickFd), n > 0 {
                v.kicks += 1
                if device.tracing { events.append(TraceEvent(.kick, vq: UInt16(v.index), timestamp: t)) }
            }
        }
    }

    /// Descriptors one pass reads before it stops taking new chains.
    static let passBound = 65536

    private func flush() {
        if !events.isEmpty { device.log?.append(&events) }
    }

    // MARK: a pass

    /// One pass over vring `v`; whether it did anything.
    private func pass(_ v: Vring) -> Bool {
        guard let ring = v.ring else { return false }
        return v.isTX ? txPass(v, ring) : rxPass(v, ring)
    }

    private func begin(_ v: Vring, _ t: UInt64) {
        passes += 1
        if device.tracing { events.append(TraceEvent(.serviceBegin, vq: UInt16(v.index), worker: w, timestamp: t)) }
        disableKicks(v, t)
    }

    private func end(_ v: Vring, _ t: UInt64) {
        if device.tracing { events.append(TraceEvent(.serviceEnd, vq: UInt16(v.index), worker: w, timestamp: t)) }
    }

    /// Reads avail.idx and walks the new entries (at most a ring's worth), tracing what it reads:
    /// each chain's descriptors, its avail entry, then avail.idx (up to the entries walked), then the
    /// device's reads. Returns the number of entries walked and the fault that stopped the walk.
    private func fetch(_ v: Vring, _ ring: DeviceRing, avail a: UInt16, t: UInt64) -> (walked: Int, fault: ChainFault?) {
        let vq = UInt16(v.index)
        let n = Int(a &- v.lastAvail)
        chains.removeAll(keepingCapacity: true)
        segs.removeAll(keepingCapacity: true)
        if n > Int(ring.size) {
            if device.tracing { events.append(TraceEvent(.availIdx, vq: vq, timestamp: t, p0: UInt64(a))) }
            return (0, .rule(.vqInflight, "avail.idx moved from \(v.lastAvail) to \(a): \(n) buffers in flight, more than the queue size \(ring.size)"))
        }
        guard ring.heads(from: v.lastAvail, count: n, into: &heads) else { return (0, .fault("reading the avail ring faulted")) }
        let indirect = device.features & FeatureBit.indirectDesc.mask != 0
        var fault: ChainFault?
        var walked = 0, read = 0
        for (k, head) in heads.enumerated() {
            // A pass reads at most about `passBound` descriptors; the rest wait for the next pass
            // (so pausing the workers, and the trace, never wait long behind one driver).
            if read >= Self.passBound { break }
            let pos = v.lastAvail &+ UInt16(truncatingIfNeeded: k)
            let start = segs.count
            fault = walker.walk(head: head, ring: ring, memory: device.memory, indirectAllowed: indirect, vq: vq, t: t,
                                trace: device.tracing, events: &events, segments: &segs)
            if device.tracing { events.append(TraceEvent(.availEntry, vq: vq, aux: head, timestamp: t, p0: UInt64(pos))) }
            walked += 1
            read += walker.lastCount
            if fault != nil { segs.removeSubrange(start...); break }
            chains.append((pos, head, start, segs.count))
        }
        if device.tracing {
            events.append(TraceEvent(.availIdx, vq: vq, timestamp: t, p0: UInt64(v.lastAvail &+ UInt16(truncatingIfNeeded: walked))))
            for c in chains { events.append(TraceEvent(.availRead, vq: vq, worker: w, aux: c.head, timestamp: t, p0: UInt64(c.pos))) }
        }
        v.lastAvail = v.lastAvail &+ UInt16(truncatingIfNeeded: chains.count)
        return (walked, fault)
    }

    // MARK: TX: the driver's frames leave

    private func txPass(_ v: Vring, _ ring: DeviceRing) -> Bool {
        guard let a = ring.availIdx() else { refuse(v, .fault("reading avail.idx faulted"), t: device.now); return true }
        guard a != v.lastAvail else { return false }
        let t = device.now
        let vq = UInt16(v.index)
        begin(v, t)
        var (_, fault) = fetch(v, ring, avail: a, t: t)
        let queue = device.options.data == .loopback && !chains.isEmpty ? device.loopTarget(of: v) : nil
        if !chains.isEmpty {
            traceNotificationState(v, ring, t)
            let hdr = NetHeader.length(features: device.features)
            var written = 0
            for (k, c) in chains.enumerated() {
                let pos = v.lastUsed &+ UInt16(truncatingIfNeeded: k)
                transmit(segs[c.start..<c.end], header: hdr, to: queue, v)
                guard ring.writeUsed(pos: pos, id: UInt32(c.head), len: 0) else { fault = .fault("writing the used ring faulted"); break }
                if device.tracing { events.append(TraceEvent(.usedEntry, vq: vq, worker: w, timestamp: t, p0: UInt64(pos), p1: UInt64(c.head))) }
                written += 1
            }
            if written > 0 { publish(v, ring, count: written, t: t) }
        }
        if let fault { refuse(v, fault, t: t) }
        end(v, t)
        // The frames reach RX[k] only once this pass's events are in the log (the trace's order).
        if let queue {
            flush()
            if queue.publish() > 0 { device.frameQueued(for: v.pair, queue: queue) }
        }
        return true
    }

    /// Copies the frame out of the chain (past the virtio-net header) into the loopback queue, or
    /// into scratch memory when it is dropped (sink, or no room): the device reads every byte.
    private func transmit(_ chain: ArraySlice<Segment>, header: Int, to queue: PacketQueue?, _ v: Vring) {
        var total = 0
        for s in chain where !s.write { total += s.range.count }
        let frame = max(0, total - header)
        v.packets += 1
        v.bytes += UInt64(frame)
        var dest: UnsafeMutableRawBufferPointer
        var queued = false
        if let queue, frame <= PacketQueue.slotBytes, let slot = queue.reserve() {
            dest = slot
            queued = true
        } else {
            dest = scratch
            // Loopback drops what RX[k] cannot take (no room, or RX[k] stopped or disabled); sink drops by design.
            if device.options.data == .loopback { v.drops += 1 }
        }
        var skip = header
        var at = 0
        for s in chain where !s.write {
            var off = 0
            if skip > 0 {
                let k = min(skip, s.range.count)
                skip -= k; off = k
            }
            var left = s.range.count - off
            while left > 0 {
                let room = dest.count - at
                let k = min(left, room)
                _ = s.range.read(at: off, into: UnsafeMutableRawBufferPointer(rebasing: dest[at..<(at + k)]))
                off += k; left -= k; at += k
                if at == dest.count { at = 0 } // scratch only: a frame larger than it wraps over itself
            }
        }
        if queued, let queue { queue.commit(length: frame) }
    }

    // MARK: RX: frames arrive for the driver

    private func rxPass(_ v: Vring, _ ring: DeviceRing) -> Bool {
        let queue = device.loop[v.pair]
        guard v.enabled(features: device.features) else {
            // A disabled ring supplies no RX (vhost-user "Ring states"): what was meant for it is dropped.
            let n = queue.drain()
            v.drops += UInt64(n)
            return n > 0
        }
        guard !queue.isEmpty else { return false }
        guard let a = ring.availIdx() else { refuse(v, .fault("reading avail.idx faulted"), t: device.now); return true }
        if a == v.lastAvail && v.pendingRx == 0 { return false }
        let t = device.now
        let vq = UInt16(v.index)
        begin(v, t)
        var fault: ChainFault?
        if a != v.lastAvail {
            let r = fetch(v, ring, avail: a, t: t)
            fault = r.fault
            for c in chains {
                let s = Array(segs[c.start..<c.end])
                v.prefetched.append(RxChain(pos: c.pos, head: c.head, segments: s, writable: s.reduce(0) { $0 + ($1.write ? $1.range.count : 0) }))
            }
        }
        let hdr = NetHeader.length(features: device.features)
        let mergeable = device.features & FeatureBit.netMrgRxbuf.mask != 0
        var used = 0
        traceNotificationState(v, ring, t)
        while let frame = queue.peek(), v.pendingRx > 0 {
            let need = hdr + frame.count
            var take = 0, room = 0
            if mergeable {
                while room < need && v.prefetchHead + take < v.prefetched.count { room += v.prefetched[v.prefetchHead + take].writable; take += 1 }
                if room < need { break } // wait for more buffers
            } else {
                take = 1
                if v.prefetched[v.prefetchHead].writable < need { queue.pop(); v.drops += 1; continue }
            }
            // Header (num_buffers = chains used), then the frame, across the chains in order.
            var h = [UInt8](repeating: 0, count: hdr)
            if hdr >= NetHeader.numBuffersOffset + 2 { h[NetHeader.numBuffersOffset] = UInt8(take & 0xff); h[NetHeader.numBuffersOffset + 1] = UInt8(take >> 8) }
            var writer = Scatter(chains: v.prefetched, from: v.prefetchHead, count: take)
            let ok = h.withUnsafeBytes { writer.write($0) } && writer.write(frame)
            if !ok { fault = .fault("writing a receive buffer faulted"); break }
            for k in 0..<take {
                let c = v.prefetched[v.prefetchHead + k]
                let pos = v.lastUsed &+ UInt16(truncatingIfNeeded: used)
                let len = UInt32(writer.written[k])
                guard ring.writeUsed(pos: pos, id: UInt32(c.head), len: len) else { fault = .fault("writing the used ring faulted"); break }
                if device.tracing { events.append(TraceEvent(.usedEntry, vq: vq, worker: w, timestamp: t, p0: UInt64(pos), p1: UInt64(c.head), p2: UInt64(len))) }
                used += 1
            }
            v.prefetchHead += take
            v.packets += 1
            v.bytes += UInt64(frame.count)
            queue.pop()
            if fault != nil { break }
        }
        if v.prefetchHead > 0 && v.prefetchHead == v.prefetched.count { v.prefetched.removeAll(keepingCapacity: true); v.prefetchHead = 0 }
        else if v.prefetchHead > 256 { v.prefetched.removeFirst(v.prefetchHead); v.prefetchHead = 0 }
        if used > 0 { publish(v, ring, count: used, t: t) }
        if let fault { refuse(v, fault, t: t) }
        end(v, t)
        return true
    }

    // MARK: used ring and notifications

    /// Publishes `count` used elements written from lastUsed on, then interrupts if the driver asked.
    private func publish(_ v: Vring, _ ring: DeviceRing, count: Int, t: UInt64) {
        let old = v.lastUsed
        let new = old &+ UInt16(truncatingIfNeeded: count)
        guard ring.publishUsed(new) else { refuse(v, .fault("writing used.idx faulted"), t: t); return }
        v.lastUsed = new
        v.buffers += UInt64(count)
        buffers += UInt64(count)
        if device.tracing { events.append(TraceEvent(.usedIdx, vq: UInt16(v.index), worker: w, timestamp: t, p0: UInt64(new))) }
        fullFence()
        let need: Bool
        if device.eventIdx {
            guard let e = ring.usedEvent() else { refuse(v, .fault("reading used_event faulted"), t: t); return }
            traceDriverWord(v, .usedEvent, e, &v.tracedUsedEvent, t)
            need = SplitRing.needEvent(event: e, new: new, old: old)
        } else {
            guard let f = ring.availFlags() else { refuse(v, .fault("reading avail.flags faulted"), t: t); return }
            traceDriverWord(v, .availFlags, f, &v.tracedAvailFlags, t)
            need = f & SplitRing.availFlagNoInterrupt == 0
        }
        guard need, v.callFd >= 0 else { return }
        switch EventNotifier.signal(v.callFd) {
        case .signalled, .full:
            // Full: the driver has not read the last one yet; it is notified either way.
            v.interrupts += 1
            if device.tracing { events.append(TraceEvent(.interrupt, vq: UInt16(v.index), worker: w, timestamp: t)) }
        case .failed:
            device.note("vq \(v.index): the call fd cannot be signalled")
        }
    }

    /// What the driver asked about interrupts, read before the pass publishes anything: the checker
    /// then judges the interrupt decision against a value the driver had written by then.
    private func traceNotificationState(_ v: Vring, _ ring: DeviceRing, _ t: UInt64) {
        guard device.tracing else { return }
        if device.eventIdx {
            if let e = ring.usedEvent() { traceDriverWord(v, .usedEvent, e, &v.tracedUsedEvent, t) }
        } else if let f = ring.availFlags() {
            traceDriverWord(v, .availFlags, f, &v.tracedAvailFlags, t)
        }
    }

    /// A driver-written word as the device read it, traced when it differs from the last one traced.
    private func traceDriverWord(_ v: Vring, _ kind: EventKind, _ value: UInt16, _ last: inout Int32, _ t: UInt64) {
        guard device.tracing, Int32(value) != last else { return }
        last = Int32(value)
        events.append(TraceEvent(kind, vq: UInt16(v.index), timestamp: t, p0: UInt64(value)))
    }

    /// While the worker polls the ring it needs no kicks (used.flags NO_NOTIFY; with EVENT_IDX an
    /// avail_event left behind asks for none).
    private func disableKicks(_ v: Vring, _ t: UInt64) {
        guard !device.eventIdx, !v.noNotify, let ring = v.ring else { return }
        v.noNotify = true
        if ring.setUsedFlags(SplitRing.usedFlagNoNotify), device.tracing, v.tracedUsedFlags != 1 {
            v.tracedUsedFlags = 1
            events.append(TraceEvent(.usedFlags, vq: UInt16(v.index), worker: w, timestamp: t, p0: 1))
        }
    }

    /// Before sleeping: asks for a kick at the next entry; whether entries arrived meanwhile.
    private func enableKicks(_ v: Vring) -> Bool {
        guard let ring = v.ring else { return false }
        let t = device.now
        if device.eventIdx {
            _ = ring.setAvailEvent(v.lastAvail)
            if device.tracing, v.tracedAvailEvent != Int32(v.lastAvail) {
                v.tracedAvailEvent = Int32(v.lastAvail)
                events.append(TraceEvent(.availEvent, vq: UInt16(v.index), worker: w, timestamp: t, p0: UInt64(v.lastAvail)))
            }
        } else if v.noNotify {
            v.noNotify = false
            _ = ring.setUsedFlags(0)
            if device.tracing, v.tracedUsedFlags != 0 {
                v.tracedUsedFlags = 0
                events.append(TraceEvent(.usedFlags, vq: UInt16(v.index), worker: w, timestamp: t, p0: 0))
            }
        }
        fullFence()
        guard let a = ring.availIdx() else { return false }
        if v.isTX { return a != v.lastAvail }
        // RX: new buffers matter only to frames waiting for them.
        return (a != v.lastAvail || v.pendingRx > 0) && !device.loop[v.pair].isEmpty
    }

    /// The device stops using the ring (the spec lets a device do so on bad driver input): says
    /// why, signals the ring's error fd, and ends the ring's observation in the trace.
    private func refuse(_ v: Vring, _ fault: ChainFault, t: UInt64) {
        guard v.refused == nil else { return }
        v.refused = fault.message
        device.ringRefused(v, fault)
        if v.errFd >= 0 { _ = EventNotifier.signal(v.errFd) }
        // A bug a rule names is the checker's to report; anything else ends the ring's observation
        // (what the driver does on it from now on is not seen), so the trace is not conformant.
        let reason: RingGapReason?
        switch fault {
        case .unmapped: reason = .unmapped
        case .fault: reason = .memoryFault
        case .bound: reason = .workBound
        case .rule: reason = nil
        }
        if device.tracing, let reason {
            events.append(TraceEvent(.ringGap, vq: UInt16(v.index), timestamp: t, p0: UInt64(reason.rawValue)))
        }
    }
}

/// Writes bytes across the writable segments of consecutive RX chains, counting per chain.
struct Scatter {
    let chains: [RxChain]
    let from: Int
    let count: Int
    var chain = 0, segment = 0, offset = 0
    var written: [Int]

    init(chains: [RxChain], from: Int, count: Int) {
        self.chains = chains; self.from = from; self.count = count
        written = Array(repeating: 0, count: count)
    }

    mutating func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var at = 0
        while at < bytes.count {
            guard chain < count else { return false }
            let segs = chains[from + chain].segments
            guard segment < segs.count else { chain += 1; segment = 0; offset = 0; continue }
            let s = segs[segment]
            guard s.write, offset < s.range.count else { segment += 1; offset = 0; continue }
            let k = min(bytes.count - at, s.range.count - offset)
            guard s.range.write(UnsafeRawBufferPointer(rebasing: bytes[at..<(at + k)]), at: offset) else { return false }
            at += k; offset += k; written[chain] += k
        }
        return true
    }
}
