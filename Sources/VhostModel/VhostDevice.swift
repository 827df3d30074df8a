import VirtioProtocol

/// The vhost side of one virtio-net device: ownership, workers and their attachment to vqs,
/// ring lifecycle and who is servicing each vq. Pure state machine; each method is one control
/// message or worker action and returns the rules it broke.
///
/// Control messages carry their result as recorded (0 or -errno): the model judges what the
/// back-end accepted, so a refused message that should be refused is fine, and an accepted one
/// that should have been refused is the violation.
public struct VhostDevice: Sendable {
    public let profile: Profile
    public let queueCount: Int
    /// Owner per vhost device: one for every profile but linux-upstream, which has one per pair.
    public private(set) var owned: [Bool]
    /// Worker count SET_OWNER's argument asked for (0 = legacy call) and what the model grants.
    public private(set) var requestedWorkers: Int = 0
    public private(set) var workers: Int = 0
    /// Whether the last SET_OWNER was the legacy form without an argument.
    public private(set) var legacyOwner = false
    /// linux-workers: live worker ids and the worker attached to each vq.
    public private(set) var liveWorkers: Set<Int> = []
    public private(set) var attached: [Int]
    public private(set) var rings: [RingLifecycle]
    /// Worker currently inside a service pass of each vq.
    public private(set) var servicing: [Int?]

    public init(profile: Profile, queueCount: Int, preset: Bool, presetWorkers: Int) {
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
    public func device(of vq: Int?) -> Int {
        guard profile == .linuxUpstream, let vq else { return 0 }
        return min(vq / 2, owned.count - 1)
    }

    public var anyOwned: Bool { owned.contains(true) }

    // MARK: ownership

    public mutating func setOwner(requested: Int, vq: Int?, result: Int16) -> [Violation] {
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

    public mutating func resetOwner(vq: Int?, result: Int16) -> [Violation] {
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
    /// On linux-upstream a device-wide message (no vq) cannot say which pair's device it went to:
    /// it is judged against the devices as a group (any owned device makes it legal).
    public func requireOwner(_ what: String, vq: Int?, result: Int16) -> [Violation] {
        let has = (profile == .linuxUpstream && vq == nil) ? anyOwned : owned[device(of: vq)]
        guard result == 0, !has else { return [] }
        return [Violation(.vhostOwnerFirst, "\(what) succeeded before SET_OWNER (expected -EPERM: the device has no owner)")]
    }

    /// vhost-user: with VHOST_USER_F_PROTOCOL_FEATURES negotiated every ring starts disabled until
    /// SET_VRING_ENABLE; without it, the back-end enables them all at once.
    public mutating func featuresNegotiated(protocolFeatures: Bool) {
        guard profile == .vhostUser else { return }
        for q in rings.indices where !rings[q].enableSent { rings[q].enabled = !protocolFeatures }
    }

    /// vhost-user lets feature and queue-count negotiation precede SET_OWNER (QEMU does it that way).
    public static func needsOwner(messageIsNegotiation: Bool, profile: Profile) -> Bool {
        !(profile == .vhostUser && messageIsNegotiation)
    }

    // MARK: ring setup

    /// The driver kicked `vq` (or the front-end sent an in-band VRING_KICK): a vhost-user ring with a
    /// kick fd starts on its first kick ("Ring states").
    public mutating func ringKicked(vq: Int) {
        if rings[vq].kickSet && !rings[vq].stopped { rings[vq].started = true }
    }

    /// VHOST_USER_RESET_DEVICE: every ring back to its initial state; the owner stays.
    public mutating func resetDevice(result: Int16) {
        guard result == 0 else { return }
        rings = Array(repeating: RingLifecycle(), count: queueCount)
        servicing = Array(repeating: nil, count: queueCount)
    }

    public mutating func ringMessage(_ what: String, vq: Int, result: Int16, update: (inout RingLifecycle) -> Void) -> [Violation] {
        let v = requireOwner(what, vq: vq, result: result)
        if result == 0 { update(&rings[vq]) }
        return v
    }

    // MARK: linux-workers (6.5+)

    public mutating func newWorker(id: Int, result: Int16) -> [Violation] {
        let v = requireOwner("VHOST_NEW_WORKER", vq: nil, result: result)
        if result == 0 { liveWorkers.insert(id) }
        return v
    }

    public mutating func freeWorker(id: Int, result: Int16) -> [Violation] {
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

    public mutating func attachWorker(vq: Int, id: Int, result: Int16) -> [Violation] {
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
    public func expectedWorker(vq: Int) -> Int? {
        switch profile {
        case .linuxWorkers: return attached[vq]
        default: return WorkerMapping.assigned(profile: profile, vq: vq, workers: workers)
        }
    }

    /// Checks that `worker` may do device work on `vq` now: mapping and backward compatibility.
    public func checkWorker(_ worker: Int, vq: Int) -> [Violation] {
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

    public mutating func serviceBegin(vq: Int, worker: Int) -> [Violation] {
        var v: [Violation] = []
        if let other = servicing[vq], other != worker {
            v.append(Violation(.vhostSingleConsumer, "worker \(worker) starts servicing vq \(vq) while worker \(other) is still servicing it"))
        }
        v += checkWorker(worker, vq: vq)
        servicing[vq] = worker
        return v
    }

    public mutating func serviceEnd(vq: Int, worker: Int) {
        if servicing[vq] == worker { servicing[vq] = nil }
    }

    /// Device work on `vq` by `worker` outside or inside a service pass.
    public func checkDeviceWork(vq: Int, worker: Int) -> [Violation] {
        if let other = servicing[vq], other != worker {
            return [Violation(.vhostSingleConsumer, "worker \(worker) works on vq \(vq) while worker \(other) is servicing it")]
        }
        return checkWorker(worker, vq: vq)
    }
}
