import VirtioProtocol
import VhostModel
import TraceFormat

/// Backward-compatible SET_OWNER over the whole interop matrix: old/new QEMU x old/new host
/// kernel x old/new guest x mq x vhost x any smp x numtxqs unset or any value x any kernel worker
/// cap. Mirrors `QemuNegotiation.negotiate`; `SetOwnerMatrix` enumerates the same function in
/// Swift and the two must agree.
public enum SetOwnerCompat {
    public static let name = "set-owner-compat"
    static let source = "seed @409 \"passing an argument to SET_OWNER (retaining backward compatibility)\", seed @970 \"Many combinations, but not all\", seed @1898 \"smp > 1 - vhost=on - mq=on ... then #txqueues = #cpus\", seed @2043 (the smp=4 examples), seed @1400 (rev2 cap)"

    static func prelude(kernelWorkers: String = "(ite (or (not new_kernel) (= argument 0)) 1 (ite (< argument cap) argument cap))") -> String {
        """
        ; One cell of the interop matrix. smp, numtxqs and the kernel's worker cap are unbounded
        ; integers (numtxqs may be any value, even 0 or negative: QEMU clamps it to at least 1).
        (declare-const new_qemu Bool)
        (declare-const new_kernel Bool)
        (declare-const new_guest Bool)
        (declare-const mq Bool)
        (declare-const vhost Bool)
        (declare-const smp Int)
        (declare-const numtxqs_set Bool)
        (declare-const numtxqs Int)
        (declare-const cap Int)
        (assert (>= smp 1))
        (assert (>= cap 1))
        ; QemuNegotiation.negotiate: MQ needs every party to know it, smp > 1, vhost=on and mq=on.
        (declare-const mq_active Bool)
        (assert (= mq_active (and new_qemu new_guest vhost mq (> smp 1))))
        ; TX queues: numtxqs if given, else #cpus, at least 1; one TX queue without MQ.
        (declare-const tx Int)
        (assert (= tx (ite mq_active (ite (> (ite numtxqs_set numtxqs smp) 1) (ite numtxqs_set numtxqs smp) 1) 1)))
        ; SET_OWNER's argument: a new QEMU passes the TX count only with MQ active; 0 = legacy call.
        (declare-const argument Int)
        (assert (= argument (ite (and new_qemu mq_active) tx 0)))
        ; Workers: none when vhost is off (QEMU's userspace virtio serves the device); an old kernel
        ; or the legacy call gives one; otherwise the argument clamped to the kernel's cap.
        (declare-const workers Int)
        (assert (= workers (ite (not vhost) 0 \(kernelWorkers))))
        ; Queues of the seed layout: one RX plus the TX queues.
        (declare-const queues Int)
        (assert (= queues (+ 1 tx)))

        """
    }

    static let shown = ["new_qemu", "new_kernel", "new_guest", "mq", "vhost", "smp", "numtxqs_set", "numtxqs", "cap", "tx", "argument", "workers"]

    static func claim(_ name: String, _ text: String, _ negated: String) -> Goal {
        Goal(name, text, shown: shown, smt: "(assert (not \(negated)))")
    }

    static let servedGoal = claim("every-vq-served", "with vhost on, workers are at most the queue count and the cap, so round-robin gives every vq exactly one existing worker and no worker is idle",
                                  "(=> vhost (and (<= 1 workers) (<= workers queues) (<= workers cap)))")

    static let legacyGoal = claim("legacy-one-worker", "an old kernel, or SET_OWNER without an argument, gives exactly one worker",
                                  "(=> (and vhost (or (not new_kernel) (= argument 0))) (= workers 1))")

    static let goals: [Goal] = [
        claim("starts", "every cell starts: at least one TX queue, and with vhost on at least one worker",
              "(and (>= tx 1) (=> vhost (>= workers 1)))"),
        servedGoal,
        legacyGoal,
        claim("old-qemu-legacy-call", "an old QEMU never passes an argument (the kernel sees the legacy call)",
              "(=> (not new_qemu) (= argument 0))"),
        claim("old-guest-one-txq", "an old guest gets exactly one TX queue",
              "(=> (not new_guest) (= tx 1))"),
        claim("mq-off-unchanged", "with mq off or smp = 1 nothing changes from the original code: one TX queue, legacy SET_OWNER (seed @6092)",
              "(=> (or (not mq) (= smp 1)) (and (= tx 1) (= argument 0)))"),
        claim("vhost-off-userspace", "with vhost off no vhost worker exists and no SET_OWNER is issued",
              "(=> (not vhost) (and (= workers 0) (= argument 0)))"),
        seedExample("seed-smp4-vhost", mq: false, numtxqs: nil, expect: 1),
        seedExample("seed-smp4-mq", mq: true, numtxqs: nil, expect: 4),
        seedExample("seed-smp4-numtxqs8", mq: true, numtxqs: 8, expect: 8),
        seedExample("seed-smp4-numtxqs2", mq: true, numtxqs: 2, expect: 2),
    ]

    /// The seed's smp=4 examples (seed @2043), all parties new.
    static func seedExample(_ name: String, mq: Bool, numtxqs: Int?, expect: Int) -> Goal {
        let opts = "vhost=on" + (mq ? ",mq=on" : "") + (numtxqs.map { ",numtxqs=\($0)" } ?? "")
        return Goal(name, "seed example: smp=4, \(opts) gives #txqueues = \(expect)", shown: shown, smt: """
        (assert (and new_qemu new_kernel new_guest vhost (= smp 4) \(mq ? "mq" : "(not mq)")))
        (assert \(numtxqs.map { "(and numtxqs_set (= numtxqs \($0)))" } ?? "(not numtxqs_set)"))
        (assert (not (= tx \(expect))))
        """)
    }

    public static var property: Spec {
        Spec(name: name, kind: .property, source: source,
             summary: "Every cell of the interop matrix (old/new QEMU x old/new kernel x old/new guest x mq x vhost x any smp x numtxqs unset or any value x any kernel worker cap) negotiates a valid configuration: it starts, every vq has exactly one existing worker, an old kernel or the legacy SET_OWNER gives one worker, an old guest gets one TX queue. The seed's examples are instances. A Swift enumeration of the same function must agree.",
             prelude: prelude(), goals: goals)
    }

    static func words(_ m: Model) -> String {
        func b(_ k: String, _ t: String, _ f: String) -> String { m.bool(k) == true ? t : f }
        let n = m.bool("numtxqs_set") == true ? "\(m.int("numtxqs") ?? 0)" : "unset"
        return "\(b("new_qemu", "new", "old")) QEMU, \(b("new_kernel", "new", "old")) kernel (cap \(m.int("cap") ?? -1)), \(b("new_guest", "new", "old")) guest, smp=\(m.int("smp") ?? -1) vhost=\(b("vhost", "on", "off")) mq=\(b("mq", "on", "off")) numtxqs=\(n)"
    }

    public static var variants: [Spec] {
        [
            Spec(name: name + "/old-kernel-two-workers", kind: .variant(of: name), source: source,
                 summary: "A kernel that honours SET_OWNER's argument whatever its generation: an old kernel, which only knows the legacy call, ends up with more than one worker.",
                 prelude: prelude(kernelWorkers: "(ite (= argument 0) 1 (ite (< argument cap) argument cap))"), goals: [legacyGoal],
                 smallWitness: "(assert (<= smp 4)) (assert (<= cap 2)) (assert (not numtxqs_set))",
                 explain: { m in
                     "\(words(m)): QEMU passes \(m.int("argument") ?? -1), which the old kernel cannot see, yet \(m.int("workers") ?? -1) workers serve the device"
                 },
                 trace: { m in MappingTraces.legacyOwnerExtraWorker(txQueues: m.int("tx") ?? 2) }),
            Spec(name: name + "/uncapped", kind: .variant(of: name), source: source,
                 summary: "A rev2 kernel that forgets its cap (seed @1400 \"Restrict number of vhost threads to 2\") and grants whatever SET_OWNER asks for.",
                 prelude: prelude(kernelWorkers: "(ite (or (not new_kernel) (= argument 0)) 1 argument)"), goals: [servedGoal],
                 smallWitness: "(assert (= cap \(Profile.seedRFC2MaxWorkers))) (assert (<= smp 4)) (assert (not numtxqs_set))",
                 explain: { m in
                     "\(words(m)): QEMU asks for \(m.int("argument") ?? -1) workers and gets \(m.int("workers") ?? -1), above the kernel's cap of \(m.int("cap") ?? -1)"
                 },
                 trace: { m in
                     // Only a rev2 cell (cap 2) has a profile to check it against.
                     guard m.int("cap") == Profile.seedRFC2MaxWorkers, let arg = m.int("argument"), let tx = m.int("tx"), arg > Profile.seedRFC2MaxWorkers else { return nil }
                     let extra = Profile.seedRFC2MaxWorkers   // the first worker beyond the cap
                     return MappingTraces.wrongWorker(workers: arg, vq: extra, worker: extra, profile: .seedRFC2, queues: 1 + tx, expect: .vhostOwnerCompat)
                 }),
        ]
    }
}

/// The same matrix, enumerated in Swift over `QemuNegotiation.negotiate` (the function the
/// checker and simulators use). Z3 covers every value symbolically; this covers a finite slice
/// concretely, and the two must reach the same verdict.
public enum SetOwnerMatrix {
    public struct Cell: Sendable, CustomStringConvertible {
        public let input: NegotiationInput
        public let result: NegotiationResult
        public var description: String { "\(input) cap=\(input.kernelWorkerCap == Int.max ? "unlimited" : String(input.kernelWorkerCap)) -> \(result)" }
    }

    public static let smpRange = 1...8
    public static let numtxqsValues: [Int?] = [nil] + Array(-1...10) + [16, 64]
    public static let caps = [1, Profile.seedRFC2MaxWorkers, 3, Int.max]

    public static var cells: [NegotiationInput] {
        var out: [NegotiationInput] = []
        let bools = [false, true]
        for q in bools { for k in bools { for g in bools { for mq in bools { for v in bools {
            for smp in smpRange { for n in numtxqsValues { for cap in caps {
                out.append(NegotiationInput(smp: smp, vhost: v, mq: mq, numtxqs: n, newQemu: q, newKernel: k, newGuest: g, kernelWorkerCap: cap))
            } } }
        } } } } }
        return out
    }

    /// The claims of the Z3 property, checked on one concrete cell; returns the broken ones.
    public static func broken(_ i: NegotiationInput, _ r: NegotiationResult) -> [String] {
        var bad: [String] = []
        let arg = r.setOwnerArgument ?? 0
        if !(r.txQueues >= 1 && (!i.vhost || r.workers >= 1)) { bad.append("starts") }
        if i.vhost && !(1 <= r.workers && r.workers <= r.queueCount && r.workers <= i.kernelWorkerCap) { bad.append("every-vq-served") }
        if i.vhost && (!i.newKernel || arg == 0) && r.workers != 1 { bad.append("legacy-one-worker") }
        if !i.newQemu && arg != 0 { bad.append("old-qemu-legacy-call") }
        if !i.newGuest && r.txQueues != 1 { bad.append("old-guest-one-txq") }
        if (!i.mq || i.smp == 1) && !(r.txQueues == 1 && arg == 0) { bad.append("mq-off-unchanged") }
        if !i.vhost && !(r.workers == 0 && arg == 0) { bad.append("vhost-off-userspace") }
        return bad
    }

    /// Enumerates every cell; returns the cell count and the first failures (empty when all hold),
    /// including the seed's smp=4 examples.
    public static func check() -> (cells: Int, failures: [String]) {
        var failures: [String] = []
        let all = cells
        for i in all {
            let r = QemuNegotiation.negotiate(i)
            let b = broken(i, r)
            if !b.isEmpty && failures.count < 5 { failures.append("\(i) -> \(r): \(b.joined(separator: ", "))") }
        }
        for (mq, n, want) in [(false, nil as Int?, 1), (true, nil, 4), (true, 8, 8), (true, 2, 2)] {
            let r = QemuNegotiation.negotiate(NegotiationInput(smp: 4, vhost: true, mq: mq, numtxqs: n))
            if r.txQueues != want { failures.append("seed example smp=4 mq=\(mq) numtxqs=\(n.map(String.init) ?? "unset"): \(r.txQueues) TX queues, seed says \(want)") }
        }
        return (all.count, failures)
    }
}
