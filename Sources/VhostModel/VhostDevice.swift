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
    private var ownedCount = 0
    /// Worker count SET_OWNER's argument asked for (0 = legacy call) and what the model grants.
    public private(set) var requestedWorkers: Int = 0
    public private(set) var workers: Int = 0
    /// Whether the last SET_OWNER was the legacy form without an argument.
    public private(set) var legacyOwner = false
    /// linux-workers: live worker ids.
    public private(set) var liveWorkers: Set<Int> = []
    /// vhost-user: the back-end declared its workers and their vqs (a back-end writing its own
    /// trace, `serve`, does so with new_worker / attach_vring_worker): VHOST-MAPPING then holds it to
    /// that declaration. Without one the back-end's threads are not checked against any mapping.
    public private(set) var declaredMapping = false

    // Per-vq state is reset lazily. SET_OWNER (attachments) and the last RESET_OWNER (rings, service
    // passes) used to rewrite an entry per vq: with 32,748 queues a trace alternating the two cost
    // about 180 µs an event. A reset now bumps a generation; an entry written in an older one reads
    // as its reset value. Every answer is the same as with the eager resets (a test compares them).
    @usableFromInline private(set) var ringStore: [RingLifecycle]
    @usableFromInline private(set) var servicingStore: [Int?]
    @usableFromInline private(set) var ringStamp: [UInt32]
    @usableFromInline private(set) var ringGen: UInt32 = 0
    /// When each ring was last reset (by its pair's RESET_OWNER), and the whole device; and when
    /// and how feature negotiation last set `enabled` on rings SET_VRING_ENABLE never addressed.
    @usableFromInline private(set) var ringResetAt: [UInt64]
    @usableFromInline private(set) var wholeResetAt: UInt64 = 0
    @usableFromInline private(set) var featuresAt: UInt64?
    @usableFromInline private(set) var featuresEnabled = true
    private var clock: UInt64 = 0
    /// The worker attached to each vq (0, the default worker, unless VHOST_ATTACH_VRING_WORKER said
    /// otherwise since the last SET_OWNER), with per-worker counts and lowest-vq heaps for FREE_WORKER.
    private var attachStore: [Int]
    private var attachStamp: [UInt32]
    private var attachGen: UInt32 = 1 // every stamp starts stale: all vqs implicitly on worker 0
    private var explicitAttached = 0
    private var attachCount: [Int: Int] = [:]
    private var attachHeaps: [Int: MinHeap] = [:]
    /// Lowest vq still implicitly on worker 0 (never explicitly attached in this generation).
    private var firstImplicit = 0

    public init(profile: Profile, queueCount: Int, preset: Bool, presetWorkers: Int) {
        self.profile = profile
        self.queueCount = queueCount
        let devices = profile == .linuxUpstream ? max(1, queueCount / 2) : 1
        owned = Array(repeating: preset, count: devices)
        ownedCount = preset ? devices : 0
        attachStore = Array(repeating: 0, count: queueCount)
        attachStamp = Array(repeating: 0, count: queueCount)
        ringStore = Array(repeating: preset ? .preset : RingLifecycle(), count: queueCount)
        servicingStore = Array(repeating: nil, count: queueCount)
        ringStamp = Array(repeating: 0, count: queueCount)
        ringResetAt = Array(repeating: 0, count: queueCount)
        if preset {
            requestedWorkers = presetWorkers
            legacyOwner = presetWorkers == 0
            workers = OwnerSemantics.workers(requested: presetWorkers, profile: profile)
            if profile == .linuxUpstream { workers = devices }
            liveWorkers = [0]
        }
    }

    // MARK: per-vq state

    /// The setup and run state of vq `q`.
    // Inlinable: the checker asks on most events, and a call from its module copied the device first
    // (always inlined: left to the optimiser it was still a call, with a memcpy of the device).
    @inlinable @inline(__always) public func ring(_ q: Int) -> RingLifecycle {
        var r = ringStamp[q] == ringGen ? ringStore[q] : RingLifecycle()
        if !r.enableSent {
            let resetAt = max(ringResetAt[q], wholeResetAt)
            r.enabled = featuresAt.map { $0 > resetAt } == true ? featuresEnabled : true
        }
        return r
    }

    private mutating func setRing(_ q: Int, _ r: RingLifecycle) {
        if ringStamp[q] != ringGen { servicingStore[q] = nil; ringStamp[q] = ringGen }
        ringStore[q] = r
    }

    /// The worker inside a service pass of vq `q`, if any.
    @inlinable public func servicingWorker(_ q: Int) -> Int? { ringStamp[q] == ringGen ? servicingStore[q] : nil }

    private mutating func setServicing(_ q: Int, _ w: Int?) {
        if ringStamp[q] != ringGen { ringStore[q] = RingLifecycle(); ringStamp[q] = ringGen }
        servicingStore[q] = w
    }

    /// The worker attached to vq `q`.
    @inline(__always) public func attachedWorker(_ q: Int) -> Int { attachStamp[q] == attachGen ? attachStore[q] : 0 }

    private mutating func attach(_ q: Int, to id: Int) {
        if attachStamp[q] == attachGen {
            attachCount[attachStore[q], default: 0] -= 1
        } else {
            attachStamp[q] = attachGen
            explicitAttached += 1
        }
        attachStore[q] = id
        attachCount[id, default: 0] += 1
        attachHeaps[id, default: MinHeap()].push(q)
    }

    /// Number of vqs attached to worker `id`, and the lowest of them.
    private mutating func attachment(of id: Int) -> (count: Int, lowest: Int?) {
        var count = attachCount[id] ?? 0
        var lowest: Int?
        if var heap = attachHeaps[id] {
            // Entries left by later re-attachments are dropped as met (each was pushed by an event).
            while let top = heap.min, attachedWorker(top) != id { heap.popMin() }
            lowest = heap.min
            attachHeaps[id] = heap
        }
        if id == 0 {
            count += queueCount - explicitAttached
            while firstImplicit < queueCount && attachStamp[firstImplicit] == attachGen { firstImplicit += 1 }
            if firstImplicit < queueCount { lowest = min(lowest ?? firstImplicit, firstImplicit) }
        }
        return (count, count > 0 ? lowest : nil)
    }

    private mutating func resetAttachments() {
        attachGen &+= 1
        if attachGen == 0 { attachStamp = Array(repeating: UInt32.max, count: queueCount) } // wrapped: no stale stamp may match
        explicitAttached = 0
        attachCount = [:]
        attachHeaps = [:]
        firstImplicit = 0
    }

    private mutating func resetRings() {
        ringGen &+= 1
        if ringGen == 0 { ringStamp = Array(repeating: UInt32.max, count: queueCount) }
        clock += 1
        wholeResetAt = clock
    }

    /// Every vq's state at once (materialised: O(queue count); for tests and reports, not per event).
    public var rings: [RingLifecycle] { (0..<queueCount).map(ring) }
    public var attached: [Int] { (0..<queueCount).map(attachedWorker) }
    public var servicing: [Int?] { (0..<queueCount).map(servicingWorker) }

    /// Which vhost device a vq belongs to (linux-upstream: its pair).
    public func device(of vq: Int?) -> Int {
        guard profile == .linuxUpstream, let vq else { return 0 }
        return min(vq / 2, owned.count - 1)
    }

    public var anyOwned: Bool { ownedCount > 0 }

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
        ownedCount += 1
        if profile == .linuxUpstream {
            workers = ownedCount
        } else {
            requestedWorkers = requested
            legacyOwner = requested == 0
            workers = OwnerSemantics.workers(requested: requested, profile: profile)
        }
        // SET_OWNER creates the default worker and attaches it to every vq.
        liveWorkers = [0]
        resetAttachments()
        declaredMapping = false
        return []
    }

    public mutating func resetOwner(vq: Int?, result: Int16) -> [Violation] {
        let dev = device(of: vq)
        guard owned[dev] else { return requireOwner("RESET_OWNER", vq: vq, result: result) }
        guard result == 0 else { return [] }
        owned[dev] = false
        ownedCount -= 1
        if profile == .linuxUpstream, let vq {
            // vhost_dev_reset_owner resets every vq of that pair's device.
            let first = (vq / VhostNet.vqsPerDevice) * VhostNet.vqsPerDevice
            clock += 1
            for q in first..<min(first + VhostNet.vqsPerDevice, queueCount) {
                setRing(q, RingLifecycle()); servicingStore[q] = nil; ringResetAt[q] = clock
            }
        }
        if !anyOwned {
            workers = 0; liveWorkers = []
            resetRings()
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
        // Applies to every ring SET_VRING_ENABLE has not addressed since its last reset (`ring(_:)`).
        clock += 1
        featuresAt = clock
        featuresEnabled = !protocolFeatures
    }

    /// vhost-user lets feature and queue-count negotiation precede SET_OWNER (QEMU does it that way).
    public static func needsOwner(messageIsNegotiation: Bool, profile: Profile) -> Bool {
        !(profile == .vhostUser && messageIsNegotiation)
    }

    // MARK: ring setup

    /// The driver kicked `vq` (or the front-end sent an in-band VRING_KICK): a vhost-user ring with a
    /// kick fd starts on its first kick ("Ring states").
    public mutating func ringKicked(vq: Int) {
        var r = ring(vq)
        guard r.kickSet && !r.stopped && !r.started else { return }
        r.started = true
        setRing(vq, r)
    }

    /// VHOST_USER_RESET_DEVICE: every ring back to its initial state; the owner stays.
    public mutating func resetDevice(result: Int16) {
        guard result == 0 else { return }
        // Lazily, as the last RESET_OWNER does: rings and service passes back to their reset values.
        resetRings()
    }

    public mutating func ringMessage(_ what: String, vq: Int, result: Int16, update: (inout RingLifecycle) -> Void) -> [Violation] {
        let v = requireOwner(what, vq: vq, result: result)
        if result == 0 {
            var r = ring(vq)
            update(&r)
            setRing(vq, r)
        }
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
        } else if let q = attachment(of: id).lowest {
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
            attach(vq, to: id)
            if profile == .vhostUser { declaredMapping = true }
        }
        return v
    }

    // MARK: servicing

    /// The worker the profile says must serve `vq`, or nil when the profile leaves it to the back-end.
    @inline(__always) public func expectedWorker(vq: Int) -> Int? {
        switch profile {
        case .linuxWorkers: return attachedWorker(vq)
        case .vhostUser: return declaredMapping ? attachedWorker(vq) : nil
        default: return WorkerMapping.assigned(profile: profile, vq: vq, workers: workers)
        }
    }

    /// Checks that `worker` may do device work on `vq` now: mapping and backward compatibility.
    /// `mutating` for the reason `checkDeviceWork` gives (called from it on most device events).
    public mutating func checkWorker(_ worker: Int, vq: Int) -> [Violation] {
        var v: [Violation] = []
        checkWorker(worker, vq: vq, into: &v)
        return v
    }

    /// `checkWorker`, appending to `v` (the event path: no array returned per event).
    @inline(__always) public mutating func checkWorker(_ worker: Int, vq: Int, into v: inout [Violation]) {
        // vhost-net devices have only RX and TX vqs: the virtio-net control queue is the VMM's.
        if profile == .linuxUpstream && queueCount % 2 == 1 && vq == queueCount - 1 {
            v.append(Violation(.vhostMapping, "worker \(worker) serves vq \(vq), the control queue, which no vhost-net device has (the VMM handles it)"))
            return
        }
        // A worker beyond the count SET_OWNER should have produced is a compatibility break only
        // when the request was the legacy form or was clamped; otherwise it is a wrong mapping.
        if profile == .seedRFC1 || profile == .seedRFC2, workers > 0, worker >= workers, legacyOwner || requestedWorkers > workers {
            let why = legacyOwner ? "SET_OWNER without an argument (legacy) must give exactly one worker"
                : "SET_OWNER(\(requestedWorkers)) gives \(workers) worker(s) under \(profile)"
            v.append(Violation(.vhostOwnerCompat, "worker \(worker) serves vq \(vq), but \(why)"))
            return
        }
        if let want = expectedWorker(vq: vq), want != worker {
            v.append(Violation(.vhostMapping, "worker \(worker) serves vq \(vq), but \(profile) assigns it to worker \(want)"))
        }
    }

    public mutating func serviceBegin(vq: Int, worker: Int) -> [Violation] {
        var v: [Violation] = []
        serviceBegin(vq: vq, worker: worker, into: &v)
        return v
    }

    public mutating func serviceBegin(vq: Int, worker: Int, into v: inout [Violation]) {
        if let other = servicingWorker(vq), other != worker {
            v.append(Violation(.vhostSingleConsumer, "worker \(worker) starts servicing vq \(vq) while worker \(other) is still servicing it"))
        }
        checkWorker(worker, vq: vq, into: &v)
        setServicing(vq, worker)
    }

    public mutating func serviceEnd(vq: Int, worker: Int) {
        if servicingWorker(vq) == worker { setServicing(vq, nil) }
    }

    /// Device work on `vq` by `worker` outside or inside a service pass.
    /// `mutating` though it changes nothing: the checker calls it on most device events, and a
    /// non-mutating call from another module first copied the whole device (a memcpy and a retain
    /// and release of each of its arrays); a mutating one is passed the device's address.
    public mutating func checkDeviceWork(vq: Int, worker: Int) -> [Violation] {
        var v: [Violation] = []
        checkDeviceWork(vq: vq, worker: worker, into: &v)
        return v
    }

    /// `checkDeviceWork`, appending to `v` (the event path: no array returned per event).
    public mutating func checkDeviceWork(vq: Int, worker: Int, into v: inout [Violation]) {
        if let other = servicingWorker(vq), other != worker {
            v.append(Violation(.vhostSingleConsumer, "worker \(worker) works on vq \(vq) while worker \(other) is servicing it"))
            return
        }
        checkWorker(worker, vq: vq, into: &v)
    }
}

/// A binary min-heap of vq indices (FREE_WORKER names the lowest vq still attached).
struct MinHeap: Sendable {
    private var a: [Int] = []
    var min: Int? { a.first }
    mutating func push(_ v: Int) {
        a.append(v)
        var i = a.count - 1
        while i > 0, a[(i - 1) / 2] > a[i] { a.swapAt(i, (i - 1) / 2); i = (i - 1) / 2 }
    }
    mutating func popMin() {
        guard !a.isEmpty else { return }
        a.swapAt(0, a.count - 1)
        a.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < a.count, a[l] < a[m] { m = l }
            if r < a.count, a[r] < a[m] { m = r }
            if m == i { return }
            a.swapAt(i, m); i = m
        }
    }
}
