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
