import Testing
import VirtioProtocol
@testable import VhostModel

/// VhostDevice resets its per-vq state lazily (a generation bump instead of a rewrite of every vq);
/// `ReferenceVhostDevice` below is the eager implementation it replaced, kept verbatim. Random
/// message sequences must get the same answers from both: every violation (rule and message) and
/// every vq's ring state, attachment, service pass and expected worker.
@Suite struct LazyResetTests {
    enum Op: CaseIterable { case setOwner, resetOwner, features, ring, enable, newWorker, freeWorker, attach, begin, end, work, resetDevice, kicked }

    @Test("lazy per-vq resets answer exactly as the eager ones", arguments: Profile.allCases)
    func sameAnswers(_ profile: Profile) {
        var rng = SplitMixState(seed: UInt64(profile.rawValue) &+ 11)
        for round in 0..<60 {
            let q = 1 + rng.below(7)
            let preset = rng.below(2) == 0
            var lazy = VhostDevice(profile: profile, queueCount: q, preset: preset, presetWorkers: rng.below(4))
            var eager = ReferenceVhostDevice(profile: profile, queueCount: q, preset: preset, presetWorkers: lazy.requestedWorkers)
            for step in 0..<400 {
                let vq = rng.below(q), optVq: Int? = rng.below(3) == 0 ? nil : vq
                let result: Int16 = rng.below(5) == 0 ? -16 : 0
                let id = rng.below(4), worker = rng.below(3)
                var a: [Violation] = [], b: [Violation] = []
                switch Op.allCases[rng.below(Op.allCases.count)] {
                case .setOwner: a = lazy.setOwner(requested: id, vq: optVq, result: result); b = eager.setOwner(requested: id, vq: optVq, result: result)
                case .resetOwner: a = lazy.resetOwner(vq: optVq, result: result); b = eager.resetOwner(vq: optVq, result: result)
                case .features: let pf = rng.below(2) == 0; lazy.featuresNegotiated(protocolFeatures: pf); eager.featuresNegotiated(protocolFeatures: pf)
                case .ring:
                    let which = rng.below(4)
                    let f: (inout RingLifecycle) -> Void = { r in
                        switch which { case 0: r.sizeSet = true; case 1: r.addrSet = true; case 2: r.kickSet = true; r.stopped = false; default: r.stopped = true }
                    }
                    a = lazy.ringMessage("M", vq: vq, result: result, update: f); b = eager.ringMessage("M", vq: vq, result: result, update: f)
                case .enable:
                    let on = rng.below(2) == 0
                    a = lazy.ringMessage("E", vq: vq, result: result) { $0.enabled = on; $0.enableSent = true }
                    b = eager.ringMessage("E", vq: vq, result: result) { $0.enabled = on; $0.enableSent = true }
                case .newWorker: a = lazy.newWorker(id: id, result: result); b = eager.newWorker(id: id, result: result)
                case .freeWorker: a = lazy.freeWorker(id: id, result: result); b = eager.freeWorker(id: id, result: result)
                case .attach: a = lazy.attachWorker(vq: vq, id: id, result: result); b = eager.attachWorker(vq: vq, id: id, result: result)
                case .begin: a = lazy.serviceBegin(vq: vq, worker: worker); b = eager.serviceBegin(vq: vq, worker: worker)
                case .end: lazy.serviceEnd(vq: vq, worker: worker); eager.serviceEnd(vq: vq, worker: worker)
                case .work: a = lazy.checkDeviceWork(vq: vq, worker: worker); b = eager.checkDeviceWork(vq: vq, worker: worker)
                case .resetDevice: lazy.resetDevice(result: result); eager.resetDevice(result: result)
                case .kicked: lazy.ringKicked(vq: vq); eager.ringKicked(vq: vq)
                }
                #expect(a == b, "\(profile) round \(round) step \(step)")
                #expect(lazy.rings == eager.rings && lazy.attached == eager.attached && lazy.servicing == eager.servicing,
                        "\(profile) round \(round) step \(step)")
                #expect(lazy.owned == eager.owned && lazy.workers == eager.workers && lazy.liveWorkers == eager.liveWorkers && lazy.anyOwned == eager.anyOwned)
                #expect((0..<q).map { lazy.expectedWorker(vq: $0) } == (0..<q).map { eager.expectedWorker(vq: $0) })
                if a != b || lazy.rings != eager.rings { return }
            }
        }
    }
}

struct SplitMixState {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

// MARK: the eager implementation, as it was before the lazy resets

struct ReferenceVhostDevice: Sendable {
    let profile: Profile
    let queueCount: Int
    /// Owner per vhost device: one for every profile but linux-upstream, which has one per pair.
    private(set) var owned: [Bool]
    /// Worker count SET_OWNER's argument asked for (0 = legacy call) and what the model grants.
    private(set) var requestedWorkers: Int = 0
    private(set) var workers: Int = 0
    /// Whether the last SET_OWNER was the legacy form without an argument.
    private(set) var legacyOwner = false
    /// linux-workers: live worker ids and the worker attached to each vq.
    private(set) var liveWorkers: Set<Int> = []
    private(set) var attached: [Int]
    private(set) var rings: [RingLifecycle]
    /// Worker currently inside a service pass of each vq.
    private(set) var servicing: [Int?]

    init(profile: Profile, queueCount: Int, preset: Bool, presetWorkers: Int) {
        self.profile = profile
        self.queueCount = queueCount
        let devices = profile == .linuxUpstream ? max(1, queueCount / 2) : 1
        owned = Array(repeating: preset, count: devices)
        attached = Array(repeating: 0, count: queueCount)
        rings = Array(repeating: preset ? .preset : RingLifecycle(), count: queueCount)
        servicing = Array(repeating: nil, count: queueCount)
        if preset {
            requestedWorkers = presetWorkers
            legacyOwner = presetWorkers == 0
            workers = OwnerSemantics.workers(requested: presetWorkers, profile: profile)
            if profile == .linuxUpstream { workers = devices }
            liveWorkers = [0]
        }
    }

    /// Which vhost device a vq belongs to (linux-upstream: its pair).
    func device(of vq: Int?) -> Int {
        guard profile == .linuxUpstream, let vq else { return 0 }
        return min(vq / 2, owned.count - 1)
    }

    var anyOwned: Bool { owned.contains(true) }

    // MARK: ownership

    mutating func setOwner(requested: Int, vq: Int?, result: Int16) -> [Violation] {
        let dev = device(of: vq)
        if owned[dev] {
            // vhost-user has no such refusal: QEMU sends SET_OWNER once per queue pair on the
            // same socket and back-ends accept it. Kernel vhost_dev_set_owner answers -EBUSY.
            if profile == .vhostUser { return [] }
            return result == 0 ? [Violation(.vhostOwnerTwice, "SET_OWNER succeeded although the device already has an owner (expected -EBUSY until RESET_OWNER)")] : []
        }
        guard result == 0 else { return [] }
        owned[dev] = true
        if profile == .linuxUpstream {
            workers = owned.filter { $0 }.count
        } else {
            requestedWorkers = requested
            legacyOwner = requested == 0
            workers = OwnerSemantics.workers(requested: requested, profile: profile)
        }
        // SET_OWNER creates the default worker and attaches it to every vq.
        liveWorkers = [0]
        attached = Array(repeating: 0, count: queueCount)
        return []
    }

    mutating func resetOwner(vq: Int?, result: Int16) -> [Violation] {
        let dev = device(of: vq)
        guard owned[dev] else { return requireOwner("RESET_OWNER", vq: vq, result: result) }
        guard result == 0 else { return [] }
        owned[dev] = false
        if profile == .linuxUpstream, let vq {
            // vhost_dev_reset_owner resets every vq of that pair's device.
            let first = (vq / VhostNet.vqsPerDevice) * VhostNet.vqsPerDevice
            for q in first..<min(first + VhostNet.vqsPerDevice, queueCount) { rings[q] = RingLifecycle(); servicing[q] = nil }
        }
        if !anyOwned {
            workers = 0; liveWorkers = []; servicing = Array(repeating: nil, count: queueCount)
            rings = Array(repeating: RingLifecycle(), count: queueCount)
        }
        return []
    }

    /// Every message but SET_OWNER needs an owner (vhost_dev_check_owner: -EPERM).
    func requireOwner(_ what: String, vq: Int?, result: Int16) -> [Violation] {
        // As VhostDevice since issue 10: a device-wide message on linux-upstream is judged against
        // the devices as a group (the test compares laziness, not this rule).
        let has = (profile == .linuxUpstream && vq == nil) ? anyOwned : owned[device(of: vq)]
        guard result == 0, !has else { return [] }
        return [Violation(.vhostOwnerFirst, "\(what) succeeded before SET_OWNER (expected -EPERM: the device has no owner)")]
    }

    /// vhost-user: with VHOST_USER_F_PROTOCOL_FEATURES negotiated every ring starts disabled until
    /// SET_VRING_ENABLE; without it, the back-end enables them all at once.
    mutating func featuresNegotiated(protocolFeatures: Bool) {
        guard profile == .vhostUser else { return }
        for q in rings.indices where !rings[q].enableSent { rings[q].enabled = !protocolFeatures }
    }

    /// vhost-user lets feature and queue-count negotiation precede SET_OWNER (QEMU does it that way).
    static func needsOwner(messageIsNegotiation: Bool, profile: Profile) -> Bool {
        !(profile == .vhostUser && messageIsNegotiation)
    }

    // MARK: ring setup

    mutating func ringMessage(_ what: String, vq: Int, result: Int16, update: (inout RingLifecycle) -> Void) -> [Violation] {
        let v = requireOwner(what, vq: vq, result: result)
        if result == 0 { update(&rings[vq]) }
        return v
    }

    // MARK: linux-workers (6.5+)

    // Added with issue 10, eager as the rest.
    mutating func resetDevice(result: Int16) {
        guard result == 0 else { return }
        rings = Array(repeating: RingLifecycle(), count: queueCount)
        servicing = Array(repeating: nil, count: queueCount)
    }

    mutating func ringKicked(vq: Int) {
        if rings[vq].kickSet && !rings[vq].stopped { rings[vq].started = true }
    }

    mutating func newWorker(id: Int, result: Int16) -> [Violation] {
        let v = requireOwner("VHOST_NEW_WORKER", vq: nil, result: result)
        if result == 0 { liveWorkers.insert(id) }
        return v
    }

    mutating func freeWorker(id: Int, result: Int16) -> [Violation] {
        var v = requireOwner("VHOST_FREE_WORKER", vq: nil, result: result)
        guard result == 0 else { return v }
        if !liveWorkers.contains(id) {
            v.append(Violation(.vhostWorkerLifecycle, "VHOST_FREE_WORKER of unknown worker \(id) succeeded (expected -ENODEV)"))
        } else if let q = attached.firstIndex(of: id) {
            v.append(Violation(.vhostWorkerLifecycle, "VHOST_FREE_WORKER of worker \(id) succeeded while it is still attached to vq \(q) (expected -EBUSY)"))
        } else {
            liveWorkers.remove(id)
        }
        return v
    }

    mutating func attachWorker(vq: Int, id: Int, result: Int16) -> [Violation] {
        var v = requireOwner("VHOST_ATTACH_VRING_WORKER", vq: vq, result: result)
        guard result == 0 else { return v }
        if !liveWorkers.contains(id) {
            v.append(Violation(.vhostWorkerLifecycle, "VHOST_ATTACH_VRING_WORKER of unknown worker \(id) to vq \(vq) succeeded (expected -ENODEV)"))
        } else {
            attached[vq] = id
        }
        return v
    }

    // MARK: servicing

    /// The worker the profile says must serve `vq`, or nil when the profile leaves it to the back-end.
    func expectedWorker(vq: Int) -> Int? {
        switch profile {
        case .linuxWorkers: return attached[vq]
        default: return WorkerMapping.assigned(profile: profile, vq: vq, workers: workers)
        }
    }

    /// Checks that `worker` may do device work on `vq` now: mapping and backward compatibility.
    func checkWorker(_ worker: Int, vq: Int) -> [Violation] {
        // vhost-net devices have only RX and TX vqs: the virtio-net control queue is the VMM's.
        if profile == .linuxUpstream && queueCount % 2 == 1 && vq == queueCount - 1 {
            return [Violation(.vhostMapping, "worker \(worker) serves vq \(vq), the control queue, which no vhost-net device has (the VMM handles it)")]
        }
        // A worker beyond the count SET_OWNER should have produced is a compatibility break only
        // when the request was the legacy form or was clamped; otherwise it is a wrong mapping.
        if profile == .seedRFC1 || profile == .seedRFC2, workers > 0, worker >= workers, legacyOwner || requestedWorkers > workers {
            let why = legacyOwner ? "SET_OWNER without an argument (legacy) must give exactly one worker"
                : "SET_OWNER(\(requestedWorkers)) gives \(workers) worker(s) under \(profile)"
            return [Violation(.vhostOwnerCompat, "worker \(worker) serves vq \(vq), but \(why)")]
        }
        if let want = expectedWorker(vq: vq), want != worker {
            return [Violation(.vhostMapping, "worker \(worker) serves vq \(vq), but \(profile) assigns it to worker \(want)")]
        }
        return []
    }

    mutating func serviceBegin(vq: Int, worker: Int) -> [Violation] {
        var v: [Violation] = []
        if let other = servicing[vq], other != worker {
            v.append(Violation(.vhostSingleConsumer, "worker \(worker) starts servicing vq \(vq) while worker \(other) is still servicing it"))
        }
        v += checkWorker(worker, vq: vq)
        servicing[vq] = worker
        return v
    }

    mutating func serviceEnd(vq: Int, worker: Int) {
        if servicing[vq] == worker { servicing[vq] = nil }
    }

    /// Device work on `vq` by `worker` outside or inside a service pass.
    func checkDeviceWork(vq: Int, worker: Int) -> [Violation] {
        if let other = servicing[vq], other != worker {
            return [Violation(.vhostSingleConsumer, "worker \(worker) works on vq \(vq) while worker \(other) is servicing it")]
        }
        return checkWorker(worker, vq: vq)
    }
}
