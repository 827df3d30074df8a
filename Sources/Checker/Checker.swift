import VirtioProtocol
import VirtqueueModel
import VhostModel
import TraceFormat

/// Replays trace events through the reference model and reports every rule they break.
/// Streams: memory depends on the queue count and sizes, never on the trace length.
public struct Checker {
    public let header: TraceHeader
    public let profile: Profile
    public var layout: QueueLayout { header.layout }
    public private(set) var eventsSeen: UInt64 = 0
    /// Rules whose further findings are counted in `suppressedCount` instead of returned.
    public var suppressed: Set<RuleID> = []
    public private(set) var suppressedCount = 0

    var device: VhostDevice
    var queues: [SplitVirtqueue?]
    var sizes: [UInt32]
    var bases: [UInt16]
    var features: Features
    /// Ring slots allocated so far, against `slotBudget`.
    var slots = 0
    /// State of the rules added for the requirements table (`Checker+Requirements.swift`).
    var req: RequirementState
    /// Ring state the checker allocates at most (slots over all rings, about 25 bytes each):
    /// 256 rings of the largest size. Beyond it the trace is refused as input, never half-judged.
    public static let slotBudget = 1 << 23
    /// Set when the trace cannot be judged within the budget; the run stops with exit status 2.
    public private(set) var fatal: String?
    /// What the trace did not let the checker judge (a ring the recorder lost, a ring format the
    /// model does not cover). A trace with no finding but something here is incomplete, not conformant.
    public private(set) var notJudged: [String] = []
    private var history: [History]
    private var deviceHistory = History()
    var pendingHeaderFindings: [Finding]
    /// virtio-net MQ: pairs the driver asked for (TX side) and the device acknowledged (RX side).
    private var txPairs = 1
    private var rxPairs = 1
    private var requestedPairs: Int?
    private var confirmedPairs = 1
    private var pairsCommandSeen = false
    var lastOffset: UInt64 = 0

    /// Events kept per vq for a finding's context.
    public static let contextDepth = 6

    public init(header: TraceHeader, profile: Profile? = nil) {
        self.header = header
        self.profile = profile ?? header.profile
        let n = header.queueCount
        let preset = header.flags.contains(.preset)
        device = VhostDevice(profile: self.profile, queueCount: n, preset: preset, presetWorkers: Int(header.workers))
        features = Features(header.features)
        sizes = header.queueSizes.map(UInt32.init)
        bases = Array(repeating: 0, count: n)
        queues = Array(repeating: nil, count: n)
        history = Array(repeating: History(), count: n)
        pendingHeaderFindings = []
        lastOffset = UInt64(header.encodedSize)
        req = RequirementState(header: header)
        noteRingFormat(features)
        for q in 0..<n where sizes[q] != 0 {
            if !SplitRing.isValidQueueSize(sizes[q]) {
                pendingHeaderFindings.append(Finding(rule: .vqSize, eventIndex: nil, offset: UInt64(TraceHeader.fixedSize + 2 * q), vq: UInt16(q),
                    message: "header declares vq \(q) with size \(sizes[q]), which is not a power of two in 1...32768"))
            }
        }
        pendingHeaderFindings += headerChecks()
    }

    /// The ring state of vq `q`, allocated on first use (a header may declare many idle rings).
    mutating func queue(_ q: Int) -> Bool {
        if queues[q] != nil { return true }
        guard SplitRing.isValidQueueSize(sizes[q]), fatal == nil else { return false }
        guard slots + Int(sizes[q]) <= Self.slotBudget else {
            fatal = "vq \(q) needs \(sizes[q]) more ring slots, beyond the checker's budget of \(Self.slotBudget) slots over all rings"
            return false
        }
        slots += Int(sizes[q])
        queues[q] = SplitVirtqueue(size: sizes[q], start: bases[q], indirectAllowed: features.has(.indirectDesc),
                                   eventIdx: features.has(.eventIdx), inOrder: features.has(.inOrder))
        return true
    }

    /// vq `q` changes size: its ring state starts over.
    private mutating func resize(_ q: Int, to n: UInt32) {
        if let old = queues[q] {
            if old.size == n { return }
            slots -= Int(old.size)
            queues[q] = nil
        }
        sizes[q] = n
    }

    /// Feeds one event; returns the findings it caused (usually none).
    public mutating func process(_ e: TraceEvent, index: UInt64, offset: UInt64) -> [Finding] {
        eventsSeen += 1
        lastOffset = offset + UInt64(TraceEvent.size)
        if fatal != nil { return [] }
        var findings = pendingHeaderFindings
        pendingHeaderFindings = []
        let vq: Int? = (e.kind.vqUse != .none && e.vq != TraceEvent.none && Int(e.vq) < queues.count) ? Int(e.vq) : nil
        // The reader rejects such events; an API caller building events in code gets them ignored.
        if e.kind.vqUse == .required && vq == nil { return findings }
        let ctx = Recent(index: index, offset: offset, event: e)
        if let vq { history[vq].push(ctx) } else { deviceHistory.push(ctx) }

        let violations = join(tick(e), apply(e, vq: vq))
        for v in violations {
            // Rules already reported are only counted: a systematic bug in a long trace must not
            // cost a rendered finding per event.
            if suppressed.contains(v.rule) { suppressedCount += 1; continue }
            findings.append(Finding(rule: v.rule, eventIndex: index, offset: offset, vq: vq.map(UInt16.init), message: v.message,
                                    context: vq.map { history[$0].events } ?? deviceHistory.events))
        }
        return findings
    }

    /// Ends the trace: reports obligations nobody met (an interrupt still owed).
    public mutating func finish() -> [Finding] {
        var findings = pendingHeaderFindings
        pendingHeaderFindings = []
        // A recorder's trace can end mid-pass, so only exact traces are held to this at the end;
        // and not inside an open pass (its deadline never came), nor where the ring has no call fd.
        if !header.flags.contains(.sampled) {
            for (q, queue) in queues.enumerated() {
                if let queue, let owed = queue.interruptOwed, device.rings[q].canInterrupt, device.servicing[q] == nil {
                    findings.append(Finding(rule: .vqInterruptMissed, eventIndex: nil, offset: lastOffset, vq: UInt16(q),
                        message: "trace ends without the interrupt the driver asked for when used.idx reached \(owed) (\(notificationReason(queue)))",
                        context: history[q].events))
                }
            }
        }
        for (q, v) in finishChecks() {
            findings.append(Finding(rule: v.rule, eventIndex: nil, offset: lastOffset, vq: q.map(UInt16.init), message: v.message,
                                    context: q.map { history[$0].events } ?? deviceHistory.events))
        }
        return findings
    }

    // MARK: dispatch

    private mutating func apply(_ e: TraceEvent, vq: Int?) -> [Violation] {
        switch e.kind.plane {
        case .control: return join(control(e, vq: vq), controlChecks(e, vq: vq))
        case .driver:
            let pre = beforeDriver(e, vq: vq!)
            return join(driver(e, vq: vq!), afterDriver(e, vq: vq!, pre))
        case .device:
            let pre = beforeDevice(e, vq: vq!)
            return join(pre.violations, join(deviceAction(e, vq: vq!), afterDevice(e, vq: vq!, pre)))
        case .worker: return worker(e, vq: vq!)
        case .observation: return observation(e, vq: vq!)
        }
    }

    /// `poll` delimits a recorder's snapshots; `ring_gap` breaks a ring's observations.
    private mutating func observation(_ e: TraceEvent, vq q: Int) -> [Violation] {
        guard e.kind == .ringGap else { return [] }
        let why = RingGapReason(rawValue: UInt8(truncatingIfNeeded: e.p0)).map(\.description) ?? "reason \(e.p0)"
        noteNotJudged("vq \(q): observations break (\(why)); what happened there until the ring was followed again was not judged")
        // Nothing seen before the gap may be held against what is seen after it.
        if let old = queues[q] {
            slots -= Int(old.size)
            queues[q] = nil
        }
        return []
    }

    mutating func noteNotJudged(_ s: String) {
        if !notJudged.contains(s) { notJudged.append(s) }
    }

    private mutating func noteRingFormat(_ f: Features) {
        if f.has(.ringPacked) {
            noteNotJudged("VIRTIO_F_RING_PACKED is negotiated: packed virtqueues are not modelled yet, so no ring of this trace was judged")
        }
    }

    private mutating func control(_ e: TraceEvent, vq: Int?) -> [Violation] {
        let r = e.result
        let ok = r == 0
        switch e.kind {
        case .setOwner:
            return device.setOwner(requested: Int(clamping: e.p0), vq: vq, result: r)
        case .resetOwner:
            return device.resetOwner(vq: vq, result: r)
        case .setFeatures:
            // Not owner-gated: vhost-net's set_features never calls vhost_dev_check_owner, and
            // vhost-user negotiates features before SET_OWNER.
            if ok {
                features = Features(e.p0)
                noteRingFormat(features)
                for q in queues.indices where queues[q] != nil {
                    queues[q]!.indirectAllowed = features.has(.indirectDesc)
                    queues[q]!.eventIdx = features.has(.eventIdx)
                    queues[q]!.inOrder = features.has(.inOrder)
                }
                device.featuresNegotiated(protocolFeatures: features.has(.protocolFeatures))
            }
            return []
        case .setProtocolFeatures, .getQueueNum:
            return VhostDevice.needsOwner(messageIsNegotiation: true, profile: profile)
                ? device.requireOwner(e.kind == .getQueueNum ? "GET_QUEUE_NUM" : "SET_PROTOCOL_FEATURES", vq: nil, result: r) : []
        case .setMemTable:
            return device.requireOwner("SET_MEM_TABLE", vq: nil, result: r)
        case .setVringNum:
            let q = vq!
            var v = device.ringMessage("SET_VRING_NUM", vq: q, result: r) { $0.sizeSet = true }
            if ok {
                let n = UInt32(truncatingIfNeeded: e.p0)
                if SplitRing.isValidQueueSize(n) {
                    resize(q, to: n)
                } else {
                    v.append(Violation(.vqSize, "SET_VRING_NUM \(n) on vq \(q) was accepted, but a split queue size must be a power of two in 1...32768 (vhost: -EINVAL)"))
                }
            }
            return v
        case .setVringAddr:
            return device.ringMessage("SET_VRING_ADDR", vq: vq!, result: r) { $0.addrSet = true }
        case .setVringBase:
            let q = vq!
            let v = device.ringMessage("SET_VRING_BASE", vq: q, result: r) { _ in }
            if ok {
                bases[q] = UInt16(truncatingIfNeeded: e.p0)
                if queues[q] != nil { queues[q]!.setBase(bases[q]) }
            }
            return v
        case .getVringBase:
            // vhost-user: GET_VRING_BASE stops the ring. Kernel vhost only reads last_avail_idx;
            // QEMU stops a kernel ring by detaching its backend (set_backend fd=-1) first.
            let stops = profile == .vhostUser
            return device.ringMessage("GET_VRING_BASE", vq: vq!, result: r) { if stops { $0.stopped = true; $0.started = false } }
        case .setVringKick:
            // A recorder starts following a ring afresh from its base at every kick it forwards
            // (after a stop, a reconnect or a device reset the ring may be rebuilt), so a sampled
            // trace restarts that ring's model there too.
            if ok && header.flags.contains(.sampled), let old = queues[vq!] {
                slots -= Int(old.size)
                queues[vq!] = nil
            }
            // "No fd": the back-end polls the ring, which is then started at once (vhost-user.rst).
            let polls = Self.noFd(e.p0, profile: profile)
            return device.ringMessage("SET_VRING_KICK", vq: vq!, result: r) { $0.kickSet = true; $0.stopped = false; if polls { $0.started = true } }
        case .setVringCall:
            // "No fd" (vhost-user bit 8: the front-end polls) or fd -1 (kernel): the device cannot
            // interrupt, so no interrupt is owed; a window published before a call fd existed owes none.
            let can = !Self.noFd(e.p0, profile: profile)
            if ok && can { queues[vq!]?.interrupt() }
            return device.ringMessage("SET_VRING_CALL", vq: vq!, result: r) { $0.canInterrupt = can }
        case .setVringEnable:
            return device.ringMessage("SET_VRING_ENABLE", vq: vq!, result: r) { $0.enabled = e.p0 != 0; $0.enableSent = true }
        case .setBackend:
            let detach = e.p0 == UInt64.max
            return device.ringMessage("VHOST_NET_SET_BACKEND", vq: vq!, result: r) { ring in
                if detach { ring.stopped = true; ring.started = false } else { ring.kickSet = true; ring.stopped = false; ring.started = true }
                ring.backendAttached = !detach
            }
        case .newWorker:
            return device.newWorker(id: Int(clamping: e.p0), result: r)
        case .freeWorker:
            return device.freeWorker(id: Int(clamping: e.p0), result: r)
        case .attachVringWorker:
            return device.attachWorker(vq: vq!, id: Int(clamping: e.p0), result: r)
        case .mqPairsSet:
            let n = Int(clamping: e.p0)
            let maxPairs = self.maxPairs
            guard n >= Int(NetCtrlMQ.pairsMin), n <= maxPairs else {
                return [Violation(.netMQPairsRange, "VQ_PAIRS_SET asks for \(n) pairs; allowed is 1...\(maxPairs) (max_virtqueue_pairs)")]
            }
            // Takes effect for the driver as soon as the command is made available.
            txPairs = n
            requestedPairs = n
            pairsCommandSeen = true
            return []
        case .mqPairsAck:
            if e.p0 == UInt64(NetCtrlMQ.ackOK), let n = requestedPairs {
                rxPairs = n
                confirmedPairs = n
            } else {
                // Refused (VIRTIO_NET_ERR): the driver keeps its previous count (virtnet_set_queues).
                txPairs = confirmedPairs
            }
            requestedPairs = nil
            return []
        default:
            return []
        }
    }

    private mutating func driver(_ e: TraceEvent, vq q: Int) -> [Violation] {
        guard queue(q) else { return [] } // size unknown: nothing the model can follow yet
        let s = e.isSampled
        switch e.kind {
        case .desc:
            return queues[q]!.writeDescriptor(e.aux, Descriptor(addr: e.descAddr, len: e.descLen, flags: e.descFlags, next: e.descNext), sampled: s)
        case .indirectDesc:
            return queues[q]!.writeIndirectEntry(parent: UInt16(truncatingIfNeeded: e.p2), entry: e.aux,
                                                 Descriptor(addr: e.descAddr, len: e.descLen, flags: e.descFlags, next: e.descNext), sampled: s)
        case .availEntry:
            return queues[q]!.writeAvailEntry(pos: UInt16(truncatingIfNeeded: e.p0), head: e.aux, sampled: s)
        case .availIdx:
            var (v, exposed) = queues[q]!.publishAvail(UInt16(truncatingIfNeeded: e.p0), sampled: s)
            if exposed > 0, case .tx(let k) = role(q), let why = inactiveReason(tx: k, vq: q) {
                v.append(Violation(.netTxqInactive, "driver makes \(exposed) buffer(s) available on TX[\(k)] (vq \(q)), \(why)"))
            }
            return v
        case .availFlags:
            queues[q]!.setAvailFlags(UInt16(truncatingIfNeeded: e.p0))
            return []
        case .usedEvent:
            queues[q]!.setUsedEvent(UInt16(truncatingIfNeeded: e.p0))
            return []
        default:
            return []
        }
    }

    private mutating func deviceAction(_ e: TraceEvent, vq q: Int) -> [Violation] {
        var v: [Violation] = []
        let ring = device.rings[q]
        _ = queue(q)
        if isVMMControlQueue(q) {
            // linux-upstream: the VMM serves the control queue; vhost ring setup does not apply.
        } else if ring.stopped {
            v.append(Violation(.vhostRingStopped, "device \(e.kind.name) on vq \(q) after GET_VRING_BASE stopped the ring"))
        } else if !ring.ready || queues[q] == nil {
            let missing = ring.missing + (queues[q] == nil && ring.sizeSet ? ["a valid size"] : [])
            v.append(Violation(.vhostRingNotReady, "device \(e.kind.name) on vq \(q) before the ring was set up (missing: \(missing.joined(separator: ", ")))"))
        }
        // Sending an interrupt consumes nothing: a notifier thread may send it (issue 10, false positive 2).
        if e.worker != TraceEvent.none && e.kind != .interrupt { v += device.checkDeviceWork(vq: q, worker: Int(e.worker)) }
        guard queues[q] != nil else { return v }
        let s = e.isSampled
        switch e.kind {
        case .availRead:
            v += queues[q]!.deviceRead(pos: UInt16(truncatingIfNeeded: e.p0), head: e.aux)
        case .usedEntry:
            v += queues[q]!.writeUsed(pos: UInt16(truncatingIfNeeded: e.p0), id: UInt32(truncatingIfNeeded: e.p1), len: UInt32(truncatingIfNeeded: e.p2), sampled: s)
        case .usedIdx:
            let before = queues[q]!.cursor.used
            v += queues[q]!.publishUsed(UInt16(truncatingIfNeeded: e.p0), sampled: s)
            if queues[q]!.cursor.used != before, case .rx(let k) = role(q), let why = inactiveReason(rx: k, vq: q) {
                v.append(Violation(.netRxqInactive, "device completes receive buffers on RX[\(k)] (vq \(q)), \(why)"))
            }
        case .interrupt:
            queues[q]!.interrupt()
        case .usedFlags:
            queues[q]!.setUsedFlags(UInt16(truncatingIfNeeded: e.p0))
        case .availEvent:
            queues[q]!.setAvailEvent(UInt16(truncatingIfNeeded: e.p0))
        default:
            break
        }
        return v
    }

    private mutating func worker(_ e: TraceEvent, vq q: Int) -> [Violation] {
        let w = Int(e.worker)
        switch e.kind {
        case .serviceBegin:
            guard e.worker != TraceEvent.none else { return [] }
            return device.serviceBegin(vq: q, worker: w)
        case .serviceEnd:
            var v: [Violation] = []
            // The pass deadline is kernel vhost's (vhost_notify runs in the pass that published);
            // vhost-user sets no deadline but the trace end (issue 10, false positive 4).
            if profile != .vhostUser, let queue = queues[q], let owed = queue.interruptOwed, !e.isSampled, device.rings[q].canInterrupt {
                v.append(Violation(.vqInterruptMissed, "worker \(w) ends its pass on vq \(q) without the interrupt the driver asked for when used.idx reached \(owed) (\(notificationReason(queue)))"))
                queues[q]!.interrupt() // report once per missed notification
            }
            if e.worker != TraceEvent.none { device.serviceEnd(vq: q, worker: w) }
            return v
        default:
            return []
        }
    }

    // MARK: virtio-net queue activity

    func role(_ q: Int) -> QueueRole { layout.role(of: q, queueCount: queues.count) }

    /// max_virtqueue_pairs implied by the layout.
    public var maxPairs: Int {
        switch layout {
        case .seed: return 1
        case .mq: return max(1, queues.count / 2)
        }
    }

    /// TX is gated by VQ_PAIRS_SET only. A disabled vhost-user ring is not the driver's business:
    /// the guest never sees SET_VRING_ENABLE, and the back-end must process and discard its TX.
    private func inactiveReason(tx k: Int, vq: Int) -> String? {
        // vhost-user back-ends never see the control queue, so VQ_PAIRS_SET cannot be judged there.
        if layout == .mq && profile != .vhostUser && k >= txPairs {
            return pairsCommandSeen ? "but VQ_PAIRS_SET allows only \(txPairs) pair(s)" : "but only transmitq1 may be used before VQ_PAIRS_SET"
        }
        return nil
    }

    private func isVMMControlQueue(_ q: Int) -> Bool {
        profile == .linuxUpstream && role(q) == .control
    }

    private func inactiveReason(rx k: Int, vq: Int) -> String? {
        if !device.rings[vq].enabled { return "but SET_VRING_ENABLE disabled that ring" }
        if layout == .mq && profile != .vhostUser && k >= rxPairs {
            return "but only \(rxPairs) receive queue(s) are active until the device uses a VQ_PAIRS_SET for more"
        }
        return nil
    }

    private func notificationReason(_ q: SplitVirtqueue) -> String {
        q.eventIdx ? "EVENT_IDX: used_event \(q.usedEvent) lies in the used positions [\(q.interruptOwedFrom ?? 0), \(q.interruptOwed ?? 0)) just published"
            : "avail.flags \(q.availFlags) does not suppress interrupts"
    }
}

struct Recent {
    let index: UInt64
    let offset: UInt64
    let event: TraceEvent
}

/// The last few events on one vq, in a fixed-size ring; rendered only when a finding needs them.
struct History {
    private var ring: [Recent] = []
    private var head = 0
    mutating func push(_ e: Recent) {
        if ring.count < Checker.contextDepth { ring.append(e) } else { ring[head] = e; head = (head + 1) % Checker.contextDepth }
    }
    var events: [ContextEvent] {
        (ring[head...] + ring[..<head]).map { ContextEvent(index: $0.index, offset: $0.offset, text: TextForm.render(event: $0.event)) }
    }
}
