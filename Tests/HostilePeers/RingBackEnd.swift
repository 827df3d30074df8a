import CSupport
import Foundation
import Glibc
import VhostUser
import VirtioProtocol

/// A small vhost-user net back-end that really processes split rings (TX consumed, each packet
/// looped back to the RX ring of its pair, as testpmd's io forwarding does), built on VhostUser.
/// Conformant by default, following vhost-user.rst "Ring states" to the letter (a ring starts on
/// its first kick; a disabled TX ring is still drained); every `Fault` switch breaks one rule or
/// check on purpose, so that `drive`'s tests can show each scenario catches the back-end that
/// breaks what it exercises.
///
/// Hostile chains (a descriptor index out of range, a loop, a nested or malformed indirect table,
/// an address outside the memory table, avail.idx moving by more than the ring holds) stop the
/// ring, as the spec lets a device do (DEVICE_NEEDS_RESET); nothing more is processed on it.
public final class RingBackEnd: @unchecked Sendable {
    public enum Fault: String, Sendable, CaseIterable {
        /// Completes TX chains naming the next descriptor instead of the head (VQ-USED-ID).
        case wrongUsedID
        /// RX used len 64 bytes beyond what was written and beyond the buffer (VQ-USED-LEN).
        case usedLenTooLong
        /// Never signals a call eventfd (VQ-INTERRUPT-MISSED).
        case noInterrupts
        /// Writes a byte into every TX (device-readable) buffer it consumes (DRIVE-WRITES).
        case writesReadableBuffers
        /// Processes rings before their first kick (DRIVE-STARTS-ON-KICK).
        case ignoresKick
        /// Leaves num_buffers as it was in the receive buffer (DRIVE-NUM-BUFFERS).
        case numBuffersUnset
        /// With MRG_RXBUF, num_buffers one more than the buffers the packet uses (NET-RX-NUM-BUFFERS).
        case numBuffersOneTooMany
        /// Keeps processing a ring after GET_VRING_BASE (VHOST-RING-STOPPED).
        case processesStoppedRing
        /// GET_VRING_BASE answers 1000 past the index it stopped at (DRIVE-VRING-BASE).
        case bogusVringBase
        /// A disabled TX ring is not processed (DRIVE-DISABLED-TX: WEDGED).
        case ignoresDisabledTX
        /// Delivers packets to a disabled RX ring (NET-RXQ-INACTIVE).
        case receivesOnDisabledRX
        /// Reads one entry past avail.idx each time it catches up (VQ-USED-ID: the decoy).
        case consumesPastAvail
        /// On hostile ring input or a malformed message: closes and stops listening (CRASHED).
        case diesOnHostileInput
        /// On hostile ring input or a malformed message: stops reading its socket and all rings (WEDGED).
        case hangsOnHostileInput
        /// Follows a chain whatever it holds and writes 16 bytes at every descriptor's address
        /// (DRIVE-WRITES on the hostile scenarios that point outside buffers).
        case followsAnyChain
    }

    public let path: String
    public var faults: Set<Fault>
    public var features: UInt64 = FeatureBit.version1.mask | FeatureBit.protocolFeatures.mask | FeatureBit.indirectDesc.mask
        | FeatureBit.eventIdx.mask | FeatureBit.netMQ.mask | FeatureBit.netMrgRxbuf.mask | FeatureBit.inOrder.mask
    public var protocolFeatures: UInt64 = ProtocolFeatureBit.mq.mask | ProtocolFeatureBit.replyAck.mask
    public var maxPairs = 8
    public var maxQueueSize = 32768
    private var listener: Listener?
    private let lock = NSLock()
    private var stopFlag = false
    private var gone = false
    private let done = DispatchGroup()
    /// Hostile inputs it noticed (for tests to show what it refused).
    public private(set) var refusals: [String] = []

    public init(path: String, faults: Set<Fault> = []) throws {
        self.path = path; self.faults = faults
        listener = try Listener(path: path)
        done.enter()
        Thread.detachNewThread { [self] in acceptLoop(); done.leave() }
    }

    public func stop() {
        lock.withLock { stopFlag = true }
        // The socket goes with the listener, now: a later back-end may listen at the same path.
        if done.wait(timeout: .now() + 5) == .success { listener = nil }
    }

    private var stopping: Bool { lock.withLock { stopFlag || gone } }

    private func acceptLoop() {
        while !stopping {
            guard let l = listener, let ch = try? l.accept(within: .within(0.05)) else { continue }
            // One connection at a time, as testpmd's vhost PMD serves a socket.
            Session(owner: self, channel: ch).serve()
            ch.close()
        }
    }

    fileprivate func noteRefusal(_ s: String) { lock.withLock { if refusals.count < 64 { refusals.append(s) } } }
    /// The back-end is gone: its socket closes (called on the accept thread, which serves sessions).
    fileprivate func die() { lock.withLock { gone = true }; listener = nil }
    fileprivate var isGone: Bool { lock.withLock { gone } }
    fileprivate var isStopping: Bool { stopping }
}

/// One ring as the back-end runs it.
private final class BackRing {
    var num = 0
    var desc: GuestRange?, avail: GuestRange?, used: GuestRange?
    var lastAvail: UInt16 = 0
    var usedIdx: UInt16 = 0
    var kick: Int32 = -1, call: Int32 = -1
    var enabled = false
    var kicked = false
    var stopped = false
    /// Hostile input seen: nothing more is processed.
    var broken = false
    /// consumesPastAvail: the avail.idx it last read past.
    var pastAt: UInt16?
    deinit { if kick >= 0 { close(kick) }; if call >= 0 { close(call) } }
    var ready: Bool { desc != nil && avail != nil && used != nil && num > 0 && !stopped }
}

private struct Buf { var addr: UInt64; var len: UInt32; var write: Bool }

private final class Session {
    let owner: RingBackEnd
    let ch: Channel
    var features: UInt64 = 0
    var protocolFeatures: UInt64 = 0
    let mem = MemoryTable(writable: true)
    var rings: [Int: BackRing] = [:]
    /// Packets waiting for each RX ring (looped back from the TX ring of the pair).
    var pending: [Int: [[UInt8]]] = [:]
    var hung = false

    init(owner: RingBackEnd, channel: Channel) { self.owner = owner; ch = channel }

    func has(_ f: RingBackEnd.Fault) -> Bool { owner.faults.contains(f) }
    var eventIdx: Bool { features & FeatureBit.eventIdx.mask != 0 }
    var mrg: Bool { features & FeatureBit.netMrgRxbuf.mask != 0 }

    func ring(_ i: Int) -> BackRing {
        if let r = rings[i] { return r }
        let r = BackRing(); rings[i] = r; return r
    }

    /// Hostile input: refuse it (stop the ring) or, with a fault, die or hang.
    func hostile(_ what: String, ring r: BackRing?) -> Bool {
        owner.noteRefusal(what)
        if has(.diesOnHostileInput) { owner.die(); return false }
        if has(.hangsOnHostileInput) { hung = true; return false }
        r?.broken = true
        return true
    }

    func serve() {
        while !owner.isStopping && !owner.isGone {
            if hung { usleep(2000); continue }
            if ch.readable(timeoutNs: 200_000) {
                do {
                    let m = try ch.receive(within: .within(1))
                    if !handle(m) { return }
                } catch {
                    if case .malformed = error, !hostile("malformed message: \(error)", ring: nil) { return }
                    if case .malformed = error { continue }
                    return
                }
            }
            for (i, r) in rings.sorted(by: { $0.key < $1.key }) { process(i, r) }
        }
    }

    func reply(_ m: Message) { try? ch.send(m, within: .within(1)) }
    func ack(_ m: Message, _ ok: Bool) {
        if m.needsReply && protocolFeatures & ProtocolFeatureBit.replyAck.mask != 0 { reply(.ack(m, success: ok)) }
    }

    /// Returns false to end the session.
    func handle(_ m: Message) -> Bool {
        let queues = 2 * owner.maxPairs
        func vringIndex(_ i: Int) -> Bool {
            if i < queues { return true }
            m.closeFds()
            if hostile("\(m.name) for vring \(i), beyond the \(queues) it has", ring: nil) { ack(m, false) }
            return false
        }
        switch m.request {
        case .getFeatures?: reply(.reply(to: m, payload: U64Payload(owner.features)))
        case .setFeatures?:
            let f = m.decode(U64Payload.self)?.value ?? 0
            let ok = f & ~owner.features == 0
            if ok { features = f }
            ack(m, ok)
        case .getProtocolFeatures?: reply(.reply(to: m, payload: U64Payload(owner.protocolFeatures)))
        case .setProtocolFeatures?: protocolFeatures = (m.decode(U64Payload.self)?.value ?? 0) & owner.protocolFeatures
        case .getQueueNum?: reply(.reply(to: m, payload: U64Payload(UInt64(owner.maxPairs))))
        case .setOwner?: ack(m, true)
        case .resetOwner?: rings = [:]; ack(m, true)
        case .setMemTable?:
            guard let t = m.decode(MemoryTablePayload.self) else {
                m.closeFds()
                if !hostile("SET_MEM_TABLE with a malformed payload", ring: nil) { return false }
                ack(m, false); return true
            }
            defer { m.closeFds() }
            do { try mem.replace(with: t.regions, fds: m.fds); ack(m, true) } catch {
                if !hostile("SET_MEM_TABLE refused: \(error)", ring: nil) { return false }
                ack(m, false)
            }
        case .setVringNum?:
            guard let s = m.decode(VringState.self) else { ack(m, false); return true }
            let n = Int(s.num)
            guard vringIndex(Int(s.index)) else { return !owner.isGone }
            let ok = n > 0 && n <= owner.maxQueueSize && n & (n - 1) == 0
            if ok { ring(Int(s.index)).num = n }
            ack(m, ok)
        case .setVringBase?:
            guard let s = m.decode(VringState.self), vringIndex(Int(s.index)) else { return !owner.isGone }
            let r = ring(Int(s.index))
            r.lastAvail = UInt16(truncatingIfNeeded: s.num); r.usedIdx = r.lastAvail
            ack(m, true)
        case .setVringAddr?:
            guard let a = m.decode(VringAddress.self), vringIndex(Int(a.index)) else { return !owner.isGone }
            let r = ring(Int(a.index))
            let n = UInt64(max(r.num, 1))
            r.desc = mem.user(a.desc, length: 16 * n)
            r.avail = mem.user(a.avail, length: 6 + 2 * n)
            r.used = mem.user(a.used, length: 6 + 8 * n)
            ack(m, r.desc != nil && r.avail != nil && r.used != nil)
        case .setVringKick?, .setVringCall?:
            guard let f = m.decode(VringFile.self) else { m.closeFds(); ack(m, false); return true }
            guard vringIndex(Int(f.index)) else { return !owner.isGone }
            let r = ring(Int(f.index))
            let fd = m.fds.first ?? -1
            for extra in m.fds.dropFirst() { close(extra) }
            if m.request == .setVringKick {
                if r.kick >= 0 { close(r.kick) }
                r.kick = fd; r.kicked = false; r.stopped = false
                // Without PROTOCOL_FEATURES a ring is enabled as soon as it starts.
                if features & FeatureBit.protocolFeatures.mask == 0 { r.enabled = true }
            } else {
                if r.call >= 0 { close(r.call) }
                r.call = fd
            }
            ack(m, true)
        case .setVringEnable?:
            guard let s = m.decode(VringState.self), vringIndex(Int(s.index)) else { return !owner.isGone }
            ring(Int(s.index)).enabled = s.num != 0
            ack(m, true)
        case .getVringBase?:
            guard let s = m.decode(VringState.self), vringIndex(Int(s.index)) else { return !owner.isGone }
            let r = ring(Int(s.index))
            process(Int(s.index), r)
            if !has(.processesStoppedRing) { r.stopped = true }
            r.kicked = false
            let base = has(.bogusVringBase) ? r.lastAvail &+ 1000 : r.lastAvail
            reply(.reply(to: m, payload: VringState(index: s.index, num: UInt32(base))))
        case nil:
            m.closeFds()
            if !hostile("unknown request \(m.header.request)", ring: nil) { return false }
            ack(m, false)
        default:
            m.closeFds()
            ack(m, false)
        }
        return !owner.isGone
    }

    // MARK: rings

    func signal(_ r: BackRing, old: UInt16) {
        guard !has(.noInterrupts), r.call >= 0, let a = r.avail else { return }
        let owed: Bool
        if eventIdx {
            let ev = a.load(UInt16.self, at: 4 + 2 * r.num) ?? 0
            owed = SplitRing.needEvent(event: ev, new: r.usedIdx, old: old)
        } else {
            owed = (a.load(UInt16.self, at: 0) ?? 0) & SplitRing.availFlagNoInterrupt == 0
        }
        if owed { _ = EventNotifier.signal(r.call) }
    }

    func process(_ i: Int, _ r: BackRing) {
        guard r.ready, !r.broken, let avail = r.avail, let used = r.used else { return }
        if !r.kicked {
            if r.kick >= 0, let c = EventNotifier.take(r.kick), c > 0 { r.kicked = true }
            if !r.kicked && !has(.ignoresKick) { return }
        } else if r.kick >= 0 { _ = EventNotifier.take(r.kick) }
        let isTX = i % 2 == 1
        if isTX && !r.enabled && has(.ignoresDisabledTX) { return }
        if !isTX && !r.enabled && !has(.receivesOnDisabledRX) { return }
        guard let availIdx = avail.load16Acquire(at: 2) else { return }
        var limit = availIdx
        if SplitRing.distance(from: r.lastAvail, to: availIdx) > UInt16(r.num) {
            _ = hostile("vring \(i): avail.idx moved from \(r.lastAvail) to \(availIdx), more than the \(r.num) entries of the ring", ring: r)
            return
        }
        if isTX && has(.consumesPastAvail) && r.lastAvail == availIdx && r.pastAt != availIdx && availIdx != 0 {
            // Caught up: a back-end that does not compare with avail.idx reads the next slot anyway.
            r.pastAt = availIdx
            limit = availIdx &+ 1
        }
        let old = r.usedIdx
        while r.lastAvail != limit {
            if isTX == false && (pending[i]?.isEmpty ?? true) { break }
            let head = avail.load(UInt16.self, at: 4 + 2 * (Int(r.lastAvail) % r.num)) ?? 0
            guard let bufs = walk(i, r, head: head) else { return }
            if isTX {
                var pkt: [UInt8] = []
                for b in bufs where !b.write {
                    if let g = mem.guest(b.addr, length: UInt64(b.len)), let bytes = g.bytes(at: 0, count: Int(b.len)) { pkt += bytes }
                    if has(.writesReadableBuffers), let g = mem.guest(b.addr, length: 1) { _ = g.store(UInt8(0xEE), at: 0) }
                }
                if pkt.count > 12, r.enabled { pending[i - 1, default: []].append(Array(pkt.dropFirst(12))) }
                if (pending[i - 1]?.count ?? 0) > 1024 { pending[i - 1]?.removeFirst() }
                var id = UInt32(head)
                if has(.wrongUsedID) { id = UInt32((Int(head) + 1) % r.num) }
                putUsed(r, used, id: id, len: 0)
            } else {
                guard let (_, n) = receive(i, r, first: head, bufs: bufs, frame: pending[i]![0], used: used, avail: avail, limit: limit) else { return }
                if n == 0 { break }   // MRG_RXBUF: not enough buffers for the packet yet
                pending[i]!.removeFirst()
            }
        }
        if r.usedIdx != old {
            _ = used.store16Release(r.usedIdx, at: 2)
            signal(r, old: old)
        }
    }

    func putUsed(_ r: BackRing, _ used: GuestRange, id: UInt32, len: UInt32) {
        let slot = Int(r.usedIdx) % r.num
        _ = used.store(id, at: 4 + 8 * slot)
        _ = used.store(len, at: 8 + 8 * slot)
        r.usedIdx &+= 1
        r.lastAvail &+= 1
    }

    /// Writes `frame` (after a 12-byte header) into the chain at `first`, and with MRG_RXBUF into as
    /// many further chains as it needs. Returns (first buffer's used len, buffers used).
    func receive(_ i: Int, _ r: BackRing, first: UInt16, bufs firstBufs: [Buf], frame: [UInt8], used: GuestRange, avail: GuestRange, limit: UInt16) -> (UInt32, Int)? {
        var data = [UInt8](repeating: 0, count: 12) + frame
        var chains: [(UInt16, [Buf])] = [(first, firstBufs)]
        var capacity = firstBufs.filter(\.write).reduce(0) { $0 + Int($1.len) }
        if mrg {
            var pos = r.lastAvail &+ 1
            while capacity < data.count && pos != limit {
                let h = avail.load(UInt16.self, at: 4 + 2 * (Int(pos) % r.num)) ?? 0
                guard let b = walk(i, r, head: h) else { return nil }
                chains.append((h, b)); capacity += b.filter(\.write).reduce(0) { $0 + Int($1.len) }
                pos &+= 1
            }
            if capacity < data.count { return (0, 0) }   // wait for more buffers
        }
        if !has(.numBuffersUnset) {
            let n = (mrg ? UInt16(chains.count) : 1) &+ (has(.numBuffersOneTooMany) ? 1 : 0)
            data[10] = UInt8(n & 0xFF); data[11] = UInt8(n >> 8)
        }
        var off = 0
        var firstLen: UInt32 = 0
        for (k, (h, bs)) in chains.enumerated() {
            var written = 0
            for b in bs where b.write && off < data.count {
                var n = min(Int(b.len), data.count - off)
                // Without the fault, num_buffers is written with the header; with it, the two bytes stay.
                if has(.numBuffersUnset) && off == 0 && n >= 12, let g = mem.guest(b.addr, length: UInt64(n)) {
                    data.withUnsafeBytes { p in
                        _ = g.write(UnsafeRawBufferPointer(rebasing: p[0..<10]), at: 0)
                        if n > 12 { _ = g.write(UnsafeRawBufferPointer(rebasing: p[12..<n]), at: 12) }
                    }
                } else if let g = mem.guest(b.addr, length: UInt64(n)) {
                    data.withUnsafeBytes { p in _ = g.write(UnsafeRawBufferPointer(rebasing: p[off..<off + n]), at: 0) }
                } else { n = 0 }
                off += n; written += n
            }
            var l = UInt32(written)
            if has(.usedLenTooLong) { l = UInt32(bs.filter(\.write).reduce(0) { $0 + Int($1.len) } + 64) }
            if k == 0 { firstLen = l }
            putUsed(r, used, id: UInt32(h), len: l)
        }
        return (firstLen, chains.count)
    }

    /// The buffers of the chain at `head`, validated; nil (the ring stopped) for hostile chains.
    func walk(_ i: Int, _ r: BackRing, head: UInt16) -> [Buf]? {
        guard let desc = r.desc else { return nil }
        let follow = has(.followsAnyChain)
        func bad(_ s: String) -> [Buf]? {
            if follow {
                // Treats the head's buffer as writable whatever it is, and completes the chain.
                let addr = desc.load(UInt64.self, at: 16 * (Int(head) % r.num)) ?? 0
                if let g = mem.guest(addr, length: 16) { _ = g.store(UInt64(0xEEEE_EEEE_EEEE_EEEE), at: 0); _ = g.store(UInt64(0xEEEE_EEEE_EEEE_EEEE), at: 8) }
                return []
            }
            _ = hostile("vring \(i): \(s)", ring: r)
            return nil
        }
        guard Int(head) < r.num else { return bad("head \(head) beyond the ring's \(r.num) descriptors") }
        var out: [Buf] = []
        var idx = Int(head)
        var table = desc
        var tableSize = r.num
        var inIndirect = false
        var steps = 0
        while true {
            steps += 1
            if steps > tableSize { return bad("chain at head \(head) longer than its table (a loop)") }
            let o = 16 * idx
            let addr = table.load(UInt64.self, at: o) ?? 0, len = table.load(UInt32.self, at: o + 8) ?? 0
            let flags = SplitRing.DescFlags(rawValue: table.load(UInt16.self, at: o + 12) ?? 0)
            let next = Int(table.load(UInt16.self, at: o + 14) ?? 0)
            if flags.contains(.indirect) {
                if inIndirect { return bad("nested indirect table at head \(head)") }
                if flags.contains(.next) { return bad("descriptor \(idx) has both INDIRECT and NEXT") }
                if len == 0 || len % 16 != 0 { return bad("indirect table of \(len) bytes, not a multiple of 16") }
                guard let t = mem.guest(addr, length: UInt64(len)) else { return bad("indirect table at 0x\(String(addr, radix: 16)) outside the memory table") }
                table = t; tableSize = Int(len / 16); idx = 0; inIndirect = true; steps = 0
                continue
            }
            if mem.guest(addr, length: UInt64(len)) == nil && len > 0 {
                return bad("buffer at guest 0x\(String(addr, radix: 16)) (\(len) bytes) outside the memory table")
            }
            out.append(Buf(addr: addr, len: len, write: flags.contains(.write)))
            guard flags.contains(.next) else { return out }
            guard next < tableSize else { return bad("next \(next) beyond the table's \(tableSize) descriptors") }
            idx = next
        }
    }
}
