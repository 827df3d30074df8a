import Testing
import VirtioProtocol
import VhostModel

/// The seed RFC's examples, as tests. Seed @1898: "smp > 1 - vhost=on - mq=on ... then
/// #txqueues = #cpus", @2054 onwards: the four examples for an smp=4 guest.
@Suite struct SeedQemuTableTests {
    static let smp4 = (smp: 4, expectations: [
        (vhost: true, mq: false, numtxqs: Int?.none, tx: 1),   // "vhost=on -> #txqueues = 1"
        (vhost: true, mq: true, numtxqs: Int?.none, tx: 4),    // "vhost=on,mq=on -> #txqueues = 4"
        (vhost: true, mq: true, numtxqs: Int?(8), tx: 8),      // "vhost=on,mq=on,numtxqs=8 -> #txqueues = 8"
        (vhost: true, mq: true, numtxqs: Int?(2), tx: 2),      // "vhost=on,mq=on,numtxqs=2 -> #txqueues = 2"
    ])

    @Test("seed table: smp=4 guest gets 1, 4, 8 and 2 TX queues", arguments: 0..<4)
    func seedExample(_ i: Int) {
        let x = Self.smp4.expectations[i]
        let r = QemuNegotiation.negotiate(NegotiationInput(smp: 4, vhost: x.vhost, mq: x.mq, numtxqs: x.numtxqs))
        #expect(r.txQueues == x.tx)
        #expect(r.queueCount == 1 + x.tx, "seed layout: one RX queue plus the TX queues")
    }

    @Test("MQ is off by default: mq=off gives one TX queue and the legacy SET_OWNER")
    func mqOffByDefault() {
        let r = QemuNegotiation.negotiate(NegotiationInput(smp: 8, vhost: true, mq: false))
        #expect(r.txQueues == 1 && r.setOwnerArgument == 0 && r.workers == 1)
    }

    @Test("smp=1 keeps a single TX queue even with mq=on")
    func uniprocessorGuest() {
        #expect(QemuNegotiation.negotiate(NegotiationInput(smp: 1, vhost: true, mq: true)).txQueues == 1)
    }

    @Test("choice: mq=on with vhost=off gives one TX queue and no SET_OWNER at all")
    func mqWithoutVhost() {
        let r = QemuNegotiation.negotiate(NegotiationInput(smp: 4, vhost: false, mq: true, numtxqs: 4))
        #expect(r.txQueues == 1 && r.setOwnerArgument == nil && r.workers == 0)
    }

    @Test("choice: an old guest on a new host gets one TX queue and the legacy call")
    func oldGuestNewHost() {
        let r = QemuNegotiation.negotiate(NegotiationInput(smp: 4, vhost: true, mq: true, numtxqs: 4, newGuest: false))
        #expect(r.txQueues == 1 && r.setOwnerArgument == 0 && r.workers == 1)
    }

    @Test("backward compatibility: an old kernel ignores the argument and runs one worker")
    func newQemuOldKernel() {
        let r = QemuNegotiation.negotiate(NegotiationInput(smp: 4, vhost: true, mq: true, newKernel: false))
        #expect(r.txQueues == 4 && r.workers == 1)
    }

    @Test("backward compatibility: an old QEMU never passes an argument")
    func oldQemuNewKernel() {
        let r = QemuNegotiation.negotiate(NegotiationInput(smp: 4, vhost: true, mq: true, newQemu: false))
        #expect(r.txQueues == 1 && r.setOwnerArgument == 0 && r.workers == 1)
    }

    @Test("rev2 caps the workers at 2 however many TX queues are asked for")
    func rev2Cap() {
        let r = QemuNegotiation.negotiate(NegotiationInput(smp: 4, vhost: true, mq: true, numtxqs: 8))
        #expect(r.setOwnerArgument == 8 && r.workers == 2)
    }
}

/// Seed @1694: "vhost-0: handles RX vhost-1: handles TX[0] vhost-0: handles TX[1] vhost-1: handles
/// TX[2] vhost-0: handles TX[3]".
@Suite struct SeedWorkerTableTests {
    @Test("rev2 table for numtxqs=4: RX->0, TX[0]->1, TX[1]->0, TX[2]->1, TX[3]->0")
    func rev2Table() {
        let layout = QueueLayout.seed
        let workers = OwnerSemantics.workers(requested: 4, profile: .seedRFC2)
        #expect(workers == 2)
        #expect(WorkerMapping.assigned(profile: .seedRFC2, vq: layout.rxQueue(0), workers: workers) == 0)
        #expect((0..<4).map { WorkerMapping.assigned(profile: .seedRFC2, vq: layout.txQueue($0), workers: workers)! } == [1, 0, 1, 0])
    }

    @Test("legacy SET_OWNER without an argument gives exactly one worker in every profile", arguments: Profile.allCases)
    func legacySetOwner(_ p: Profile) {
        #expect(OwnerSemantics.workers(requested: 0, profile: p) == 1)
    }

    @Test("rev1 keeps every requested worker; rev2 clamps to 2")
    func rev1Unrestricted() {
        #expect(OwnerSemantics.workers(requested: 8, profile: .seedRFC1) == 8)
        #expect(OwnerSemantics.workers(requested: 8, profile: .seedRFC2) == 2)
    }

    @Test("linux-upstream: each RX/TX pair shares its device's worker")
    func upstreamPerPair() {
        #expect((0..<8).map { WorkerMapping.assigned(profile: .linuxUpstream, vq: $0, workers: 4)! } == [0, 0, 1, 1, 2, 2, 3, 3])
    }

    @Test("round-robin load per worker differs by at most one and sums to the queue count")
    func roundRobinBalance() {
        for w in 1...16 {
            for q in 0...64 {
                let loads = (0..<w).map { WorkerMapping.roundRobinLoad(worker: $0, queues: q, workers: w) }
                #expect(loads.reduce(0, +) == q)
                #expect((loads.max() ?? 0) - (loads.min() ?? 0) <= 1)
                #expect(loads == (0..<w).map { r in (0..<q).filter { WorkerMapping.roundRobin(vq: $0, workers: w) == r }.count })
            }
        }
    }
}

@Suite struct VhostDeviceTests {
    @Test("VHOST-OWNER-TWICE: a refused second SET_OWNER is conformant, an accepted one is not")
    func secondSetOwner() {
        var d = VhostDevice(profile: .linuxWorkers, queueCount: 2, preset: false, presetWorkers: 0)
        #expect(d.setOwner(requested: 0, vq: nil, result: 0).isEmpty)
        #expect(d.setOwner(requested: 0, vq: nil, result: -16).isEmpty)
        #expect(d.setOwner(requested: 0, vq: nil, result: 0).map(\.rule) == [.vhostOwnerTwice])
        #expect(d.resetOwner(vq: nil, result: 0).isEmpty)
        #expect(d.setOwner(requested: 0, vq: nil, result: 0).isEmpty, "RESET_OWNER releases the device")
    }

    @Test("VHOST-WORKER-LIFECYCLE: attach swaps workers, free needs the worker detached")
    func attachAndFree() {
        var d = VhostDevice(profile: .linuxWorkers, queueCount: 2, preset: true, presetWorkers: 0)
        #expect(d.newWorker(id: 1, result: 0).isEmpty)
        #expect(d.attachWorker(vq: 1, id: 1, result: 0).isEmpty)
        #expect(d.expectedWorker(vq: 1) == 1 && d.expectedWorker(vq: 0) == 0)
        #expect(d.freeWorker(id: 1, result: 0).map(\.rule) == [.vhostWorkerLifecycle])
    }

    @Test("VHOST-SINGLE-CONSUMER: a second worker entering a vq in service is flagged")
    func singleConsumer() {
        var d = VhostDevice(profile: .vhostUser, queueCount: 2, preset: true, presetWorkers: 0)
        #expect(d.serviceBegin(vq: 0, worker: 3).isEmpty)
        #expect(d.serviceBegin(vq: 0, worker: 4).map(\.rule) == [.vhostSingleConsumer])
    }
}

/// The pure parts of the rules added for the requirements table.
@Suite struct RequirementModelTests {
    @Test("VHOST-MEM-BUFFER-ADDR: a range may span adjacent regions, not a hole, and never wraps")
    func memoryTableCoverage() {
        var t = MemoryTable()
        t.replace(count: 2)
        t.add(MemoryRegion(guest: 0x100000, size: 0x100000, user: 0x7f0000100000))
        #expect(!t.complete && !t.coversGuest(0x100000, 1))
        t.add(MemoryRegion(guest: 0, size: 0x100000, user: 0x7f0000000000))
        #expect(t.complete)
        #expect(t.coversGuest(0xffff0, 0x20))          // spans both regions
        #expect(!t.coversGuest(0x1ffff0, 0x20))        // runs past the end
        #expect(t.coversGuest(0x300000, 0))            // empty ranges touch nothing
        #expect(!t.coversGuest(UInt64.max - 4, 16))    // wraps
        #expect(t.coversUser(0x7f00000ff000, 0x2000) && !t.coversUser(0x7f0000200000, 1))
        t.replace(count: MemoryTable.maxRegions + 1)
        #expect(!t.complete)
    }

    @Test("VHOST-LOG-BEFORE-USED: only marks made since the exposure count, page by page")
    func dirtyLogMarks() {
        var log = DirtyLog()
        log.features(Features([.logAll])); log.setLogBase()
        #expect(log.active)
        log.mark(addr: 0x3000, len: 0x1000, serial: 5, keepSince: 0)
        #expect(log.unmarked(addr: 0x3ff0, len: 0x20, since: 4) == [4])   // page 0x4000 is not marked
        #expect(log.unmarked(addr: 0x3000, len: 0x1000, since: 6) == [3]) // marked before the exposure
        log.mark(addr: 0x4000, len: 1, serial: 7, keepSince: 0)
        #expect(log.unmarked(addr: 0x3ff0, len: 0x20, since: 4).isEmpty)
        #expect(log.unmarked(addr: 0, len: 0, since: 0).isEmpty)
    }

    @Test("vhost-user gating says nothing where the trace does not show what was offered or negotiated")
    func gatingIsSound() {
        let preset = VhostUserGating(headerFeatures: 0, preset: true)
        #expect(preset.needsProtocol("GET_QUEUE_NUM", .mq, offerSuffices: true).isEmpty)
        #expect(preset.inbandMessage("VRING_KICK", vq: 0).isEmpty)
        var g = VhostUserGating(headerFeatures: 0, preset: false)
        #expect(g.needsProtocol("GET_QUEUE_NUM", .mq, offerSuffices: true).map(\.rule) == [.vhostUserProtocolGate])
        _ = g.setProtocolFeatures(0x8)   // acknowledged without MQ: the offer is still unknown
        #expect(g.needsProtocol("GET_QUEUE_NUM", .mq, offerSuffices: true).isEmpty)
        g.getProtocolFeatures(offered: 0x8)
        #expect(g.needsProtocol("GET_QUEUE_NUM", .mq, offerSuffices: true).map(\.rule) == [.vhostUserProtocolGate])
        g.getQueueNum(2)
        #expect(g.ringMessage("SET_VRING_NUM", vq: 3).isEmpty && !g.ringMessage("SET_VRING_NUM", vq: 4).isEmpty)
        let complete = g.setProtocolFeatures(1 << 14 | 1 << 5 | 1 << 3)
        let noBackendReq = g.setProtocolFeatures(1 << 14 | 1 << 3)
        #expect(complete.isEmpty && noBackendReq.map(\.rule) == [.vhostUserInbandGate])
    }

    @Test("VHOST-USER-DISABLED-TX-DRAIN: a deadline passes only after the bound, and backwards time disables it")
    func drainDeadline() {
        var d = DisabledTxDrain(queueCount: 2)
        let first = d.tick(100)
        #expect(first)
        d.exposed(vq: 1, head: 3, at: 100)
        let atBound = d.overdue(now: 100 + DisabledTxDrain.bound)
        let past = d.overdue(now: 101 + DisabledTxDrain.bound)
        let again = d.overdue(now: 102 + DisabledTxDrain.bound)
        #expect(atBound.isEmpty && past.map(\.head) == [3] && again.isEmpty) // reported once
        d.exposed(vq: 1, head: 4, at: 200)
        let forward = d.tick(200), backward = d.tick(150)
        #expect(forward && !backward)
        let late = d.overdue(now: 10 * DisabledTxDrain.bound)
        #expect(late.isEmpty)
    }
}
