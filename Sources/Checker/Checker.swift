import VirtioProtocol
import VirtqueueModel
import PolledSemantics
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
    /// The exact model of each ring, of the format the features select (allocated on first use).
    var queues: RingTable
    /// Rings observed by polling (sampled events): judged by `PolledSemantics` over the exact model.
    private var polled: PolledTable
    /// Findings of polled rings, with the event each is reported at (set by `apply`).
    private var polledOut: [PolledViolation] = []
    /// What polled rings let the checker judge (summed over rings that ended).
    private var polledCoverageDone = PolledCoverage()
    /// Per vq: disabled when its last poll ended, and not enabled since (RX completions seen by the
    /// next poll then certainly happened on a disabled ring).
    private var disabledAtLastPoll: [Bool]
    var sizes: [UInt32]
    /// SET_VRING_BASE values as sent (the ring format decides how to read them); nil before any.
    var bases: [UInt64?]
    var features: Features
    /// The ring format the negotiated features select.
    var format: RingFormat { RingFormat(features: features) }
    /// Ring slots allocated so far, against `slotBudget`.
    var slots = 0
    /// State of the rules added for the requirements table (`Checker+Requirements.swift`).
    var req: RequirementState
    /// Ring state the checker allocates at most (slots over all rings, about 25 bytes each):
    /// 256 rings of the largest size. Beyond it the trace is refused as input, never half-judged.
    public static let slotBudget = 1 << 23
    /// Indirect-table memory over all rings, in descriptor-sized units (`IndirectTable.cost`: 16 bytes
    /// for an entry, about twice that for one described out of order) plus `indirectTableCost` per
    /// table. Each ring forgets tables the device does not own beyond its own
    /// `SplitVirtqueue.indirectBudget`, but nothing bounded the sum: tables the device owns were kept
    /// whatever their number. Beyond this budget every ring forgets its idle tables; if the tables the
    /// device owns still need more than half of it, the trace is refused (exit 2), never half-judged.
    public static let indirectBudget = 1 << 23
    /// This checker's budget (`indirectBudget` unless a test asks for a smaller one).
    public let indirectBudget: Int
    /// What one table costs beyond its entries (array header, allocation, dictionary slot), in entries.
    public static let indirectTableCost = 4
    private var indirectHeld = 0
    /// Indirect-table memory held now over all rings, in the units of `indirectBudget`.
    public var indirectHeldCost: Int { indirectHeld }
    /// Workers VHOST_NEW_WORKER may have alive at once before the trace is refused: the model keeps
    /// every live id, so a trace of NEW_WORKER events would otherwise grow it without end.
    public static let liveWorkerBudget = 1 << 16
    /// Set when the trace cannot be judged within the budget; the run stops with exit status 2.
    public private(set) var fatal: String?
    /// What the trace did not let the checker judge (a ring the recorder lost, a ring format the
    /// model does not cover). A trace with no finding but something here is incomplete, not conformant.
    /// At most `notJudgedListed` notes are kept; the rest are counted in a last line.
    public var notJudged: [String] {
        notes + (unlistedNotes > 0 ? ["and \(unlistedNotes) more: see the trace's ring_gap events"] : [])
    }
    public static let notJudgedListed = 32
    private var notes: [String] = []
    private var noteSet: Set<String> = []
    private var unlistedNotes = 0
    /// Polls of followed rings that were not judged, judging starting again right after them (the
    /// coverage figures count them; they do not make a trace incomplete).
    public private(set) var resyncNotes: [String] = []
    static let maxNotes = 20
    /// A recorder's capture ended (`capture_end`): why. Obligations still open at the end of the
    /// trace are then not findings (the peers may have met them after the capture ended).
    private(set) var cut: String?
    /// Per vq: a `ring_gap` not yet followed by a poll.
    private var openGaps: [Int: String] = [:]
    /// Sampled traces: packed rings started (SET_VRING_KICK) and not observed since. A recorder that
    /// follows a packed ring writes a first poll at its base; one that does not (one that forwards
    /// packed sessions without their data plane, as `conformance record` did before it followed
    /// packed rings) leaves the ring unjudged.
    private var packedUnobserved: Set<Int> = []
    /// The last events of each vq, and at index `queues.count` the device-wide ones.
    private var history: History
    var pendingHeaderFindings: [Finding]
    /// virtio-net MQ: pairs the driver asked for (TX side) and the device acknowledged (RX side).
    private var txPairs = 1
    private var rxPairs = 1
    private var requestedPairs: Int?
    private var confirmedPairs = 1
    private var pairsCommandSeen = false
    var lastOffset: UInt64 = 0
    /// Each vq's virtio-net role, as the header's layout gives it (asked on most events).
    private let roles: [QueueRole]
    /// Whether `tick` judges anything (exact vhost-user traces).
    private let drainClock: Bool
    /// Index of the event being processed (polled findings name earlier events).
    private var currentIndex: UInt64 = 0

    /// Events kept per vq for a finding's context.
    public static let contextDepth = 6

    /// In a split run (`SplitRun`), the part of the trace this checker judges; nil: all of it.
    public var share: Share? {
        didSet {
            judgedVqs = share?.owns ?? Array(repeating: true, count: queues.count)
            judgesDeviceWide = share?.deviceWide ?? true
            sharing = share != nil
            coupling = Coupling(header)
        }
    }
    private var sharing = false
    /// With a `share`: what couples the vqs, watched on every event; met, it stops the share (the
    /// trace is then checked in one piece).
    private var coupling: Coupling
    public private(set) var coupled: SplitPlan.Serial?
    /// `share` as the event loop reads it (a stored array, so that no copy of the share is made per event).
    private var judgedVqs: [Bool]
    private var judgesDeviceWide = true
    /// Whether this checker judges vq `q`'s data plane and reports its findings (nil: what concerns no vq).
    func judges(_ q: Int?) -> Bool { q.map { judgedVqs[$0] } ?? judgesDeviceWide }
    /// With a `share`: where each finding `process` or `finish` made falls in the serial run's
    /// order, one key per finding (the run loop takes them).
    var orderKeys: [OrderKey] = []
    /// With a `share`: the vqs of the drain findings `tick` just made, in their order.
    var tickedVqs: [UInt32] = []
    /// With a `share`: where each note was first made, beside `notes`.
    private var noteKeys: [OrderKey] = []
    private var resyncKeys: [OrderKey] = []

    public init(header: TraceHeader, profile: Profile? = nil, indirectBudget: Int = Checker.indirectBudget) {
        self.header = header
        self.indirectBudget = indirectBudget
        self.profile = profile ?? header.profile
        let n = header.queueCount
        let preset = header.flags.contains(.preset)
        device = VhostDevice(profile: self.profile, queueCount: n, preset: preset, presetWorkers: Int(header.workers))
        features = Features(header.features)
        sizes = header.queueSizes.map(UInt32.init)
        bases = Array(repeating: nil, count: n)
        queues = RingTable(count: n, placeholder: SplitVirtqueue(size: 1), PackedVirtqueue(size: 1))
        polled = PolledTable(count: n, placeholder: PolledRing(size: 1, base: 0, indirectAllowed: false, eventIdx: false, inOrder: false),
                             PolledPackedRing(size: 1, base: .start, features: RingFeatures()))
        disabledAtLastPoll = Array(repeating: false, count: n)
        history = History(rings: n + 1)
        pendingHeaderFindings = []
        lastOffset = UInt64(header.encodedSize)
        req = RequirementState(header: header)
        drainClock = !header.flags.contains(.sampled) && self.profile == .vhostUser
        roles = (0..<n).map { header.layout.role(of: $0, queueCount: n) }
        coupling = Coupling(header)
        judgedVqs = Array(repeating: true, count: n)
        for q in 0..<n where sizes[q] != 0 {
            if !format.isValidQueueSize(sizes[q]) {
                let why = format == .split ? "which is not a power of two in 1...32768" : "but \(format.sizeRequirement)"
                pendingHeaderFindings.append(Finding(rule: format.sizeRule, eventIndex: nil, offset: UInt64(TraceHeader.fixedSize + 2 * q), vq: UInt16(q),
                    message: "header declares vq \(q) with size \(sizes[q]), \(why)"))
            }
        }
        pendingHeaderFindings += headerChecks()
    }

    /// The ring state of vq `q`, allocated on first use (a header may declare many idle rings).
    // The test inlined, the allocation not: asked on every data-plane event.
    @inline(__always) mutating func queue(_ q: Int) -> Bool {
        queues.has(q) || makeQueue(q)
    }

    private mutating func makeQueue(_ q: Int) -> Bool {
        guard format.isValidQueueSize(sizes[q]), fatal == nil, !baseOutsideRing(q), budget(q) else { return false }
        guard let r = format.makeModel(size: sizes[q], base: base(q), features: RingFeatures(features)) else { return false }
        slots += Int(sizes[q])
        queues.set(q, r)
        return true
    }

    /// The polled-ring state of vq `q`, allocated on its first observation (same budget as `queue`).
    // As `queue`: the test inlined (every polled observation asks), the allocation out of line.
    @inline(__always) private mutating func polledRing(_ q: Int) -> Bool {
        polled.has(q) || makePolledRing(q)
    }

    private mutating func makePolledRing(_ q: Int) -> Bool {
        guard format.isValidQueueSize(sizes[q]), fatal == nil, !baseOutsideRing(q), budget(q) else { return false }
        guard let r = format.makePolledModel(size: sizes[q], base: base(q), features: RingFeatures(features)) else {
            noteNotJudged("vq \(q): \(format) rings observed by polling are not judged")
            return false
        }
        slots += Int(sizes[q])
        polled.set(q, r)
        return true
    }

    /// Whether vq `q`'s ring fits in the slot budget; sets `fatal` when it does not.
    private mutating func budget(_ q: Int) -> Bool {
        guard slots + Int(sizes[q]) <= Self.slotBudget else {
            fatal = "vq \(q) needs \(sizes[q]) more ring slots, beyond the checker's budget of \(Self.slotBudget) slots over all rings"
            return false
        }
        return true
    }

    /// Observation of polled ring `q` ends (restart, gap, resize): what it left undecided is counted.
    private mutating func endPolledRing(_ q: Int) {
        guard let size = polled.size(q) else { return }
        indirectHeld -= polledIndirectCost(q)
        polledCoverageDone += polled.finish(q)!
        slots -= Int(size)
        polled.remove(q)
    }

    /// What polled rings let the checker judge so far.
    public var polledCoverage: PolledCoverage {
        var c = polledCoverageDone
        for q in polled.indices { if var r = polled[q] { r.finish(); c += r.coverage } }
        return c
    }

    /// vq `q` changes size: its ring state starts over.
    private mutating func resize(_ q: Int, to n: UInt32) {
        if let size = queues.size(q) {
            if size == n { return }
            drop(q)
        }
        if let size = polled.size(q), size != n { endPolledRing(q) }
        sizes[q] = n
    }

    /// Frees the ring state of vq `q` and returns its memory to the budgets.
    mutating func drop(_ q: Int) {
        guard let size = queues.size(q) else { return }
        slots -= Int(size)
        indirectHeld -= queues.indirectCost(q)
        queues.remove(q)
    }

    static func indirectCost<Ring: RingModel>(_ q: Ring) -> Int {
        q.indirectEntriesHeld + indirectTableCost * q.indirectTablesHeld
    }

    /// Indirect tables of a polled ring's model.
    private mutating func polledIndirectCost(_ q: Int) -> Int {
        polled.indirectCost(q)
    }

    /// The test inlined (every polled observation and indirect write asks), the pass out of line.
    @inline(__always) private mutating func enforceIndirectBudget() {
        if indirectHeld > indirectBudget { forgetOrRefuseIndirectTables() }
    }

    private mutating func forgetOrRefuseIndirectTables() {
        // Forgetting idle tables everywhere brings the sum down to what the device owns; refusing
        // above half the budget keeps this pass rare (amortised constant work per event).
        indirectHeld = 0
        for r in queues.indices where queues.has(r) {
            queues.forgetIdleIndirectTables(r)
            indirectHeld += queues.indirectCost(r)
        }
        for r in polled.indices where polled.has(r) {
            polled.forgetIdleIndirectTables(r)
            indirectHeld += polledIndirectCost(r)
        }
        if indirectHeld > indirectBudget / 2 {
            fatal = "indirect tables the device owns hold \(indirectHeld) entries' worth over all rings, beyond the checker's budget of \(indirectBudget / 2) (about \((indirectBudget / 2 * 16) >> 20) MiB of descriptors)"
        }
    }

    /// Feeds one event; returns the findings it caused (usually none).
    public mutating func process(_ e: TraceEvent, index: UInt64, offset: UInt64) -> [Finding] {
        var findings: [Finding] = []
        process(e, index: index, offset: offset, into: &findings)
        return findings
    }

    /// `process`, appending the findings to `findings` (the event loop reuses one array instead of
    /// receiving one per event).
    mutating func process(_ e: TraceEvent, index: UInt64, offset: UInt64, into findings: inout [Finding]) {
        eventsSeen += 1
        currentIndex = index
        lastOffset = offset + UInt64(TraceEvent.size)
        if fatal != nil { return }
        if !pendingHeaderFindings.isEmpty { emitHeaderFindings(at: index, into: &findings) }
        if sharing {
            if let why = coupling.see(e) { coupled = why; fatal = "split run stopped: \(why)"; return }
            // Another share judges this event. Only the drain clock could report at it (and then
            // its context is needed), so elsewhere it is skipped whole.
            if !drainClock, e.kind.vqUse != .none, e.kind.plane != .control, e.vq != TraceEvent.none, Int(e.vq) < queues.count,
               !judgedVqs[Int(e.vq)] { return }
        }
        let vq: Int? = (e.kind.vqUse != .none && e.vq != TraceEvent.none && Int(e.vq) < queues.count) ? Int(e.vq) : nil
        // The reader rejects such events; an API caller building events in code gets them ignored.
        if e.kind.vqUse == .required && vq == nil { return }
        history.push(vq ?? queues.count, Recent(index: index, offset: offset, event: e))

        // The drain clock runs on exact vhost-user traces only: elsewhere `tick` is not even called.
        var violations: [Violation] = drainClock ? tick(e) : []
        let ticked = violations.count
        // A share skips the data plane of the vqs it does not judge, and drops what the control
        // events it replays for their state find about another share's rings (Specs/performance.md).
        let mine = judges(vq)
        if mine || vq == nil || e.kind.plane == .control { apply(e, vq: vq, into: &violations) }
        if !mine && violations.count > ticked { violations.removeSubrange(ticked...) }
        if violations.isEmpty && polledOut.isEmpty { return }
        let located = violations.map { (index, offset, $0) }
            + polledOut.map { ($0.ref, UInt64(header.encodedSize) + $0.ref * UInt64(TraceEvent.size), $0.violation) }
        polledOut = []
        for (n, (i, off, v)) in located.enumerated() {
            // Rules already reported are only counted: a systematic bug in a long trace must not
            // cost a rendered finding per event.
            if suppressed.contains(v.rule) { suppressedCount += 1; continue }
            findings.append(Finding(rule: v.rule, eventIndex: i, offset: off, vq: vq.map(UInt16.init), message: v.message,
                                    context: history.events(vq ?? queues.count)))
            if share != nil {
                orderKeys.append(n < ticked ? OrderKey(index, .drain, tickedVqs[n]) : OrderKey(index, .event, UInt32(n)))
            }
        }
    }

    /// The header's findings, at the first event (or the end of an empty trace); a split run's
    /// device-wide share reports them.
    private mutating func emitHeaderFindings(at index: UInt64, into findings: inout [Finding]) {
        defer { pendingHeaderFindings = [] }
        guard judgesDeviceWide else { return }
        if share != nil { orderKeys += pendingHeaderFindings.indices.map { OrderKey(index, .header, UInt32($0)) } }
        findings += pendingHeaderFindings
    }

    /// Ends the trace: reports obligations nobody met (an interrupt still owed).
    public mutating func finish() -> [Finding] {
        var findings: [Finding] = []
        emitHeaderFindings(at: .max, into: &findings)
        for (q, g) in openGaps.sorted(by: { $0.key < $1.key }) { noteNotJudged(g, atEnd: (.gaps, q)) }
        openGaps = [:]
        for q in packedUnobserved.sorted() where judges(q) {
            noteNotJudged("vq \(q): a packed ring was started but the recorder never observed it (no poll): its data plane was not judged", atEnd: (.unobserved, q))
        }
        packedUnobserved = []
        var closed: [Violation] = []
        closeLegacyPolls(into: &closed)
        let atEnd = closed.map { (nil as UInt64?, lastOffset, $0) }
            + polledOut.map { (Optional($0.ref), UInt64(header.encodedSize) + $0.ref * UInt64(TraceEvent.size), $0.violation) }
        polledOut = []
        for (n, (i, off, v)) in atEnd.enumerated() {
            if suppressed.contains(v.rule) { suppressedCount += 1; continue }
            findings.append(Finding(rule: v.rule, eventIndex: i, offset: off, vq: nil, message: v.message))
            if share != nil { orderKeys.append(OrderKey(.max, .legacyAtEnd, UInt32(n))) }
        }
        // A recorder's trace can end mid-pass, so only exact traces are held to this at the end;
        // and not inside an open pass (its deadline never came), nor where the ring has no call fd.
        if !header.flags.contains(.sampled) {
            for q in queues.indices {
                if judges(q), let owed = queues.owedInterrupt(q), device.ring(q).canInterrupt, device.servicingWorker(q) == nil {
                    if let why = cut {
                        noteNotJudged("vq \(q): the capture ended (\(why)) while the interrupt the driver asked for when \(owed.when) was owed; it may have come after", atEnd: (.interrupts, q))
                        continue
                    }
                    findings.append(Finding(rule: owed.rule, eventIndex: nil, offset: lastOffset, vq: UInt16(q),
                        message: "trace ends without the interrupt the driver asked for when \(owed.when) (\(owed.reason))",
                        context: history.events(q)))
                    if share != nil { orderKeys.append(OrderKey(.max, .interrupts, UInt32(q))) }
                }
            }
        }
        for (q, v) in finishChecks() where judges(q) {
            findings.append(Finding(rule: v.rule, eventIndex: nil, offset: lastOffset, vq: q.map(UInt16.init), message: v.message,
                                    context: history.events(q ?? queues.count)))
            if share != nil { orderKeys.append(OrderKey(.max, .kicks, q.map(UInt32.init) ?? .max)) }
        }
        return findings
    }

    // MARK: dispatch

    // Marked for inlining into `process`; the optimiser still keeps it a call (measured).
    @inline(__always) private mutating func apply(_ e: TraceEvent, vq: Int?, into v: inout [Violation]) {
        let plane = e.kind.plane
        if let q = vq, plane == .observation || (e.isSampled && (plane == .driver || plane == .device)) {
            polledEvent(e, vq: q, into: &v)
            return
        }
        if e.kind == .captureEnd {
            cut = CaptureEndReason(rawValue: UInt8(truncatingIfNeeded: e.p0))?.description ?? "reason \(e.p0)"
            return
        }
        if e.kind == .ringGap {
            // Device-wide: a vring the trace has no vq for was configured (and not recorded).
            noteNotJudged("a vring beyond the trace's \(queues.count) queues was configured at event \(currentIndex); nothing on it was recorded")
            return
        }
        // A poll of an old-style trace is closed by its next poll; a control event must not be
        // judged before the observations made before it.
        // Every step appends to `v` in place: returning an array from each layer cost a retain and
        // release (and a join) per layer per event, even when nothing was found.
        switch plane {
        case .control:
            closeLegacyPolls(into: &v)
            v += control(e, vq: vq)
            v += controlChecks(e, vq: vq)
        case .driver:
            let pre = beforeDriver(e, vq: vq!)
            driver(e, vq: vq!, into: &v)
            afterDriver(e, vq: vq!, pre, into: &v)
        case .device:
            let usedBefore = beforeDevice(e, vq: vq!, into: &v)
            deviceAction(e, vq: vq!, into: &v)
            afterDevice(e, vq: vq!, usedBefore, into: &v)
        case .worker: worker(e, vq: vq!, into: &v)
        case .observation: return
        }
    }

    // MARK: polled rings

    /// A sampled data-plane event, a `poll` or a `ring_gap`: an observation of a polled ring.
    private mutating func polledEvent(_ e: TraceEvent, vq q: Int, into v: inout [Violation]) {
        if e.kind == .ringGap {
            // Nothing seen before the gap may be held against what is seen after it. If the ring is
            // never observed again, the rest of it was not judged (`finish`).
            let why = RingGapReason(rawValue: UInt8(truncatingIfNeeded: e.p0)).map(\.description) ?? "reason \(e.p0)"
            openGaps[q] = "vq \(q): not followed after event \(currentIndex) (\(why))"
            indirectHeld -= polledIndirectCost(q)
            polled.gap(q)
            return
        }
        // Tested first: the set is empty but for packed sessions, and hashing per event cost more than the rule.
        if !packedUnobserved.isEmpty { packedUnobserved.remove(q) }
        guard polledRing(q) else { return } // size unknown: nothing the model can follow yet
        if e.kind == .poll, !openGaps.isEmpty, openGaps[q] != nil {
            openGaps[q] = nil
            indirectHeld -= polledIndirectCost(q)
            polled.gapEnds(q)
        }
        let obs: PolledObservation
        switch e.kind {
        case .desc:
            obs = .descriptor(DescriptorRead(.table(e.aux), Descriptor(addr: e.descAddr, len: e.descLen, flags: e.descFlags, next: e.descNext)))
        case .indirectDesc:
            obs = .descriptor(DescriptorRead(.indirect(parent: UInt16(truncatingIfNeeded: e.p2), entry: e.aux),
                                             Descriptor(addr: e.descAddr, len: e.descLen, flags: e.descFlags, next: e.descNext)))
        case .availEntry: obs = .availEntry(pos: UInt16(truncatingIfNeeded: e.p0), head: e.aux)
        case .usedEntry: obs = .usedEntry(pos: UInt16(truncatingIfNeeded: e.p0), id: UInt32(truncatingIfNeeded: e.p1), len: UInt32(truncatingIfNeeded: e.p2))
        case .poll: obs = .poll(avail: UInt16(truncatingIfNeeded: e.p0), used: UInt16(truncatingIfNeeded: e.p1))
        case .usedSlot: obs = .usedSlot(slot: UInt16(truncatingIfNeeded: e.p0), id: UInt32(truncatingIfNeeded: e.p1), len: UInt32(truncatingIfNeeded: e.p2))
        case .packedDesc: obs = .packedDescriptor(slot: e.aux, PackedDescriptor(addr: e.p0, len: e.packedLen, id: e.packedId))
        case .packedIndirectDesc:
            obs = .packedIndirect(parent: UInt16(truncatingIfNeeded: e.p2), entry: e.aux,
                                  PackedDescriptor(addr: e.p0, len: e.packedLen, id: e.packedId, flags: e.packedEntryFlags))
        case .packedFlags: obs = .packedFlags(slot: e.aux, e.packedFlags)
        case .packedUsed: obs = .packedUsed(slot: e.aux, id: e.packedId, len: e.packedLen)
        case .packedUsedFlags: obs = .packedUsedFlags(slot: e.aux, e.packedFlags)
        case .availIdx: obs = .legacyAvailIndex(UInt16(truncatingIfNeeded: e.p0))
        case .usedIdx: obs = .legacyUsedIndex(UInt16(truncatingIfNeeded: e.p0))
        case .interrupt:
            polled.interrupt(q)
            return
        default:
            // Flags, event indices and kicks observed by polling are not judged (notifications
            // are judged on exact traces only).
            return
        }
        var delta = 0
        let outcome = polled.observe(q, obs, ref: currentIndex, indirectDelta: &delta)
        indirectHeld += delta
        enforceIndirectBudget()
        guard let outcome else { return }
        judge(outcome, vq: q, into: &v)
    }

    /// What a closed poll means beyond the ring itself: ring state and active queues.
    private mutating func judge(_ outcome: PollOutcome, vq q: Int, into v: inout [Violation]) {
        if outcome.foreign {
            noteNotJudged("vq \(q): a polled observation of the other ring format than the negotiated features select (\(format) rings) was not judged")
            return
        }
        polledOut += outcome.violations
        if let a = outcome.anomaly {
            noteNotJudged("vq \(q): \(a); the ring is judged no further until it restarts")
        }
        if let r = outcome.resynchronized, resyncNotes.count < Self.maxNotes {
            resyncNotes.append("vq \(q): \(r)")
            if share != nil { resyncKeys.append(OrderKey(currentIndex, .event, 0)) }
        }
        let ring = device.ring(q)
        let disabledThroughout = disabledAtLastPoll[q] && !ring.enabled
        disabledAtLastPoll[q] = !ring.enabled
        if outcome.completed > 0 {
            if ring.stopped {
                v.append(Violation(.vhostRingStopped, "device completes \(outcome.completed) buffer(s) on vq \(q) after GET_VRING_BASE stopped the ring"))
            } else if !ring.ready {
                v.append(Violation(.vhostRingNotReady, "device completes buffers on vq \(q) before the ring was set up (missing: \(ring.missing.joined(separator: ", ")))"))
            }
            if case .rx(let k) = role(q) {
                // The poll before this one already saw the ring disabled, so these completions,
                // published after it, certainly came while the ring was disabled.
                if disabledThroughout {
                    v.append(Violation(.netRxqInactive, "device completes \(outcome.completed) receive buffer(s) on RX[\(k)] (vq \(q)), but SET_VRING_ENABLE disabled that ring"))
                } else if ring.enabled, let why = inactiveReason(rx: k, vq: q) {
                    v.append(Violation(.netRxqInactive, "device completes receive buffers on RX[\(k)] (vq \(q)), \(why)"))
                }
            }
        }
        if outcome.exposed > 0, case .tx(let k) = role(q), let why = inactiveReason(tx: k, vq: q) {
            v.append(Violation(.netTxqInactive, "driver makes \(outcome.exposed) buffer(s) available on TX[\(k)] (vq \(q)), \(why)"))
        }
    }

    /// Closes every open poll of an old-style (legacy) sampled trace.
    private mutating func closeLegacyPolls(into v: inout [Violation]) {
        for q in polled.indices where polled.has(q) {
            if let outcome = polled.closeLegacyPoll(q) { judge(outcome, vq: q, into: &v) }
        }
    }

    /// Callers note each thing once (per ring, per format), so the list is bounded by the queue
    /// count; only the first `notJudgedListed` are kept as text.
    /// `atEnd`: made by `finish`, in the part of it named, about vq `q` (where a split run's merge
    /// places it).
    mutating func noteNotJudged(_ s: String, atEnd: (OrderKey.Stage, Int)? = nil) {
        guard !noteSet.contains(s) else { return }
        if notes.count < Self.notJudgedListed { notes.append(s); noteSet.insert(s) } else { unlistedNotes += 1; return }
        if share != nil {
            noteKeys.append(atEnd.map { OrderKey(.max, $0.0, UInt32($0.1)) } ?? OrderKey(currentIndex, .event, 0))
        }
    }

    /// With a `share`: its notes and resynchronization notes, each with where it was made, and
    /// whether notes went unlisted (beyond `notJudgedListed`).
    var sharedNotes: (notes: [(OrderKey, String)], unlisted: Int, resync: [(OrderKey, String)]) {
        (Array(zip(noteKeys, notes)), unlistedNotes, Array(zip(resyncKeys, resyncNotes)))
    }

    /// Where vq `q` starts: its SET_VRING_BASE, or index 0 (packed: with wrap counter 1).
    private func base(_ q: Int) -> RingBase { bases[q].map(format.base) ?? .start }

    /// A ring base this format cannot place in the ring: nothing on that ring can be judged.
    private mutating func baseOutsideRing(_ q: Int) -> Bool {
        let b = base(q)
        guard format == .packed, sizes[q] != 0, UInt32(b.index) >= sizes[q] else { return false }
        noteNotJudged("vq \(q): SET_VRING_BASE \(b.packedRaw) (\(b)) names no slot of a packed ring of \(sizes[q]): the ring was not judged")
        return true
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
                let f = RingFeatures(features)
                for q in queues.indices where queues.has(q) {
                    // Ring state is of one format: another format starts the ring over.
                    if queues.format(q) != format { drop(q); continue }
                    queues.setFeatures(q, f)
                }
                for q in polled.indices where polled.has(q) {
                    if polled.format(q) != format { endPolledRing(q); continue }
                    polled.setFeatures(q, f)
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
                if format.isValidQueueSize(n) {
                    resize(q, to: n)
                } else {
                    v.append(Violation(format.sizeRule, "SET_VRING_NUM \(n) on vq \(q) was accepted, but \(format.sizeRequirement) (vhost: -EINVAL)"))
                }
            }
            return v
        case .setVringAddr:
            return device.ringMessage("SET_VRING_ADDR", vq: vq!, result: r) { $0.addrSet = true }
        case .setVringBase:
            let q = vq!
            let v = device.ringMessage("SET_VRING_BASE", vq: q, result: r) { _ in }
            if ok {
                bases[q] = e.p0
                if baseOutsideRing(q) {
                    drop(q)
                    endPolledRing(q)
                }
                if queues.has(q) { queues.setBase(q, base(q)) }
                if polled.has(q) { polled.setBase(q, base(q)) }
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
            if ok && header.flags.contains(.sampled) {
                drop(vq!)
                endPolledRing(vq!)
                // Only the share that follows the ring can see it observed.
                if format == .packed, judges(vq) { packedUnobserved.insert(vq!) }
            }
            // "No fd": the back-end polls the ring, which is then started at once (vhost-user.rst).
            let polls = Self.noFd(e.p0, profile: profile)
            return device.ringMessage("SET_VRING_KICK", vq: vq!, result: r) { $0.kickSet = true; $0.stopped = false; if polls { $0.started = true } }
        case .setVringCall:
            // "No fd" (vhost-user bit 8: the front-end polls) or fd -1 (kernel): the device cannot
            // interrupt, so no interrupt is owed; a window published before a call fd existed owes none.
            let can = !Self.noFd(e.p0, profile: profile)
            if ok && can { queues.interrupt(vq!) }
            return device.ringMessage("SET_VRING_CALL", vq: vq!, result: r) { $0.canInterrupt = can }
        case .setVringEnable:
            if ok && e.p0 != 0 { disabledAtLastPoll[vq!] = false }
            return device.ringMessage("SET_VRING_ENABLE", vq: vq!, result: r) { $0.enabled = e.p0 != 0; $0.enableSent = true }
        case .setBackend:
            let detach = e.p0 == UInt64.max
            return device.ringMessage("VHOST_NET_SET_BACKEND", vq: vq!, result: r) { ring in
                if detach { ring.stopped = true; ring.started = false } else { ring.kickSet = true; ring.stopped = false; ring.started = true }
                ring.backendAttached = !detach
            }
        case .newWorker:
            if ok && device.liveWorkers.count >= Self.liveWorkerBudget && !device.liveWorkers.contains(Int(clamping: e.p0)) {
                fatal = "VHOST_NEW_WORKER would make more than \(Self.liveWorkerBudget) workers alive at once, beyond the checker's budget"
                return []
            }
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

    private mutating func driver(_ e: TraceEvent, vq q: Int, into v: inout [Violation]) {
        guard queue(q), let step = RingStep(event: e) else { return } // size unknown: nothing the model can follow yet
        let r: StepEffect
        switch step {
        case .writeIndirect, .writePackedIndirect:
            // An indirect entry: account for it, and enforce `indirectBudget`.
            let before = queues.indirectCost(q)
            r = queues.apply(q, step, into: &v)
            indirectHeld += queues.indirectCost(q) - before
            enforceIndirectBudget()
        default:
            // The model appends its findings to `v` in place (a foreign step appends none).
            r = queues.apply(q, step, into: &v)
        }
        if r.foreign { noteForeign(e, vq: q); return }
        if r.exposed > 0, case .tx(let k) = role(q), let why = inactiveReason(tx: k, vq: q) {
            v.append(Violation(.netTxqInactive, "driver makes \(r.exposed) buffer(s) available on TX[\(k)] (vq \(q)), \(why)"))
        }
    }

    private mutating func deviceAction(_ e: TraceEvent, vq q: Int, into v: inout [Violation]) {
        let ring = device.ring(q)
        _ = queue(q)
        if isVMMControlQueue(q) {
            // linux-upstream: the VMM serves the control queue; vhost ring setup does not apply.
        } else if ring.stopped {
            v.append(Violation(.vhostRingStopped, "device \(e.kind.name) on vq \(q) after GET_VRING_BASE stopped the ring"))
        } else if !ring.ready || (!queues.has(q) && !polled.has(q)) {
            let missing = ring.missing + (!queues.has(q) && !polled.has(q) && ring.sizeSet ? ["a valid size"] : [])
            v.append(Violation(.vhostRingNotReady, "device \(e.kind.name) on vq \(q) before the ring was set up (missing: \(missing.joined(separator: ", ")))"))
        }
        // Sending an interrupt consumes nothing: a notifier thread may send it (issue 10, false positive 2).
        if e.worker != TraceEvent.none && e.kind != .interrupt { device.checkDeviceWork(vq: q, worker: Int(e.worker), into: &v) }
        guard queues.has(q) else { return }
        if e.kind == .interrupt {
            queues.interrupt(q)
            return
        }
        guard let step = RingStep(event: e) else { return }
        let r = queues.apply(q, step, into: &v)
        if r.foreign { noteForeign(e, vq: q); return }
        if r.completed > 0, case .rx(let k) = role(q), let why = inactiveReason(rx: k, vq: q) {
            v.append(Violation(.netRxqInactive, "device completes receive buffers on RX[\(k)] (vq \(q)), \(why)"))
        }
    }

    /// An event of the other ring format than the features select: nothing it says about the ring
    /// can be judged.
    private mutating func noteForeign(_ e: TraceEvent, vq q: Int) {
        noteNotJudged("vq \(q): \(e.kind.name) is a \(format == .split ? "packed" : "split")-ring event, but the negotiated features select \(format) rings; such events were not judged")
    }

    private mutating func worker(_ e: TraceEvent, vq q: Int, into v: inout [Violation]) {
        let w = Int(e.worker)
        switch e.kind {
        case .serviceBegin:
            guard e.worker != TraceEvent.none else { return }
            device.serviceBegin(vq: q, worker: w, into: &v)
        case .serviceEnd:
            // The pass deadline is kernel vhost's (vhost_notify runs in the pass that published);
            // vhost-user sets no deadline but the trace end (issue 10, false positive 4).
            if profile != .vhostUser, let owed = queues.owedInterrupt(q), !e.isSampled, device.ring(q).canInterrupt {
                v.append(Violation(owed.rule, "worker \(w) ends its pass on vq \(q) without the interrupt the driver asked for when \(owed.when) (\(owed.reason))"))
                queues.interrupt(q) // report once per missed notification
            }
            if e.worker != TraceEvent.none { device.serviceEnd(vq: q, worker: w) }
            return
        default:
            return
        }
    }

    // MARK: virtio-net queue activity

    func role(_ q: Int) -> QueueRole { roles[q] }

    /// max_virtqueue_pairs implied by the layout.
    public var maxPairs: Int {
        switch layout {
        case .seed: return 1
        case .mq: return max(1, queues.count / 2)
        }
    }

    /// TX is gated by VQ_PAIRS_SET only. A disabled vhost-user ring is not the driver's business:
    /// the guest never sees SET_VRING_ENABLE, and the back-end must process and discard its TX.
    // Mutating for the reason `exposureChecks` gives.
    private mutating func inactiveReason(tx k: Int, vq: Int) -> String? {
        // vhost-user back-ends never see the control queue, so VQ_PAIRS_SET cannot be judged there.
        if layout == .mq && profile != .vhostUser && k >= txPairs {
            return pairsCommandSeen ? "but VQ_PAIRS_SET allows only \(txPairs) pair(s)" : "but only transmitq1 may be used before VQ_PAIRS_SET"
        }
        return nil
    }

    private func isVMMControlQueue(_ q: Int) -> Bool {
        profile == .linuxUpstream && role(q) == .control
    }

    // Mutating for the reason `exposureChecks` gives.
    private mutating func inactiveReason(rx k: Int, vq: Int) -> String? {
        if !device.ring(vq).enabled { return "but SET_VRING_ENABLE disabled that ring" }
        if layout == .mq && profile != .vhostUser && k >= rxPairs {
            return "but only \(rxPairs) receive queue(s) are active until the device uses a VQ_PAIRS_SET for more"
        }
        return nil
    }
}

struct Recent {
    // `var` for `History`'s count entries only.
    var index: UInt64
    let offset: UInt64
    let event: TraceEvent
}

/// The last few events of each of `rings` streams (a vq, or device-wide), in fixed-size rings laid
/// end to end in one array: a push is one store, with no per-vq array to check and grow. Rendered
/// only when a finding needs them.
struct History {
    private static let depth = Checker.contextDepth
    /// Ring `r` is entries `r * stride ..< (r + 1) * stride`: its count, then its `depth` events.
    private static let stride = depth + 1
    /// The events and, in the `index` of each ring's first entry, the events pushed so far (only
    /// whether it reached `depth` matters beyond that). One array rather than a second one for the
    /// counts: a push checks one buffer's uniqueness, not two (a few percent of `check`).
    private var slots: [Recent]
    init(rings: Int) {
        slots = Array(repeating: Recent(index: 0, offset: 0, event: TraceEvent(.kick)), count: rings * Self.stride)
    }
    // Inlined into `process`, which pushes every event.
    @inline(__always) mutating func push(_ r: Int, _ e: Recent) {
        let base = r * Self.stride, d = UInt64(Self.depth)
        let n = slots[base].index
        slots[base + 1 + Int(n % d)] = e
        // Past `depth` only the position in the ring matters: wrap within a multiple of it.
        slots[base].index = n + 1 < 2 * d ? n + 1 : d + (n + 1) % d
    }
    /// Ring `r`'s events, oldest first.
    func events(_ r: Int) -> [ContextEvent] {
        let n = Int(slots[r * Self.stride].index), d = Self.depth
        let order = n < d ? Array(0..<n) : (0..<d).map { (n + $0) % d }
        return order.map { i in
            let e = slots[r * Self.stride + 1 + i]
            return ContextEvent(index: e.index, offset: e.offset, text: TextForm.render(event: e.event))
        }
    }
}
