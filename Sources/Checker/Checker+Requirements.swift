import VirtioProtocol
import VirtqueueModel
import VhostModel
import TraceFormat

/// State of the rules added to cover the requirements table (issue 10): memory table, vhost-user
/// gating, migration (dirty log, ring handover), the disabled-TX drain, kicks and virtio-net framing.
/// Kept apart from the ring models: each rule reads the models through their public views.
struct RequirementState {
    var gating: VhostUserGating
    var memory = MemoryTable()
    var log = DirtyLog()
    var handover: VringHandover
    var drain: DisabledTxDrain
    /// Per vq: the ring addresses SET_VRING_ADDR gave, until checked against a complete table.
    var ringAddr: [(desc: UInt64, avail: UInt64, used: UInt64)?]
    /// Per vq: SET_VRING_ADDR's log address and flags (`vring_log`).
    var vringLog: [(addr: UInt64, flags: UInt64)?]
    /// Per vq and head: the event serial at which the chain was made available (dirty-log rule).
    var exposedAt: [[UInt16: UInt64]]
    /// Per vq: used elements written and not yet published, by position (id, len, writable bytes).
    var usedElems: [[UInt16: (id: UInt16, len: UInt32, writable: UInt64?)]]
    /// Per RX vq: packets announced by `rx_header` (start position, num_buffers) not yet published.
    var rxPackets: [[UInt16: UInt16]]
    /// Per RX vq: the last packet whose header was seen (start, num_buffers).
    var rxLast: [(start: UInt16, count: UInt16)?]
    /// Per RX vq: used positions inside a packet but its last, with the packet (start, num_buffers).
    var rxInterior: [[UInt16: (start: UInt16, count: UInt16)]]
    var lastTime: UInt64 = 0

    init(header: TraceHeader) {
        let n = header.queueCount
        gating = VhostUserGating(headerFeatures: header.features, preset: header.flags.contains(.preset))
        handover = VringHandover(queueCount: n)
        drain = DisabledTxDrain(queueCount: n)
        ringAddr = Array(repeating: nil, count: n)
        vringLog = Array(repeating: nil, count: n)
        exposedAt = Array(repeating: [:], count: n)
        usedElems = Array(repeating: [:], count: n)
        rxPackets = Array(repeating: [:], count: n)
        rxLast = Array(repeating: nil, count: n)
        rxInterior = Array(repeating: [:], count: n)
        log.features(Features(header.features))
    }

    mutating func forgetRing(_ q: Int) {
        handover.forget(vq: q)
        drain.clear(vq: q)
        exposedAt[q] = [:]
        usedElems[q] = [:]
        rxPackets[q] = [:]
        rxLast[q] = nil
        rxInterior[q] = [:]
    }
}

/// What the exposure checks need of a chain just made available, summed up while its buffers are
/// walked (`SplitVirtqueue.chainBuffers(head:into:)`): the same facts the lists of its buffers and
/// tables gave, without the lists.
struct ExposedChain: ChainBufferSink {
    /// The memory table to judge buffer addresses against, when it is judged.
    let memory: MemoryTable?
    var count = 0
    var bytes: UInt64 = 0
    var firstWritable: Int?
    var firstReadable: Int?
    var firstBufferOutside: Descriptor?
    var firstTableOutside: Descriptor?

    init(memory: MemoryTable?) { self.memory = memory }

    mutating func buffer(_ d: Descriptor) {
        if d.flags.contains(.write) { if firstWritable == nil { firstWritable = count } } else if firstReadable == nil { firstReadable = count }
        if firstBufferOutside == nil, let m = memory, !m.coversGuest(d.addr, UInt64(d.len)) { firstBufferOutside = d }
        count += 1
        bytes += UInt64(d.len)
    }

    mutating func table(_ d: Descriptor) {
        if firstTableOutside == nil, let m = memory, !m.coversGuest(d.addr, UInt64(d.len)) { firstTableOutside = d }
    }
}

extension Checker {
    /// Split ring `q`'s exact model, if it has one: the rules added for the requirements table are
    /// split-ring rules (packed rings have their own, judged by `PackedVirtqueue`).
    /// A copy of split ring `q`'s model (it retains each array of the model): for rare paths; the
    /// event path reads in place through `withSplit`.
    func split(_ q: Int) -> SplitVirtqueue? { queues.splitModel(q) }

    /// Runs `body` on split ring `q` in place; nil when it has no split model.
    mutating func withSplit<R>(_ q: Int, _ body: (inout SplitVirtqueue) -> R) -> R? {
        queues.withSplit(q, body)
    }
}

/// Concatenates without allocating when either side is empty (the common case: no finding).
@inline(__always) func join(_ a: [Violation], _ b: [Violation]) -> [Violation] {
    a.isEmpty ? b : (b.isEmpty ? a : a + b)
}

extension Checker {
    var exact: Bool { !header.flags.contains(.sampled) }

    /// "No fd" in a KICK/CALL/ERR payload: vhost-user bit 8; kernel vhost fd -1.
    static func noFd(_ p0: UInt64, profile: Profile) -> Bool {
        profile == .vhostUser ? p0 & VhostUser.vringNoFdMask != 0 : Int64(bitPattern: p0) < 0
    }

    /// Header-level findings: the negotiated features of a preset header.
    func headerChecks() -> [Finding] {
        guard header.features != 0 else { return [] }
        return featureDependencies(Features(header.features)).map {
            Finding(rule: $0.rule, eventIndex: nil, offset: 16, vq: nil, message: "header features: " + $0.message)
        }
    }

    func featureDependencies(_ f: Features) -> [Violation] {
        // QEMU never tells a vhost-user back-end about CTRL_VQ (it keeps the control queue), so a
        // dependency on it cannot be judged there. And on vhost-user SET_FEATURES is the guest's
        // acceptance of an offer the back-end itself shaped, relayed by QEMU: DPDK's vhost PMD
        // without TSO offers HOST_ECN without HOST_TSO4/6, QEMU passes that offer on and Linux
        // accepts it. The acceptance is judged only where the traced offer (get_features) met the
        // dependency, so the front-end's side chose to break it.
        var broken = NetFeatureDependencies.broken(f, judgeCtrlVQ: profile != .vhostUser)
        if profile == .vhostUser {
            let offer = req.gating.offeredFeatures.map(Features.init)
            broken = broken.filter { d in
                guard let offer else { return false }
                return NetFeatureDependencies.broken(offer, judgeCtrlVQ: false).allSatisfy { $0.feature != d.feature }
            }
        }
        return broken.map { d in
            let needs = d.all.map { "\($0)" } + (d.any.isEmpty ? [] : ["one of " + d.any.map { "\($0)" }.joined(separator: "/")])
            return Violation(.netFeatureDeps, "feature \(d.feature) (bit \(d.feature.rawValue)) is negotiated without \(needs.joined(separator: " and ")), which it requires")
        }
    }

    // MARK: every event

    /// Timestamps for the disabled-TX deadline.
    mutating func tick(_ e: TraceEvent) -> [Violation] {
        guard exact, profile == .vhostUser else { return [] }
        guard req.drain.tick(e.timestamp) else { return [] }
        req.lastTime = e.timestamp
        guard req.drain.anyPending else { return [] }
        var v: [Violation] = []
        if share != nil { tickedVqs.removeAll(keepingCapacity: true) }
        for (q, h, since) in req.drain.overdue(now: e.timestamp) {
            if share != nil { tickedVqs.append(UInt32(q)) }
            v.append(Violation(.vhostUserDisabledTxDrain, "head \(h) on TX ring vq \(q), started and disabled, has waited \(e.timestamp - since) ns since t=\(since) without being used (bound \(DisabledTxDrain.bound) ns): a disabled TX ring must still be processed and its packets discarded"))
        }
        return v
    }

    // MARK: control plane

    mutating func controlChecks(_ e: TraceEvent, vq: Int?) -> [Violation] {
        let ok = e.result == 0
        var v: [Violation] = []
        let vu = profile == .vhostUser
        // Every message addressing a vring is bounded by GET_QUEUE_NUM's answer (vhost-user).
        if vu, let q = vq, e.kind.vqUse == .required { v += req.gating.ringMessage(e.kind.name, vq: q) }
        switch e.kind {
        case .getFeatures:
            if ok { req.gating.getFeatures(offered: e.p0) }
        case .setFeatures:
            v += req.gating.featuresRequested(e.p0)
            if ok {
                req.gating.setFeatures(e.p0)
                req.log.features(Features(e.p0))
                v += featureDependencies(Features(e.p0))
            }
        case .getProtocolFeatures:
            if vu { v += req.gating.protocolFeaturesRequested("GET_PROTOCOL_FEATURES") }
            if ok { req.gating.getProtocolFeatures(offered: e.p0) }
        case .setProtocolFeatures:
            if vu {
                v += req.gating.protocolFeaturesRequested("SET_PROTOCOL_FEATURES", set: e.p0)
                v += req.gating.setProtocolFeatures(e.p0)
            }
        case .getQueueNum:
            if vu {
                v += req.gating.needsProtocol("GET_QUEUE_NUM", .mq, offerSuffices: true)
                if ok { req.gating.getQueueNum(e.p0) }
            }
        case .setBackendReqFd:
            if vu { v += req.gating.needsProtocol("SET_BACKEND_REQ_FD", .backendReq, offerSuffices: true) }
        case .setStatus, .getStatus:
            if vu { v += req.gating.needsProtocol(e.kind == .setStatus ? "SET_STATUS" : "GET_STATUS", .status, offerSuffices: false) }
        case .resetDevice:
            if vu { v += req.gating.needsProtocol("RESET_DEVICE", .resetDevice, offerSuffices: true) }
            if ok { resetAllRings() }
        case .setVringEnable:
            let q = vq!
            if vu { v += req.gating.setVringEnable(vq: q) }
            if ok { enableChanged(q) }
        case .vringKickMsg:
            let q = vq!
            if vu { v += req.gating.inbandMessage("VRING_KICK", vq: q) }
            device.ringKicked(vq: q)
            queues.kick(q)
        case .backendVringCall:
            let q = vq!
            if vu { v += req.gating.inbandMessage("BACKEND_VRING_CALL", vq: q) }
            queues.interrupt(q)
        case .setMemTable:
            if ok { req.memory.replace(count: Int(clamping: e.p0)) }
        case .memRegion:
            req.memory.add(MemoryRegion(guest: e.p0, size: e.p1, user: e.p2))
            if req.memory.complete { for q in queues.indices { v += checkRingRange(q) } }
        case .setVringAddr:
            guard ok else { break }
            let q = vq!
            v += ringAlignment(q, desc: e.p0, avail: e.p1, used: e.p2)
            req.ringAddr[q] = (e.p0, e.p1, e.p2)
            v += checkRingRange(q)
        case .vringLog:
            req.vringLog[vq!] = (e.p0, e.p1)
        case .setLogBase:
            if ok { req.log.setLogBase() }
        case .setVringNum:
            guard ok else { break }
            if profile != .vhostUser && device.ring(vq!).backendAttached {
                v.append(Violation(.vhostRingBusy, "SET_VRING_NUM on vq \(vq!) succeeded while a backend is attached (vhost: -EBUSY, \"Resizing ring with an active backend?\")"))
            }
            v += checkRingRange(vq!)
        case .setVringBase:
            guard ok else { break }
            let q = vq!
            if profile != .vhostUser && device.ring(q).backendAttached {
                v.append(Violation(.vhostRingBusy, "SET_VRING_BASE on vq \(q) succeeded while a backend is attached (vhost: -EBUSY, \"Moving base with an active backend?\")"))
            }
            if exact { v += req.handover.setBase(vq: q, base: UInt16(truncatingIfNeeded: e.p0)) }
        case .getVringBase:
            guard ok else { break }
            let q = vq!
            let b = UInt16(truncatingIfNeeded: e.p0)
            // Kernel vhost answers GET_VRING_BASE without stopping the ring: a worker still running could
            // move used.idx past the value between the ioctl and its trace event. Judged there only once
            // the backend is detached (as QEMU does before it asks).
            if exact, profile == .vhostUser || device.ring(q).stopped, let ring = split(q) {
                let c = ring.cursor
                if SplitRing.distance(from: c.used, to: b) > SplitRing.distance(from: c.used, to: c.avail) {
                    v.append(Violation(.vhostVringBaseRange, "GET_VRING_BASE on vq \(q) returned \(b), outside [used.idx \(c.used), avail.idx \(c.avail)]: the device cannot have read past what was published, nor returned more than it read"))
                }
            }
            if exact { req.handover.gotBase(vq: q, base: b) }
            if profile == .vhostUser { ringStopped(q) }
        case .setBackend:
            if ok && e.p0 == UInt64.max { ringStopped(vq!) }
        case .resetOwner:
            if ok {
                for q in queues.indices { req.forgetRing(q); queues.releaseKick(q) }
                req.handover.forgetAll()
            }
        default:
            break
        }
        return v
    }

    /// VQ-RING-ALIGN: descriptor table 16, available ring 2, used ring 4.
    /// Packed rings ("Structure Size and Alignment"): descriptor ring 16, both event suppression structures 4.
    func ringAlignment(_ q: Int, desc: UInt64, avail: UInt64, used: UInt64) -> [Violation] {
        var bad: [String] = []
        let packed = format == .packed
        if desc % 16 != 0 { bad.append("\(packed ? "descriptor ring" : "descriptor table") 0x\(String(desc, radix: 16)) (needs 16)") }
        if packed {
            if avail % 4 != 0 { bad.append("driver event suppression 0x\(String(avail, radix: 16)) (needs 4)") }
            if used % 4 != 0 { bad.append("device event suppression 0x\(String(used, radix: 16)) (needs 4)") }
        } else {
            if avail % 2 != 0 { bad.append("available ring 0x\(String(avail, radix: 16)) (needs 2)") }
            if used % 4 != 0 { bad.append("used ring 0x\(String(used, radix: 16)) (needs 4)") }
        }
        guard !bad.isEmpty else { return [] }
        return [Violation(.vqRingAlign, "SET_VRING_ADDR on vq \(q) was accepted with misaligned \(bad.joined(separator: ", "))")]
    }

    /// VHOST-MEM-RING-ADDR, once the ring's addresses, size and a complete memory table are known.
    mutating func checkRingRange(_ q: Int) -> [Violation] {
        guard let a = req.ringAddr[q], req.memory.complete, !features.has(.accessPlatform),
              format.isValidQueueSize(sizes[q]) else { return [] }
        req.ringAddr[q] = nil // judged once per SET_VRING_ADDR
        let n = sizes[q], ev = features.has(.eventIdx)
        // Packed: SET_VRING_ADDR's avail and used name the driver's and the device's event
        // suppression structures (4 bytes each), desc the ring of 16-byte descriptors.
        let parts: [(String, UInt64, UInt64)] = format == .packed ? [
            ("descriptor ring", a.desc, 16 * UInt64(n)),
            ("driver event suppression", a.avail, 4),
            ("device event suppression", a.used, 4),
        ] : [
            ("descriptor table", a.desc, SplitRingExtent.descriptorTable(n)),
            ("available ring", a.avail, SplitRingExtent.availRing(n, eventIdx: ev)),
            ("used ring", a.used, SplitRingExtent.usedRing(n, eventIdx: ev)),
        ]
        let outside = parts.filter { !req.memory.coversUser($0.1, $0.2) }
        guard !outside.isEmpty else { return [] }
        let what = outside.map { "\($0.0) [0x\(String($0.1, radix: 16)), +0x\(String($0.2, radix: 16)))" }.joined(separator: ", ")
        return [Violation(.vhostMemRingAddr, "vq \(q) (size \(n)): \(what) not inside the memory table's user addresses (\(req.memory.summary))")]
    }

    mutating func ringStopped(_ q: Int) {
        queues.releaseKick(q)
        req.drain.clear(vq: q)
    }

    mutating func resetAllRings() {
        device.resetDevice(result: 0)
        device.featuresNegotiated(protocolFeatures: features.has(.protocolFeatures))
        req.handover.forgetAll()
        for q in queues.indices { dropRing(q) }
    }

    /// The ring's model starts over (the driver rebuilt it): indices restart at the next base.
    mutating func dropRing(_ q: Int) {
        drop(q)
        bases[q] = nil
        req.forgetRing(q)
    }

    /// SET_VRING_ENABLE took effect on `q`: a disabled, started TX ring starts the drain deadline for
    /// what it holds; an enabled one stops it.
    mutating func enableChanged(_ q: Int) {
        guard exact, profile == .vhostUser, case .tx = role(q) else { return }
        let ring = device.ring(q)
        guard !ring.enabled, ring.started, !ring.stopped, let queue = split(q) else { req.drain.clear(vq: q); return }
        for h in queue.inFlightHeadSet { req.drain.exposed(vq: q, head: h, at: req.lastTime) }
    }

    // MARK: driver

    /// The avail index before the event, for the publication window.
    mutating func beforeDriver(_ e: TraceEvent, vq q: Int) -> UInt16? {
        e.kind == .availIdx ? withSplit(q, { $0.cursor.avail }) : nil
    }

    mutating func afterDriver(_ e: TraceEvent, vq q: Int, _ availBefore: UInt16?, into v: inout [Violation]) {
        switch e.kind {
        case .ringReset:
            dropRing(q)
            return
        case .kick:
            device.ringKicked(vq: q)
            queues.kick(q)
            return
        case .availFlags:
            // A split-ring event on a packed ring is not judged (the checker notes it).
            guard format == .split else { break }
            v += notifyFlags("avail.flags", value: UInt16(truncatingIfNeeded: e.p0), driver: true)
        case .availIdx:
            guard let old = availBefore, let new = withSplit(q, { $0.cursor.avail }), !e.isSampled else { break }
            _ = withSplit(q) { $0.noteAvailPublished(old: old, new: new) }
            // The chains just exposed, each read in place and summed up as it is walked: a local copy
            // of the ring would retain every array of the model, a list of buffers allocate per chain.
            let memory = req.memory.complete && !features.has(.accessPlatform) ? req.memory : nil
            let logging = req.log.active
            // Positions a queue size apart share an avail slot, so a jump of more than N (a hostile
            // driver's, VQ-INFLIGHT) exposes only the chains of the first N positions: the later
            // laps would judge the same heads again, up to 1024 times on a ring of 64.
            let n = withSplit(q) { $0.size } ?? 0
            let count = UInt16(min(UInt32(new &- old), n))
            var p = old
            while p != old &+ count {
                let at = p
                p = p &+ 1
                let exposed = withSplit(q) { ring -> (UInt16, ExposedChain?)? in
                    guard let h = ring.availHead(at: at), ring.isInFlight(head: h) else { return nil }
                    var chain = ExposedChain(memory: memory)
                    return (h, ring.chainBuffers(head: h, into: &chain) ? chain : nil)
                }
                guard let (h, chain) = exposed ?? nil else { continue }
                if logging { req.exposedAt[q][h] = eventsSeen }
                // Appended in place: one publication can expose up to 65535 chains (a hostile
                // driver's jump), and joining copies would make that quadratic.
                exposureChecks(q, head: h, chain: chain, into: &v)
                let ring = device.ring(q)
                if profile == .vhostUser, case .tx = role(q), ring.started, !ring.enabled, !ring.stopped {
                    req.drain.exposed(vq: q, head: h, at: e.timestamp)
                }
            }
        default:
            break
        }
    }

    /// VQ-NOTIFY-FLAGS: 0 or 1 without EVENT_IDX, 0 with it.
    func notifyFlags(_ what: String, value f: UInt16, driver: Bool) -> [Violation] {
        let ev = features.has(.eventIdx)
        guard ev ? f != 0 : f > 1 else { return [] }
        let who = driver ? "driver" : "device"
        return [Violation(.vqNotifyFlags, "\(who) sets \(what) to \(f), but \(ev ? "with VIRTIO_F_EVENT_IDX it must be 0" : "it must be 0 or 1")")]
    }

    /// Checks on a chain just made available (exact traces): addresses and virtio-net framing.
    // Mutating although it changes nothing: called from the event path, a non-mutating call made the
    // compiler copy the whole checker per exposure.
    mutating func exposureChecks(_ q: Int, head h: UInt16, chain: ExposedChain?, into v: inout [Violation]) {
        guard let chain else { return }
        if req.memory.complete && !features.has(.accessPlatform) {
            if let bad = chain.firstBufferOutside ?? chain.firstTableOutside {
                v.append(Violation(.vhostMemBufferAddr, "chain head \(h) on vq \(q) has a buffer [0x\(String(bad.addr, radix: 16)), +\(bad.len)) outside the memory table's guest addresses (\(req.memory.summary))"))
            }
        }
        let hdr = UInt64(NetHeader.size(features))
        switch role(q) {
        case .tx(let k):
            if let w = chain.firstWritable {
                v.append(Violation(.netTxFraming, "TX[\(k)] (vq \(q)) chain head \(h) has a device-writable buffer (#\(w) of \(chain.count)): transmit buffers are device-readable"))
            } else {
                let total = chain.bytes
                if total < hdr {
                    v.append(Violation(.netTxFraming, "TX[\(k)] (vq \(q)) chain head \(h) is \(total) bytes, shorter than the \(hdr)-byte virtio-net header every packet starts with"))
                }
            }
        case .rx(let k):
            if let r = chain.firstReadable {
                v.append(Violation(.netRxFraming, "RX[\(k)] (vq \(q)) chain head \(h) has a device-readable buffer (#\(r) of \(chain.count)): receive buffers are device-writable"))
            } else if features.has(.netMrgRxbuf) {
                let total = chain.bytes
                if total < hdr {
                    v.append(Violation(.netRxFraming, "RX[\(k)] (vq \(q)) chain head \(h) is \(total) bytes; with MRG_RXBUF each receive buffer holds at least the \(hdr)-byte header"))
                }
            }
        default:
            break
        }
    }

    // MARK: device

    /// The used index before the event, for the publication window; the checks made before the
    /// model moves are appended to `v`.
    mutating func beforeDevice(_ e: TraceEvent, vq q: Int, into v: inout [Violation]) -> UInt16? {
        guard e.kind == .usedIdx, let old = withSplit(q, { $0.cursor.used }) else { return nil }
        guard exact else { return old }
        let new = UInt16(truncatingIfNeeded: e.p0)
        guard UInt32(SplitRing.distance(from: old, to: new)) <= queues.size(q)! else { return old }
        if req.log.active { v += logChecks(q, old: old, new: new) }
        if case .rx(let k) = role(q) { v += rxPublishChecks(q, k: k, old: old, new: new) }
        return old
    }

    mutating func afterDevice(_ e: TraceEvent, vq q: Int, _ usedBefore: UInt16?, into v: inout [Violation]) {
        switch e.kind {
        case .usedFlags:
            guard format == .split else { break }
            v += notifyFlags("used.flags", value: UInt16(truncatingIfNeeded: e.p0), driver: false)
        case .logDirty:
            let now = eventsSeen
            req.log.mark(addr: e.p0, len: e.p1, serial: now, keepSince: req.exposedAt.lazy.flatMap(\.values).min() ?? now)
        case .usedEntry:
            guard exact, queues.isSplit(q) else { break }
            // Kept only where a rule reads them: RX rings, and any ring while dirty logging is on.
            guard isRX(q) || req.log.active else { break }
            let pos = UInt16(truncatingIfNeeded: e.p0)
            let id = UInt16(truncatingIfNeeded: e.p1), len = UInt32(truncatingIfNeeded: e.p2)
            let facts: (UInt32, Bool, UInt64?)? = withSplit(q) { ring in
                let known = UInt32(id) < ring.size
                let live = known && ring.isInFlight(head: id)
                let w: UInt64? = known ? ring.writableBytes(head: id) : nil
                return (ring.size, live, w)
            }
            guard let (size, live, w) = facts else { break }
            // A completion of a head not in flight is VQ-USED-ID's; nothing more is judged of it.
            guard live else { break }
            if req.usedElems[q].count < Int(size) || req.usedElems[q][pos] != nil { req.usedElems[q][pos] = (id, len, w) }
            if case .rx(let k) = role(q) { rxElementChecks(q, k: k, pos: pos, into: &v) }
        case .usedIdx:
            guard let old = usedBefore, let used = withSplit(q, { $0.cursor.used }) else { break }
            var p = old
            let anything = !req.usedElems[q].isEmpty || !req.rxPackets[q].isEmpty || !req.rxInterior[q].isEmpty
            // Each table is looked at only when it holds something: removing a key from an empty
            // dictionary still hashes it (most RX rings fill only `usedElems`).
            while anything && p != used {
                if !req.usedElems[q].isEmpty, let el = req.usedElems[q].removeValue(forKey: p), !req.exposedAt[q].isEmpty {
                    req.exposedAt[q][el.id] = nil
                }
                if !req.rxPackets[q].isEmpty { req.rxPackets[q][p] = nil }
                if !req.rxInterior[q].isEmpty { req.rxInterior[q][p] = nil }
                p = p &+ 1
            }
            if req.drain.anyPending {
                for h in req.drain.pendingHeads(vq: q) where withSplit(q, { $0.isInFlight(head: h) }) == false { req.drain.used(vq: q, head: h) }
            }
        case .rxHeader:
            guard exact, format == .split, case .rx(let k) = role(q) else { break }
            v += rxHeader(q, k: k, e)
        default:
            break
        }
    }

    /// VHOST-LOG-BEFORE-USED for the elements used.idx is about to publish.
    func logChecks(_ q: Int, old: UInt16, new: UInt16) -> [Violation] {
        guard let queue = split(q) else { return [] } // logging on: the copy is the price of this rare path
        var v: [Violation] = []
        var p = old
        while p != new {
            defer { p = p &+ 1 }
            guard let el = req.usedElems[q][p], let since = req.exposedAt[q][el.id] else { continue }
            var missing: [UInt64] = []
            if let (buffers, _) = queue.chainBuffers(head: el.id) {
                var left = UInt64(el.len)
                for b in buffers where b.flags.contains(.write) && left > 0 {
                    let n = min(left, UInt64(b.len))
                    missing += req.log.unmarked(addr: b.addr, len: n, since: since)
                    left -= n
                }
            }
            if let l = req.vringLog[q], l.flags & VhostLog.vringFlagLog != 0 {
                let at = l.addr &+ 4 &+ 8 * UInt64(queue.cursor.slot(p))
                missing += req.log.unmarked(addr: at, len: 8, since: since)
            }
            if !missing.isEmpty {
                let pages = missing.prefix(4).map { "0x\(String($0 * VhostLog.pageSize, radix: 16))" }.joined(separator: ", ")
                v.append(Violation(.vhostLogBeforeUsed, "used.idx \(old) -> \(new) publishes head \(el.id) on vq \(q) (len \(el.len)) while dirty logging is on, but \(missing.count) page(s) it wrote were not marked in the log since the chain was made available (\(pages)\(missing.count > 4 ? ", ..." : ""))"))
            }
        }
        return v
    }

    // MARK: virtio-net receive

    /// A plain test, not a closure: a closure here would capture (copy) the whole checker per event.
    func isRX(_ q: Int) -> Bool {
        if case .rx = role(q) { return true }
        return false
    }

    func hdrSize() -> UInt32 { NetHeader.size(features) }

    /// A used element written on an RX ring: without MRG_RXBUF every element starts a packet.
    // Mutating although it changes nothing: a non-mutating call from the event path copies the whole
    // checker first (a memcpy of ~2 KB and a retain and release of each of its arrays).
    mutating func rxElementChecks(_ q: Int, k: Int, pos: UInt16, into v: inout [Violation]) {
        guard let el = req.usedElems[q][pos] else { return }
        let starts = !features.has(.netMrgRxbuf) || req.rxPackets[q][pos] != nil
        if starts && el.len < hdrSize() {
            v.append(Violation(.netRxUsedLen, "RX[\(k)] (vq \(q)) used element at \(pos) (head \(el.id)) has len \(el.len), shorter than the \(hdrSize())-byte virtio-net header that starts every received packet"))
        }
        rxInteriorCheck(q, k: k, pos: pos, into: &v)
    }

    /// With MRG_RXBUF, every buffer of a packet but the last is used to its full length.
    // Mutating although it changes nothing: a non-mutating call from the event path copies the whole
    // checker first (a memcpy of ~2 KB and a retain and release of each of its arrays).
    mutating func rxInteriorCheck(_ q: Int, k: Int, pos: UInt16, into v: inout [Violation]) {
        guard features.has(.netMrgRxbuf), let el = req.usedElems[q][pos], let w = el.writable,
              let (start, n) = req.rxInterior[q][pos] else { return }
        guard UInt64(el.len) != w else { return }
        v.append(Violation(.netRxNumBuffers, "RX[\(k)] (vq \(q)): buffer \(SplitRing.distance(from: start, to: pos) + 1) of the \(n) the packet at \(start) spans (head \(el.id)) is used for \(el.len) of its \(w) bytes; all but the last must be used completely"))
    }

    mutating func rxHeader(_ q: Int, k: Int, _ e: TraceEvent) -> [Violation] {
        let pos = UInt16(truncatingIfNeeded: e.p0)
        let n = UInt16(truncatingIfNeeded: e.p1)
        var v: [Violation] = []
        if !features.has(.netMrgRxbuf) {
            if n != 1 { v.append(Violation(.netRxNumBuffers, "RX[\(k)] (vq \(q)) header at used position \(pos) has num_buffers \(n); without MRG_RXBUF it must be 1")) }
        } else if n == 0 {
            v.append(Violation(.netRxNumBuffers, "RX[\(k)] (vq \(q)) header at used position \(pos) has num_buffers 0; a packet spans at least one buffer"))
        } else {
            if let last = req.rxLast[q], pos != last.start, SplitRing.distance(from: last.start, to: pos) < last.count {
                v.append(Violation(.netRxNumBuffers, "RX[\(k)] (vq \(q)): a packet starts at used position \(pos), inside the \(last.count) buffers the packet at \(last.start) said it spans"))
            }
            if let size = queues.size(q), UInt32(n) > size {
                // The buffers of a packet are used together, and no more than the queue size can be
                // available at once: such a header can describe no packet.
                // Nor are its other fields judged: a driver that read it where no header was (after an
                // earlier wrong num_buffers) read payload.
                v.append(Violation(.netRxNumBuffers, "RX[\(k)] (vq \(q)) header at used position \(pos) has num_buffers \(n), more buffers than the queue of \(size) can hold at once; a packet's buffers are used together"))
                return v
            }
            // Bounded by the ring: more packets than slots cannot be pending; beyond that, not judged.
            guard let size = queues.size(q), req.rxPackets[q].count < Int(size) else { return v }
            req.rxPackets[q][pos] = n
            req.rxLast[q] = (pos, n)
            var i = pos
            for _ in 0..<(Int(n) - 1) { req.rxInterior[q][i] = (pos, n); i = i &+ 1 }
            // Elements already written for this packet.
            if let el = req.usedElems[q][pos], el.len < hdrSize() {
                v.append(Violation(.netRxUsedLen, "RX[\(k)] (vq \(q)) used element at \(pos) (head \(el.id)) starts a packet but has len \(el.len), shorter than the \(hdrSize())-byte header"))
            }
            var p = pos
            for _ in 0..<max(0, Int(n) - 1) { rxInteriorCheck(q, k: k, pos: p, into: &v); p = p &+ 1 }
        }
        v += rxOffload(q, k: k, flags: UInt8(truncatingIfNeeded: e.p2), gso: e.aux, pos: pos)
        return v
    }

    /// NET-RX-HDR-OFFLOAD: judged on vhost-user only (a kernel back-end is never told the offloads).
    func rxOffload(_ q: Int, k: Int, flags: UInt8, gso: UInt16, pos: UInt16) -> [Violation] {
        guard profile == .vhostUser else { return [] }
        var v: [Violation] = []
        if flags != 0 && !features.has(.netGuestCsum) {
            v.append(Violation(.netRxHdrOffload, "RX[\(k)] (vq \(q)) header at \(pos) has flags 0x\(String(flags, radix: 16)), but without GUEST_CSUM the device must write 0"))
        }
        let type = gso & ~NetHeader.gsoECN
        let allowed: Bool
        switch type {
        case NetHeader.gsoNone: allowed = true
        case NetHeader.gsoTCPv4: allowed = features.has(.netGuestTSO4)
        case NetHeader.gsoTCPv6: allowed = features.has(.netGuestTSO6)
        case NetHeader.gsoUDP: allowed = features.has(.netGuestUFO)
        case NetHeader.gsoUDPL4: allowed = features.has(.netGuestUSO4) || features.has(.netGuestUSO6)
        default: allowed = true // tunnel bits and others: their features lie above bit 63
        }
        if !allowed {
            v.append(Violation(.netRxHdrOffload, "RX[\(k)] (vq \(q)) header at \(pos) has gso_type \(gso), an offload the driver did not negotiate"))
        }
        return v
    }

    /// With MRG_RXBUF one used.idx update publishes all buffers of a packet.
    // Mutating although it changes nothing: a non-mutating call from the event path copies the whole
    // checker first (a memcpy of ~2 KB and a retain and release of each of its arrays).
    mutating func rxPublishChecks(_ q: Int, k: Int, old: UInt16, new: UInt16) -> [Violation] {
        guard features.has(.netMrgRxbuf) else { return [] }
        var v: [Violation] = []
        var start = old
        while start != new {
            defer { start = start &+ 1 }
            guard let n = req.rxPackets[q][start] else { continue }
            let covered = SplitRing.distance(from: start, to: new)
            if covered < n {
                v.append(Violation(.netRxNumBuffers, "RX[\(k)] (vq \(q)): used.idx \(old) -> \(new) publishes the first buffer of the packet at \(start) but only \(covered) of its \(n) buffers; the device uses a packet's buffers together"))
            }
        }
        return v
    }

    // MARK: end of trace

    mutating func finishChecks() -> [(Int?, Violation)] {
        guard exact else { return [] }
        var out: [(Int?, Violation)] = []
        for q in queues.indices {
            guard let owed = queues.owedKick(q) else { continue }
            if let why = cut {
                noteNotJudged("vq \(q): the capture ended (\(why)) while the kick the device asked for when \(owed.when) was owed; it may have come after", atEnd: (.kicks, q))
                continue
            }
            out.append((q, Violation(owed.rule, "trace ends without the kick the device asked for when \(owed.when) (\(owed.reason))")))
        }
        return out
    }
}
