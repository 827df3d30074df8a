import Glibc
import TraceFormat
import VhostUser
import VirtioProtocol

/// `record --interpose`, per session: the relay's memory region, the shadow ring of every vring
/// the front-end set up, the relays of started rings and their notifiers. The recorder's loop owns
/// it: messages are rewritten here before they are forwarded (`rewriteRequest`, `rewriteReply`),
/// and every pass of the loop runs `step` on each relayed ring, so the memory map never changes
/// under a relay pass.
final class Interposer {
    let vrings: Int
    let log: (String) -> Void
    private(set) var region: ShadowRegion?
    private var shadows: [UInt16: ShadowRing] = [:]
    private(set) var relays: [UInt16: any VringRelay] = [:]
    private var notifiers: [UInt16: RelayNotifiers] = [:]
    /// Why a vring could not be given a shadow ring (its SET_VRING_ADDR went through unchanged).
    private var unshadowed: [UInt16: String] = [:]
    /// Where each stopped ring's shadow avail.idx stood, with the configuration it ran with: a ring
    /// started again on the same memory from a base inside what was published resumes there (the
    /// shadow still holds those entries, and the trace has them already).
    private var stoppedAt: [UInt16: (config: RingConfig, published: UInt16)] = [:]
    /// Packed: each stopped ring's relay (its positions and buffers in flight), resumed when the
    /// ring starts again on the same memory from a base between its used and avail positions.
    private var stoppedPacked: [UInt16: PackedRingRelay] = [:]
    /// Rings that stopped relaying, with the reason and how often.
    private(set) var problems: [UInt16: [(reason: RingGapReason, detail: String, count: Int)]] = [:]
    var gapLogged: (UInt16, String) -> Void = { _, _ in }

    init(vrings: Int, log: @escaping (String) -> Void) { self.vrings = vrings; self.log = log }

    var relayedCount: Int { relays.count }
    var buffersUsed: UInt64 { relays.values.reduce(0) { $0 + $1.buffersUsed } }
    func isRelaying(_ vq: UInt16) -> Bool { relays[vq] != nil }

    /// The fds whose readiness should end the loop's wait: kicks and calls of relayed rings.
    var waitFds: [Int32] {
        relays.keys.sorted().flatMap { vq -> [Int32] in
            let n = notifiers[vq] ?? RelayNotifiers()
            return [n.frontKick, n.backCall].filter { $0 >= 0 }
        }
    }

    // MARK: messages

    enum Rewrite { case forward(Message), fail(String) }

    /// The message the back-end receives instead of `m` (fds of `m` are closed by the caller after
    /// sending; fds added here stay the interposer's).
    func rewriteRequest(_ m: Message, rings: RingTable, memory: MemoryTable, queueCount: Int, features: UInt64) -> Rewrite {
        let format: RingFormat = features & FeatureBit.ringPacked.mask != 0 ? .packed : .split
        switch m.request {
        case .setMemTable?:
            guard let table = m.decode(MemoryTablePayload.self), table.regions.count == m.fds.count else { return .forward(m) }
            guard table.regions.count < VhostUser.maxMemRegions else {
                return .fail("the front-end's memory table has \(table.regions.count) regions: no slot is left for the relay's (--interpose needs one of the \(VhostUser.maxMemRegions))")
            }
            if region == nil {
                let (r, why) = ShadowRegion.make(vrings: vrings, above: table.regions)
                guard let r else { return .fail(why ?? "cannot make the relay's region") }
                region = r
                log("record: --interpose: shadow rings at guest 0x\(String(r.guestAddr, radix: 16)), user 0x\(String(r.userAddr, radix: 16)) (\(r.size >> 20) MiB memfd)")
            }
            if let r = region, let d = table.regions.first(where: { r.overlaps($0) }) {
                return .fail("the front-end's memory now covers the relay's region (guest 0x\(String(d.guestAddr, radix: 16)), size 0x\(String(d.size, radix: 16)))")
            }
            var out = m
            out.payload = MemoryTablePayload(regions: table.regions + [region!.description]).encode()
            out.header.size = UInt32(out.payload.count)
            out.fds = m.fds + [region!.fd]
            return .forward(out)
        case .setVringAddr?:
            guard let a = m.decode(VringAddress.self), a.index < UInt32(queueCount) else { return .forward(m) }
            let vq = UInt16(a.index)
            guard let cfg = rings.config(vq), let r = region, let shadow = r.ring(vq: vq, size: cfg.size, format: format) else {
                unshadowed[vq] = region == nil ? "SET_VRING_ADDR came before SET_MEM_TABLE"
                    : Int(vq) >= region!.vrings ? "the relay's region has room for vrings 0-\(region!.vrings - 1) only"
                    : "no valid \(format) size (SET_VRING_NUM) before SET_VRING_ADDR"
                return .forward(m)
            }
            unshadowed[vq] = nil
            shadows[vq] = shadow
            if format == .packed {
                if let p = packedStart(vq, cfg), !p.resume { PackedRingRelay.initShadow(shadow, start: p.a) }
            } else {
                initShadow(shadow, avail: shadowStart(vq, cfg), realUsed: realUsedIdx(cfg, memory: memory))
            }
            var out = m
            out.payload = VringAddress(index: a.index, flags: a.flags, desc: shadow.descUser, used: shadow.usedUser,
                                       avail: shadow.availUser, log: a.log).encode()
            out.header.size = UInt32(out.payload.count)
            return .forward(out)
        case .setVringBase?:
            // A base set after the address: the shadow avail.idx follows it until the ring starts.
            if let s = m.decode(VringState.self), s.index < UInt32(queueCount), let shadow = shadows[UInt16(s.index)],
               relays[UInt16(s.index)] == nil, var cfg = rings.config(UInt16(s.index)) {
                cfg.base = UInt16(truncatingIfNeeded: s.num)
                if shadow.format == .packed {
                    if let p = packedStart(UInt16(s.index), cfg), !p.resume { PackedRingRelay.initShadow(shadow, start: p.a) }
                } else {
                    _ = shadow.avail.store16Release(shadowStart(UInt16(s.index), cfg), at: 2)
                }
            }
            return .forward(m)
        case .setVringKick?, .setVringCall?:
            guard m.fds.count == 1, let f = m.decode(VringFile.self), !f.noFd, Int(f.index) < queueCount else { return .forward(m) }
            let vq = UInt16(f.index)
            let kick = m.request == .setVringKick
            var n = notifiers[vq] ?? RelayNotifiers()
            let (mine, why) = n.replace(kick: kick, frontFd: m.fds[0])
            notifiers[vq] = n
            guard let mine else {
                if let why { log("record: vq \(vq): \(why)") }
                return .forward(m)
            }
            var out = m
            out.fds = [mine]
            return .forward(out)
        default:
            return .forward(m)
        }
    }

    /// The back-end's offers with what the relay cannot carry taken out.
    func rewriteReply(_ m: Message) -> Message {
        guard m.isReply, m.request == .getFeatures || m.request == .getProtocolFeatures, let v = m.decode(U64Payload.self) else { return m }
        let mask = m.request == .getFeatures ? InterposeFeatures.featureMask : InterposeFeatures.protocolMask
        guard v.value & mask != 0 else { return m }
        var out = m
        out.payload = U64Payload(v.value & ~mask).encode() + Array(m.payload.dropFirst(8))
        return out
    }

    private func realUsedIdx(_ c: RingConfig, memory: MemoryTable) -> UInt16? {
        memory.user(c.used, length: 4)?.load16Acquire(at: 2)
    }

    /// The shadow avail.idx a ring starts from: the base, or where a stopped ring on the same
    /// memory had published to when the base lies within that (a resume).
    private func shadowStart(_ vq: UInt16, _ c: RingConfig) -> UInt16 {
        guard let s = stoppedAt[vq], s.config.size == c.size, s.config.desc == c.desc, s.config.avail == c.avail, s.config.used == c.used,
              SplitRing.distance(from: c.base, to: s.published) <= UInt16(truncatingIfNeeded: c.size) else { return c.base }
        return s.published
    }

    /// Packed: the positions a ring starts from, the base's (index in bits 0-14, wrap counter in
    /// bit 15) or, resuming a stopped ring on the same memory from a base between its used and
    /// avail positions, where it stopped; nil for a base beyond the ring.
    private func packedStart(_ vq: UInt16, _ c: RingConfig) -> (a: UInt64, u: UInt64, resume: Bool)? {
        let base = RingFormat.packed.base(UInt64(c.base))
        guard c.size > 0, UInt32(base.index) < c.size else { return nil }
        if let s = stoppedPacked[vq], s.config.size == c.size, s.config.desc == c.desc, s.config.avail == c.avail, s.config.used == c.used,
           let p = PackedRing.decode(c.base, after: s.u, size: c.size), p <= s.a {
            return (s.a, s.u, true)
        }
        let p = PackedRing.position(base, size: c.size)
        return (p, p, false)
    }

    /// A shadow ring the device has not seen yet: nothing published beyond `avail`, used.idx where
    /// the front-end's is (a back-end that finds them different starts from used.idx, as it would
    /// on the front-end's ring).
    private func initShadow(_ s: ShadowRing, avail: UInt16, realUsed: UInt16?) {
        _ = s.avail.store(UInt16(0), at: 0)
        _ = s.used.store(UInt16(0), at: 0)
        for k in 0..<Int(s.size) { _ = s.used.store(RingRelay.unwritten, at: 4 + 8 * k) }
        _ = s.avail.store16Release(avail, at: 2)
        _ = s.used.store16Release(realUsed ?? avail, at: 2)
    }

    // MARK: rings

    /// Starts relaying `vq` once its kick went to the back-end; a ring that cannot be relayed gets a gap.
    func start(_ vq: UInt16, config: RingConfig, memory: MemoryTable, features: UInt64, t: UInt64, out: inout [TraceEvent]) {
        relays[vq] = nil
        let format: RingFormat = features & FeatureBit.ringPacked.mask != 0 ? .packed : .split
        guard let shadow = shadows[vq] else {
            return gap(vq, .unmapped, "no shadow ring: \(unshadowed[vq] ?? "no SET_VRING_ADDR before the kick")", t: t, out: &out)
        }
        guard shadow.size == config.size else {
            return gap(vq, .formatNotFollowed, "SET_VRING_NUM changed after SET_VRING_ADDR", t: t, out: &out)
        }
        guard shadow.format == format else {
            return gap(vq, .formatNotFollowed, "the features changed the ring format (\(shadow.format) at SET_VRING_ADDR, \(format) at the kick)", t: t, out: &out)
        }
        let eventIdx = features & FeatureBit.eventIdx.mask != 0
        if format == .packed {
            guard let p = packedStart(vq, config) else {
                return gap(vq, .formatNotFollowed, "the packed base \(config.base) names a slot beyond the ring of \(config.size)", t: t, out: &out)
            }
            // A used position other than the avail one: buffers in flight across a restart. The
            // trace's set_vring_base carries one position, so the checker could not place the
            // device's used descriptors before it: not relayed (the ring stalls, INCOMPLETE).
            if !p.resume && config.baseUsed != 0 && config.baseUsed != config.base {
                return gap(vq, .formatNotFollowed, "the packed base names used position 0x\(String(config.baseUsed, radix: 16)) and avail position 0x\(String(config.base, radix: 16)): a start with buffers in flight, which the relay does not take up", t: t, out: &out)
            }
            let resumed = p.resume ? stoppedPacked[vq]?.remapped(config: config, memory: memory) : nil
            guard let r = resumed ?? PackedRingRelay(vq: vq, config: config, memory: memory, shadow: shadow, eventIdx: eventIdx,
                                                     inOrder: features & FeatureBit.inOrder.mask != 0, start: (p.a, p.u)) else {
                return gap(vq, .unmapped, "the front-end's ring or its event suppression structures are not inside its memory table", t: t, out: &out)
            }
            stoppedPacked[vq] = nil
            relays[vq] = r
        } else {
            // Even vqs are receive rings (RX[k] is vq 2k; front-ends keep the control queue to themselves).
            let receive = vq % 2 == 0 ? RxHeaderReader(features: features, ringSize: config.size) : nil
            guard let r = RingRelay(vq: vq, config: config, memory: memory, shadow: shadow, eventIdx: eventIdx, receive: receive) else {
                return gap(vq, .unmapped, "the front-end's ring is not inside its memory table", t: t, out: &out)
            }
            relays[vq] = r
        }
        step(vq, memory: memory, t: t, out: &out)
    }

    func stop(_ vq: UInt16) {
        if let r = relays[vq] as? RingRelay { stoppedAt[vq] = (r.config, r.lastAvail) }
        if let r = relays[vq] as? PackedRingRelay { stoppedPacked[vq] = r }
        relays[vq] = nil
    }

    /// RESET_OWNER: the device is reset, nothing resumes.
    func stopAll() { relays = [:]; stoppedAt = [:]; stoppedPacked = [:] }

    /// One relay pass of `vq`, then the notifications it owes.
    func step(_ vq: UInt16, memory: MemoryTable, t: UInt64, out: inout [TraceEvent]) {
        // Taken out while it runs: the dictionary's copy would make every mutation copy its arrays.
        guard var r = relays.removeValue(forKey: vq) else { return }
        var n = notifiers[vq] ?? RelayNotifiers()
        n.retryOwed()
        let kicked = n.takeKick(), called = n.takeCall()
        do {
            let (kick, call) = try r.step(memory: memory, t: t, kicked: kicked, called: called, out: &out)
            relays[vq] = r
            if kick { n.kickBackend() }
            if call { n.callFrontend() }
        } catch {
            relays[vq] = nil
            switch error {
            case .fault(let why): gap(vq, .memoryFault, why, t: t, out: &out)
            case .arenaFull(let why): gap(vq, .workBound, why, t: t, out: &out)
            case .workBound: gap(vq, .workBound, "one relay pass needed more than \(r.workBound) descriptor reads", t: t, out: &out)
            case .lost(let why): gap(vq, .formatNotFollowed, why + ": where the device goes next is unknown", t: t, out: &out)
            }
        }
        notifiers[vq] = n
    }

    /// A new memory table: the front-end's rings are found again in it.
    func memoryChanged(_ rings: RingTable, memory: MemoryTable, t: UInt64, out: inout [TraceEvent]) {
        for vq in relays.keys.sorted() {
            guard let c = rings.config(vq), let r = relays[vq]!.remapped(config: c, memory: memory) else {
                relays[vq] = nil
                gap(vq, .unmapped, "the front-end's ring is not inside its new memory table", t: t, out: &out)
                continue
            }
            relays[vq] = r
        }
    }

    private func gap(_ vq: UInt16, _ reason: RingGapReason, _ detail: String, t: UInt64, out: inout [TraceEvent]) {
        out.append(TraceEvent(.ringGap, vq: vq, timestamp: t, p0: UInt64(reason.rawValue)))
        var list = problems[vq] ?? []
        if let i = list.firstIndex(where: { $0.reason == reason }) { list[i].count += 1; list[i].detail = detail } else { list.append((reason, detail, 1)) }
        problems[vq] = list
        gapLogged(vq, "record: vq \(vq): \(detail) (ring_gap reason=\(reason.rawValue)); the ring is no longer relayed")
    }

    /// The end of a session: every fd and the region go (the back-end's device is reset).
    func endSession() {
        relays = [:]; shadows = [:]; unshadowed = [:]; stoppedAt = [:]; stoppedPacked = [:]
        for vq in notifiers.keys { notifiers[vq]!.close() }
        notifiers = [:]
        region = nil
    }
}
