import VirtioProtocol
import VhostModel
import TraceFormat

/// Queue-to-worker mapping: total, in range, balanced, the seed's rev2 table, and one consumer
/// per vq across the 6.5 worker API. Mirrors `WorkerMapping` and `OwnerSemantics`.
public enum Mapping {
    static let cap = Profile.seedRFC2MaxWorkers
    /// Round-robin balance is proven by one linear query per worker count W (mod by a numeral),
    /// each for every queue count, about 10 ms each. W ranges over 1...this bound: the rev2 cap
    /// (2) and rev1 well past the seed's own example of 16 TX queues (seed @6510 "sq[16]");
    /// `symbolicBalance` covers every W and Q below 512.
    public static let balanceWorkerLimit = 64

    static let seedSource = "seed @409 \"Multiple vhost is implemented in-kernel by passing an argument to SET_OWNER\", seed @1400 \"Restrict number of vhost threads to 2\", seed @1642 \"Working of vhost threads changes\""

    /// `OwnerSemantics.workers(requested:profile:)`; requested 0 is the legacy call.
    static func ownerPrelude(rfc1Legacy: String = "1", pairDevice: String = "(div q \(VhostNet.vqsPerDevice))") -> String {
        """
        ; linux-upstream: data vq q belongs to the vhost-net device of its pair, and is that
        ; device's vq q - 2 * device (drivers/vhost/net.c: VHOST_NET_VQ_MAX = 2 vqs per device).
        (define-fun pair_device ((q Int)) Int \(pairDevice))
        ; OwnerSemantics.workers(requested, profile): requested = 0 is SET_OWNER without an argument.
        ; seed-rfc2 clamps to the rev2 cap of \(cap) threads; seed-rfc1 grants what is asked; upstream
        ; SET_OWNER takes no argument and every vhost device gets one default worker.
        (define-fun workers_rfc2 ((r Int)) Int (ite (= r 0) 1 (ite (< r \(cap)) r \(cap))))
        (define-fun workers_rfc1 ((r Int)) Int (ite (= r 0) \(rfc1Legacy) r))
        (define-fun workers_upstream ((r Int)) Int 1)

        """
    }

    // MARK: mapping-total

    static let totalGoals: [Goal] = [
        Goal("rfc2-workers", "under seed-rfc2 every SET_OWNER (legacy or with any argument r >= 0) grants at least one worker, so vq mod W is defined for every vq",
             shown: ["r"], smt: """
        (declare-const r Int)
        (assert (>= r 0))
        (assert (not (>= (workers_rfc2 r) 1)))
        """),
        Goal("rfc1-workers", "under seed-rfc1 every SET_OWNER grants at least one worker",
             shown: ["r"], smt: """
        (declare-const r Int)
        (assert (>= r 0))
        (assert (not (>= (workers_rfc1 r) 1)))
        """),
        Goal("upstream-pairs", "under linux-upstream every data vq q < 2P belongs to a vhost device that exists (< P), is one of that device's 2 vqs, and has the device's default worker",
             shown: ["P", "q", "device"], smt: """
        (declare-const P Int)
        (declare-const q Int)
        (declare-const device Int)
        (assert (>= P 1))
        (assert (and (<= 0 q) (< q (* \(VhostNet.vqsPerDevice) P))))
        (assert (= device (pair_device q)))
        (assert (not (and (<= 0 device) (< device P)
                          (<= 0 (- q (* \(VhostNet.vqsPerDevice) device))) (< (- q (* \(VhostNet.vqsPerDevice) device)) \(VhostNet.vqsPerDevice))
                          (>= (workers_upstream 0) 1))))
        """),
    ]

    public static var total: Spec {
        Spec(name: "mapping-total", kind: .property,
             source: seedSource + "; drivers/vhost/vhost.c vhost_dev_set_owner (one default worker attached to every vq); drivers/vhost/net.c (one device per queue pair)",
             summary: "Every vq has a worker: the worker count SET_OWNER grants is at least 1 for every request under the round-robin profiles, and under linux-upstream every data vq's pair device exists with its default worker. (linux-workers: see mapping-single-consumer.)",
             prelude: ownerPrelude(), goals: totalGoals)
    }

    // MARK: mapping-range

    static func rangePrelude(assign: String = "(bvurem q W)") -> String {
        """
        ; Round-robin (seed-rfc1, seed-rfc2): vq q is served by worker q mod W, for every 16-bit vq index.
        (define-fun assign ((q (_ BitVec 16)) (W (_ BitVec 16))) (_ BitVec 16) \(assign))

        """
    }

    static let rrRange = Goal("round-robin", "for every vq index q < 2^16 and worker count W >= 1, the assigned worker q mod W is below W",
                              shown: ["q", "W"], smt: """
    (declare-const q (_ BitVec 16))
    (declare-const W (_ BitVec 16))
    (assert (not (= W #x0000)))
    (assert (not (bvult (assign q W) W)))
    """)

    public static var range: Spec {
        Spec(name: "mapping-range", kind: .property, source: seedSource + "; drivers/vhost/net.c (VHOST_NET_VQ_RX = 0, VHOST_NET_VQ_TX = 1 per device)",
             summary: "The assigned worker is one that exists: q mod W < W for every vq and W >= 1; rev2 never exceeds its cap; linux-upstream's pair worker q div 2 is below the pair count.",
             prelude: rangePrelude() + ownerPrelude(),
             goals: [
                rrRange,
                Goal("rfc2-cap", "seed-rfc2 never grants more than the rev2 cap of \(cap) workers, whatever QEMU asks for",
                     shown: ["r"], smt: """
                (declare-const r Int)
                (assert (>= r 0))
                (assert (not (<= (workers_rfc2 r) \(cap))))
                """),
                Goal("upstream-pair", "linux-upstream: for P >= 1 pairs and a data vq q < 2P, the pair worker q div 2 is below P",
                     shown: ["P", "q"], smt: """
                (declare-const P Int)
                (declare-const q Int)
                (assert (>= P 1))
                (assert (and (<= 0 q) (< q (* 2 P))))
                (assert (not (< (div q 2) P)))
                """),
             ])
    }

    // MARK: mapping-balance

    /// One query per W: the closed-form load (WorkerMapping.roundRobinLoad) counts the vqs each
    /// worker gets (by induction on the queue count Q), loads differ by at most 1, and they sum to Q.
    static func balanceGoal(_ w: Int, load: String? = nil, balanceOnly: Bool = false) -> Goal {
        let terms = (0..<w).map { "(+ (div Q \(w)) (ite (< \($0) (mod Q \(w))) 1 0))" }.joined(separator: " ")
        let sum = w == 1 ? terms : "(+ \(terms))"
        return Goal("W=\(w)", "with W = \(w) workers and any queue count Q >= 0: load(r, Q) counts the vqs q < Q with q mod \(w) = r (base and inductive step), any two loads differ by at most 1, and load(r, Q) = Q div \(w) + [r < Q mod \(w)] with the loads summing to Q",
                    shown: ["Q", "r", "s"], solver: .simple, smt: """
        (declare-const Q Int)
        (declare-const r Int)
        (declare-const s Int)
        ; WorkerMapping.roundRobinLoad: worker r serves (Q - r + W - 1) div W of Q vqs when r < Q.
        (define-fun load ((r Int) (Q Int)) Int \(load ?? "(ite (< r Q) (div (- (+ Q \(w)) r 1) \(w)) 0)"))
        (assert (>= Q 0))
        (assert (and (<= 0 r) (< r \(w)) (<= 0 s) (< s \(w))))
        \(balanceOnly ? "(assert (> (- (load r Q) (load s Q)) 1))" : """
        (assert (or
          ; counting: no vq for Q = 0, and vq Q adds one to exactly the worker Q mod W
          (not (= (load r 0) 0))
          (not (= (load r (+ Q 1)) (+ (load r Q) (ite (= (mod Q \(w)) r) 1 0))))
          ; balance
          (> (- (load r Q) (load s Q)) 1)
          ; closed form and sum
          (not (= (load r Q) (+ (div Q \(w)) (ite (< r (mod Q \(w))) 1 0))))
          (not (= \(sum) Q))))
        """)
        """)
    }

    static let pairBalance = Goal("upstream-pairs", "linux-upstream: the worker of pair k serves exactly vqs 2k and 2k+1, so every worker has load 2",
                                  shown: ["P", "k", "q"], smt: """
    (declare-const P Int)
    (declare-const k Int)
    (declare-const q Int)
    (assert (>= P 1))
    (assert (and (<= 0 k) (< k P) (<= 0 q) (< q (* 2 P))))
    (assert (not (= (= (div q 2) k) (or (= q (* 2 k)) (= q (+ (* 2 k) 1))))))
    """)

    /// Both W and Q symbolic, as 10-bit vectors (values below 512): division by a symbolic W is
    /// bit-blasted, which stays fast at this width (about 0.4 s) and not at 17 bits (> 30 s).
    static let symbolicBalance = Goal("symbolic-W-and-Q", "with both W and Q symbolic below 512 (10-bit bit-vectors, no overflow), round-robin loads differ by at most 1",
                                      shown: ["W", "Q", "r", "s"], smt: """
    (declare-const W (_ BitVec 10))
    (declare-const Q (_ BitVec 10))
    (declare-const r (_ BitVec 10))
    (declare-const s (_ BitVec 10))
    (define-fun load ((r (_ BitVec 10))) (_ BitVec 10)
      (ite (bvult r Q) (bvudiv (bvsub (bvsub (bvadd Q W) r) #b0000000001) W) #b0000000000))
    (assert (not (= W #b0000000000)))
    (assert (bvule Q #b0111111111))
    (assert (bvule W #b0111111111))
    (assert (and (bvult r W) (bvult s W)))
    (assert (bvuge (load r) (load s)))
    (assert (bvugt (bvsub (load r) (load s)) #b0000000001))
    """)

    public static var balance: Spec {
        Spec(name: "mapping-balance", kind: .property, source: seedSource + "; seed @682 \"with unrestricted #vhosts\" (rev1)",
             summary: "Round-robin (seed-rfc1, seed-rfc2) is balanced: for every W in 1...\(balanceWorkerLimit) and every queue count Q, the closed-form load counts each worker's vqs, loads differ by at most 1 and sum to Q (one linear query per W); with W and Q both symbolic below 512, loads differ by at most 1. linux-upstream gives every worker exactly its pair.",
             goals: (1...balanceWorkerLimit).map { balanceGoal($0) } + [symbolicBalance, pairBalance])
    }

    // MARK: mapping-seed-table

    static func seedTablePrelude(txVq: String = "(+ i \(QueueLayout.seed.txQueue(0)))") -> String {
        """
        ; Seed layout: RX is vq \(QueueLayout.seed.rxQueue(0)), TX[i] is vq i + \(QueueLayout.seed.txQueue(0)).
        (define-fun vq_rx () Int \(QueueLayout.seed.rxQueue(0)))
        (define-fun vq_tx ((i Int)) Int \(txVq))

        """
    }

    static let seedTableGoal = Goal("numtxqs=4", "QEMU passes numtxqs=4 to SET_OWNER, rev2 grants 2 workers, and vq mod W gives the seed's table: vhost-0 RX, vhost-1 TX[0], vhost-0 TX[1], vhost-1 TX[2], vhost-0 TX[3]",
                                    shown: ["W", "rx", "tx0", "tx1", "tx2", "tx3"], smt: """
    (declare-const W Int)
    (declare-const rx Int)
    (declare-const tx0 Int)
    (declare-const tx1 Int)
    (declare-const tx2 Int)
    (declare-const tx3 Int)
    (assert (= W (workers_rfc2 4)))
    (assert (= rx (mod vq_rx W)))
    (assert (= tx0 (mod (vq_tx 0) W)))
    (assert (= tx1 (mod (vq_tx 1) W)))
    (assert (= tx2 (mod (vq_tx 2) W)))
    (assert (= tx3 (mod (vq_tx 3) W)))
    ; seed @1694: "vhost-0: handles RX vhost-1: handles TX[0] vhost-0: handles TX[1] vhost-1: handles TX[2] vhost-0: handles TX[3]"
    (assert (not (and (= W 2) (= rx 0) (= tx0 1) (= tx1 0) (= tx2 1) (= tx3 0))))
    """)

    public static var seedTable: Spec {
        Spec(name: "mapping-seed-table", kind: .property, source: "seed @1642 \"Working of vhost threads changes, eg for numtxqs=4\", seed @1694 (the table), seed @1400 (rev2 cap of 2)",
             summary: "The seed's rev2 table for numtxqs=4 is an instance of the model: SET_OWNER(4) under seed-rfc2 grants 2 workers and vq mod 2 over the seed layout gives exactly the table.",
             prelude: ownerPrelude() + seedTablePrelude(), goals: [seedTableGoal])
    }

    // MARK: mapping-single-consumer

    static func consumerPrelude(attachGuard: String = "(= (select busy v) (- 1))",
                                freeGuard: String = "(forall ((x Int)) (=> (and (<= 0 x) (< x nvq)) (not (= (select owner x) w))))") -> String {
        """
        ; linux-workers (6.5 worker API) state: owner[v] is the worker attached to vq v (one per vq,
        ; a function), alive[w] whether worker w exists, busy[v] the worker inside a service pass of
        ; v or -1. Round-robin and per-pair profiles have a fixed owner function, a special case.
        ; Invariant: every vq's worker is alive, and only that worker is ever servicing it.
        (define-fun inv ((nvq Int) (owner (Array Int Int)) (alive (Array Int Bool)) (busy (Array Int Int))) Bool
          (forall ((x Int)) (=> (and (<= 0 x) (< x nvq))
            (and (select alive (select owner x))
                 (or (= (select busy x) (- 1)) (= (select busy x) (select owner x)))))))
        ; SET_OWNER: default worker d, attached to every vq, nobody servicing.
        (define-fun set_owner ((d Int) (owner (Array Int Int)) (alive (Array Int Bool)) (busy (Array Int Int))) Bool
          (and (= owner ((as const (Array Int Int)) d))
               (= alive (store ((as const (Array Int Bool)) false) d true))
               (= busy ((as const (Array Int Int)) (- 1)))))
        ; VHOST_NEW_WORKER returns a fresh id.
        (define-fun new_worker ((w Int) (alive (Array Int Bool)) (alive2 (Array Int Bool))) Bool
          (and (>= w 0) (not (select alive w)) (= alive2 (store alive w true))))
        ; VHOST_ATTACH_VRING_WORKER: replaces v's worker by a live one; the kernel flushes the old
        ; worker first, so no service pass of v is in progress when the switch happens.
        (define-fun attach ((nvq Int) (v Int) (w Int) (owner (Array Int Int)) (alive (Array Int Bool)) (busy (Array Int Int))
                            (owner2 (Array Int Int))) Bool
          (and (<= 0 v) (< v nvq) (>= w 0) (select alive w) \(attachGuard)
               (= owner2 (store owner v w))))
        ; VHOST_FREE_WORKER: only a live worker attached to no vq (-ENODEV / -EBUSY otherwise).
        (define-fun free_worker ((nvq Int) (w Int) (owner (Array Int Int)) (alive (Array Int Bool)) (alive2 (Array Int Bool))) Bool
          (and (select alive w) \(freeGuard)
               (= alive2 (store alive w false))))
        ; A worker starts a service pass of v only if it is v's worker and v is idle; it ends its own pass.
        (define-fun begin ((nvq Int) (v Int) (w Int) (owner (Array Int Int)) (busy (Array Int Int)) (busy2 (Array Int Int))) Bool
          (and (<= 0 v) (< v nvq) (= (select owner v) w) (= (select busy v) (- 1)) (= busy2 (store busy v w))))
        (define-fun end ((v Int) (w Int) (busy (Array Int Int)) (busy2 (Array Int Int))) Bool
          (and (= (select busy v) w) (= busy2 (store busy v (- 1)))))

        """
    }

    static let consumerState = """
    (declare-const nvq Int)
    (declare-const owner (Array Int Int))
    (declare-const alive (Array Int Bool))
    (declare-const busy (Array Int Int))
    (declare-const v Int)
    (declare-const w Int)
    (assert (>= nvq 1))
    (assert (inv nvq owner alive busy))
    """

    static func consumerStep(_ name: String, _ claim: String, decl: String, step: String, post: String) -> Goal {
        Goal(name, claim, shown: ["nvq", "v", "w"], smt: """
        \(consumerState)
        \(decl)
        (assert \(step))
        (assert (not \(post)))
        """)
    }

    static let attachGoal = consumerStep("attach", "ATTACH_VRING_WORKER preserves the invariant",
        decl: "(declare-const owner2 (Array Int Int))",
        step: "(attach nvq v w owner alive busy owner2)", post: "(inv nvq owner2 alive busy)")
    static let freeGoal = consumerStep("free", "FREE_WORKER preserves the invariant",
        decl: "(declare-const alive2 (Array Int Bool))",
        step: "(free_worker nvq w owner alive alive2)", post: "(inv nvq owner alive2 busy)")

    static let consumerGoals: [Goal] = [
        Goal("set-owner", "right after SET_OWNER every vq has the (live) default worker and nobody is servicing",
             shown: ["nvq", "d"], smt: """
        (declare-const nvq Int)
        (declare-const d Int)
        (declare-const owner (Array Int Int))
        (declare-const alive (Array Int Bool))
        (declare-const busy (Array Int Int))
        (assert (>= nvq 1))
        (assert (set_owner d owner alive busy))
        (assert (not (inv nvq owner alive busy)))
        """),
        consumerStep("new-worker", "NEW_WORKER preserves the invariant",
                     decl: "(declare-const alive2 (Array Int Bool))",
                     step: "(new_worker w alive alive2)", post: "(inv nvq owner alive2 busy)"),
        attachGoal, freeGoal,
        consumerStep("service-begin", "a service pass begins only by the vq's worker, preserving the invariant",
                     decl: "(declare-const busy2 (Array Int Int))",
                     step: "(begin nvq v w owner busy busy2)", post: "(inv nvq owner alive busy2)"),
        consumerStep("service-end", "ending a service pass preserves the invariant",
                     decl: "(declare-const busy2 (Array Int Int))",
                     step: "(end v w busy busy2)", post: "(inv nvq owner alive busy2)"),
        Goal("one-consumer", "under the invariant a vq being serviced is serviced by its one attached, live worker, and no other worker may begin a pass on it",
             shown: ["nvq", "v", "w"], smt: """
        \(consumerState)
        (declare-const busy2 (Array Int Int))
        (assert (and (<= 0 v) (< v nvq)))
        (assert (or (and (not (= (select busy v) (- 1)))
                         (or (not (= (select busy v) (select owner v))) (not (select alive (select busy v)))))
                    (and (not (= (select busy v) (- 1))) (begin nvq v w owner busy busy2))))
        """),
    ]

    public static var singleConsumer: Spec {
        Spec(name: "mapping-single-consumer", kind: .property,
             source: "uapi linux/vhost.h VHOST_NEW_WORKER / VHOST_FREE_WORKER / VHOST_ATTACH_VRING_WORKER; drivers/vhost/vhost.c vhost_free_worker (-EBUSY while attached), vhost_vq_attach_worker (flushes the old worker before switching)",
             summary: "Exactly one consumer per vq at any time, for any number of vqs and workers: after SET_OWNER, and across NEW_WORKER, ATTACH_VRING_WORKER, FREE_WORKER and service passes, every vq has one live attached worker and only that worker services it. The static profiles (round-robin, per pair) are the special case of a fixed owner function.",
             prelude: consumerPrelude(), goals: consumerGoals)
    }

    public static var properties: [Spec] { [total, range, balance, seedTable, singleConsumer] }

    // MARK: broken variants

    public static var variants: [Spec] {
        [
            Spec(name: "mapping-total/legacy-zero-workers", kind: .variant(of: "mapping-total"), source: seedSource,
                 summary: "A rev1 kernel without the \"no argument -> 1 worker\" fallback: the legacy SET_OWNER (old QEMU) gets zero workers, so no vq has a worker.",
                 prelude: ownerPrelude(rfc1Legacy: "r"), goals: [totalGoals[1]],
                 explain: { m in "SET_OWNER without an argument (r=\(m.int("r") ?? -1)) grants 0 workers: vq q mod 0 is undefined, every vq is left without a worker" },
                 trace: { _ in MappingTraces.legacyOwner() }),
            Spec(name: "mapping-total/one-device-for-all-pairs", kind: .variant(of: "mapping-total"),
                 source: "drivers/vhost/net.c (VHOST_NET_VQ_MAX = 2: one device per queue pair)",
                 summary: "linux-upstream with every pair's vqs on one vhost-net device: that device has only 2 vqs, so the vqs of the second pair on have no worker.",
                 prelude: ownerPrelude(pairDevice: "0"), goals: [totalGoals[2]],
                 smallWitness: "(assert (<= P 4))",
                 explain: { m in
                     let q = m.int("q") ?? 2
                     return "with P=\(m.int("P") ?? -1) pairs on one device, vq \(q) would be that device's vq \(q), but a vhost-net device has only vqs 0 and 1: no worker serves it"
                 },
                 trace: { m in MappingTraces.upstreamSingleDevice(pairs: max(m.int("P") ?? 2, 2), vq: max(m.int("q") ?? 2, 2)) }),
            Spec(name: "mapping-range/mod-w-plus-1", kind: .variant(of: "mapping-range"), source: seedSource,
                 summary: "Round-robin computed as q mod (W+1): one worker too many.",
                 prelude: rangePrelude(assign: "(bvurem q (bvadd W #x0001))"), goals: [rrRange],
                 smallWitness: "(assert (bvule W #x0004)) (assert (bvule q #x0008))",
                 explain: { m in
                     let q = m.int("q") ?? 0, w = m.int("W") ?? 1
                     return "with W=\(w) workers, vq \(q) goes to worker \(q % (w + 1)), which does not exist (workers are 0...\(w - 1))"
                 },
                 trace: { m in MappingTraces.wrongWorker(workers: m.int("W") ?? 1, vq: m.int("q") ?? 0, worker: (m.int("q") ?? 0) % ((m.int("W") ?? 1) + 1)) }),
            Spec(name: "mapping-balance/clamp-to-last", kind: .variant(of: "mapping-balance"), source: seedSource,
                 summary: "vq q served by worker min(q, W-1): the last worker takes every vq beyond the first W-1.",
                 goals: (2...4).map { balanceGoal($0, load: "(ite (< r (- \($0) 1)) (ite (< r Q) 1 0) (ite (< r Q) (- Q (- \($0) 1)) 0))", balanceOnly: true) },
                 smallWitness: "(assert (<= Q 8))",
                 explain: { m in
                     let w = m.goalNumber ?? 2, q = m.int("Q") ?? 0
                     let load = { (r: Int) in r < w - 1 ? (r < q ? 1 : 0) : max(0, q - (w - 1)) }
                     let r = m.int("r") ?? 0, s = m.int("s") ?? 0
                     return "with W=\(w) workers and Q=\(q) vqs, worker \(r) serves \(load(r)) vqs and worker \(s) serves \(load(s)) (round-robin: \(WorkerMapping.roundRobinLoad(worker: r, queues: q, workers: w)) and \(WorkerMapping.roundRobinLoad(worker: s, queues: q, workers: w)))"
                 },
                 trace: { m in
                     let w = m.goalNumber ?? 2
                     return MappingTraces.clampToLast(workers: w, queues: max(m.int("Q") ?? 0, w + 1))
                 }),
            Spec(name: "mapping-seed-table/tx-without-rx-offset", kind: .variant(of: "mapping-seed-table"), source: "seed @1694",
                 summary: "TX[i] mapped by i mod W, forgetting that RX occupies vq 0 in the seed layout.",
                 prelude: ownerPrelude() + seedTablePrelude(txVq: "i"), goals: [seedTableGoal],
                 explain: { m in
                     "TX[0] goes to vhost-\(m.int("tx0") ?? -1), TX[1] to vhost-\(m.int("tx1") ?? -1) (the seed's table: TX[0] vhost-1, TX[1] vhost-0)"
                 },
                 trace: { m in MappingTraces.wrongWorker(workers: 4, vq: 1, worker: m.int("tx0") ?? 0, profile: .seedRFC2, queues: 5) }),
            Spec(name: "mapping-single-consumer/free-attached", kind: .variant(of: "mapping-single-consumer"), source: "drivers/vhost/vhost.c vhost_free_worker",
                 summary: "FREE_WORKER without the attachment check (no -EBUSY): a vq can be left with a freed worker.",
                 prelude: consumerPrelude(freeGuard: "true"), goals: [freeGoal],
                 smallWitness: "(assert (<= nvq 2)) (assert (and (<= 0 w) (<= w 2)))",
                 explain: { m in "worker \(m.int("w") ?? -1) is freed while still attached to a vq (of \(m.int("nvq") ?? -1)): that vq's worker no longer exists" },
                 trace: { _ in MappingTraces.freeAttached() }),
            Spec(name: "mapping-single-consumer/attach-without-flush", kind: .variant(of: "mapping-single-consumer"), source: "drivers/vhost/vhost.c vhost_vq_attach_worker",
                 summary: "ATTACH_VRING_WORKER that switches workers without flushing the old one: the old worker may still be inside a service pass when the new one starts.",
                 prelude: consumerPrelude(attachGuard: "true"), goals: [attachGoal],
                 smallWitness: "(assert (<= nvq 2)) (assert (<= w 2))",
                 explain: { m in "vq \(m.int("v") ?? -1) is switched to worker \(m.int("w") ?? -1) while its previous worker is still servicing it: two consumers" },
                 trace: { _ in MappingTraces.attachWithoutFlush() }),
        ]
    }
}
