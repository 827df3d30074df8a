import VirtioProtocol

/// The seed's QEMU-side switch (seed @1898 "smp > 1 - vhost=on - mq=on ... then #txqueues = #cpus",
/// with `numtxqs` overriding), extended to the interop matrix the seed only sampled: old or new
/// QEMU, host kernel and guest. Choices where the seed is silent are in `Specs/negotiation.md`.
public struct NegotiationInput: Hashable, Sendable, CustomStringConvertible {
    public var smp: Int
    public var vhost: Bool
    public var mq: Bool
    /// `numtxqs=` option; nil when not given.
    public var numtxqs: Int?
    /// QEMU knows the mq/numtxqs options and passes a worker count to SET_OWNER.
    public var newQemu: Bool
    /// Host kernel accepts SET_OWNER's argument (multi-worker vhost).
    public var newKernel: Bool
    /// Guest driver knows multiple TX queues.
    public var newGuest: Bool
    /// Worker cap of the host kernel (rev2: 2; rev1: unlimited, modelled as Int.max).
    public var kernelWorkerCap: Int

    public init(smp: Int, vhost: Bool, mq: Bool, numtxqs: Int? = nil, newQemu: Bool = true, newKernel: Bool = true,
                newGuest: Bool = true, kernelWorkerCap: Int = Profile.seedRFC2MaxWorkers) {
        self.smp = smp; self.vhost = vhost; self.mq = mq; self.numtxqs = numtxqs
        self.newQemu = newQemu; self.newKernel = newKernel; self.newGuest = newGuest; self.kernelWorkerCap = kernelWorkerCap
    }

    public var description: String {
        "smp=\(smp) vhost=\(vhost ? "on" : "off") mq=\(mq ? "on" : "off") numtxqs=\(numtxqs.map(String.init) ?? "unset") qemu=\(newQemu ? "new" : "old") kernel=\(newKernel ? "new" : "old") guest=\(newGuest ? "new" : "old")"
    }
}

public struct NegotiationResult: Hashable, Sendable, CustomStringConvertible {
    /// TX queues the device exposes and the guest uses.
    public var txQueues: Int
    /// Argument QEMU passes to SET_OWNER (0 = legacy call without one); nil when vhost is off.
    public var setOwnerArgument: Int?
    /// vhost workers serving the device; 0 when vhost is off (QEMU's userspace virtio serves it).
    public var workers: Int

    /// Total virtqueues in the seed layout: one RX plus the TX queues.
    public var queueCount: Int { 1 + txQueues }

    public var description: String {
        "txqueues=\(txQueues) set_owner=\(setOwnerArgument.map { $0 == 0 ? "legacy" : String($0) } ?? "none") workers=\(workers)"
    }
}

public enum QemuNegotiation {
    /// What QEMU asks for and what it gets, as a pure function of the configuration.
    public static func negotiate(_ i: NegotiationInput) -> NegotiationResult {
        // MQ needs every party to know it, and (as the seed says) smp > 1, vhost=on and mq=on.
        // Choice: mq=on with vhost=off gives one TX queue (the seed ties MQ to vhost threads).
        let mqActive = i.newQemu && i.newGuest && i.vhost && i.mq && i.smp > 1
        let requested = mqActive ? max(1, i.numtxqs ?? i.smp) : 1
        guard i.vhost else { return NegotiationResult(txQueues: requested, setOwnerArgument: nil, workers: 0) }
        // Old QEMU never passes an argument; new QEMU passes one only when MQ is active,
        // so an old kernel sees exactly the legacy call it knows.
        let argument = (i.newQemu && mqActive) ? requested : 0
        let workers: Int
        if !i.newKernel || argument == 0 {
            workers = 1
        } else {
            workers = min(argument, i.kernelWorkerCap)
        }
        return NegotiationResult(txQueues: requested, setOwnerArgument: argument, workers: workers)
    }
}
