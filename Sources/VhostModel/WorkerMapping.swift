import VirtioProtocol

/// Queue-to-worker mapping for each profile: which worker serves vq `q`.
/// Proven total, in range and balanced in `Specs/smt/mapping-*.smt2`.
public enum WorkerMapping {
    /// rev1 / rev2 round-robin: vq q is served by worker q mod W.
    /// With the seed layout this gives RX (vq 0) to worker 0 and TX[i] (vq i+1) to (i+1) mod W,
    /// which is the seed's table for numtxqs=4, W=2.
    public static func roundRobin(vq: Int, workers: Int) -> Int {
        precondition(workers > 0)
        return vq % workers
    }

    /// Linux upstream vhost-net: one device per RX/TX pair, each with its own default worker,
    /// so vq 2k and 2k+1 share worker k. The control queue is handled by the VMM, not by vhost.
    public static func perPair(vq: Int) -> Int { vq / VhostNet.vqsPerDevice }

    /// The worker a static profile assigns; nil for profiles without a static assignment
    /// (`linux-workers` follows explicit attachments, `vhost-user` lets the back-end choose).
    public static func assigned(profile: Profile, vq: Int, workers: Int) -> Int? {
        switch profile {
        case .seedRFC1, .seedRFC2: return roundRobin(vq: vq, workers: max(workers, 1))
        case .linuxUpstream: return perPair(vq: vq)
        case .linuxWorkers, .vhostUser: return nil
        }
    }

    /// Per-worker load of the round-robin mapping: number of vqs worker r serves among q vqs.
    public static func roundRobinLoad(worker r: Int, queues q: Int, workers w: Int) -> Int {
        r < q ? (q - r + w - 1) / w : 0
    }
}

/// SET_OWNER semantics across generations (seed @452: an argument to SET_OWNER, "retaining
/// backward compatibility"; seed @1400: rev2 caps the threads at 2).
public enum OwnerSemantics {
    /// Workers a kernel creates for `SET_OWNER(requested)`; `requested == 0` is the legacy call
    /// with no argument. Old kernels ignore any argument and give one worker. Choice documented in
    /// `Specs/profiles.md`: an over-large request is clamped to the cap, not refused, so a new
    /// QEMU never fails to start on a rev2 kernel.
    public static func workers(requested: Int, profile: Profile) -> Int {
        switch profile {
        case .seedRFC2: return requested == 0 ? 1 : min(requested, Profile.seedRFC2MaxWorkers)
        case .seedRFC1: return requested == 0 ? 1 : requested
        case .linuxUpstream, .linuxWorkers, .vhostUser: return 1 // SET_OWNER takes no argument upstream
        }
    }
}
