import VirtioProtocol
import TraceFormat

/// `vring_need_event(e, new, old)` is true exactly when e lies in [old, new) modulo 2^16, and
/// the checker's once-per-pass judgement (VQ-INTERRUPT-MISSED) follows from that.
public enum NeedEvent {
    public static let name = "need-event"
    static let source = "virtio 1.x \"Used Buffer Notification Suppression\" and virtio-queue.h virtq_need_event; uapi linux/virtio_ring.h vring_need_event; drivers/vhost/vhost.c vhost_notify (signalled_used)"

    static func prelude(needEvent: String = "(bvult (bvsub (bvsub new e) #x0001) (bvsub new old))") -> String {
        """
        ; The formula as drivers and devices compute it: (u16)(new - e - 1) < (u16)(new - old).
        (define-fun need_event ((e (_ BitVec 16)) (new (_ BitVec 16)) (old (_ BitVec 16))) Bool
          \(needEvent))
        ; e lies in the half-open window [old, new) of free-running indices, modulo 2^16.
        (define-fun in_window ((e (_ BitVec 16)) (new (_ BitVec 16)) (old (_ BitVec 16))) Bool
          (bvult (bvsub e old) (bvsub new old)))

        """
    }

    static let decls = """
    (declare-const e (_ BitVec 16))
    (declare-const new (_ BitVec 16))
    (declare-const old (_ BitVec 16))
    """

    static let characterisation = Goal("window", "need_event(e, new, old) holds exactly when e is in [old, new) mod 2^16",
                                       shown: ["e", "old", "new"], smt: """
    \(decls)
    (assert (not (= (need_event e new old) (in_window e new old))))
    """)

    static let oneStep = Goal("one-at-a-time", "publishing one entry (old -> old+1) asks for a notification exactly when e = old: the device notifies when used.idx reaches used_event + 1",
                              shown: ["e", "old"], smt: """
    (declare-const e (_ BitVec 16))
    (declare-const old (_ BitVec 16))
    (assert (not (= (need_event e (bvadd old #x0001) old) (= e old))))
    """)

    /// The checker judges once per service pass from the index at the last interrupt; this is
    /// sound because need_event over [old, new) is the disjunction over any split point m.
    static let split = Goal("split", "for any m between old and new, need_event(e, new, old) = need_event(e, m, old) or need_event(e, new, m): judging a whole pass equals judging each step",
                            shown: ["e", "old", "m", "new"], smt: """
    \(decls)
    (declare-const m (_ BitVec 16))
    (assert (bvule (bvsub m old) (bvsub new old)))
    (assert (not (= (need_event e new old) (or (need_event e m old) (need_event e new m)))))
    """)

    public static var property: Spec {
        Spec(name: name, kind: .property, source: source,
             summary: "vring_need_event(e, new, old) = (u16)(new - e - 1) < (u16)(new - old) is true exactly when e lies in [old, new) modulo 2^16; one-at-a-time publication notifies exactly at e = old; and the judgement over a whole pass equals the disjunction over its steps, which is how the checker's VQ-INTERRUPT-MISSED rule judges at service end.",
             prelude: prelude(), goals: [characterisation, oneStep, split])
    }

    public static var variants: [Spec] {
        [
            Spec(name: name + "/off-by-one", kind: .variant(of: name), source: source,
                 summary: "A device that drops the -1: (u16)(new - e) < (u16)(new - old), i.e. the window (old, new]. It notifies one entry late and misses e = old.",
                 prelude: prelude(needEvent: "(bvult (bvsub new e) (bvsub new old))"), goals: [characterisation],
                 smallWitness: "(assert (in_window e new old)) (assert (bvule (bvsub new old) #x0004)) (assert (bvule new #x0008))",
                 explain: { m in
                     let e = m.int("e") ?? 0, o = m.int("old") ?? 0, n = m.int("new") ?? 0
                     return "used moves from \(o) to \(n) with used_event=\(e): \(e) is in [\(o), \(n)) so the driver must be interrupted, but the off-by-one formula says no"
                 },
                 trace: { m in RingTraces.missedInterrupt(m) }),
            Spec(name: name + "/unsigned-window", kind: .variant(of: name), source: source,
                 summary: "A device that tests old <= e < new on plain unsigned values, forgetting that the indices wrap at 2^16.",
                 prelude: prelude(needEvent: "(and (bvule old e) (bvult e new))"), goals: [characterisation],
                 smallWitness: "(assert (in_window e new old)) (assert (bvule (bvsub new old) #x0004))",
                 explain: { m in
                     let e = m.int("e") ?? 0, o = m.int("old") ?? 0, n = m.int("new") ?? 0
                     return "used wraps from \(o) to \(n) with used_event=\(e): \(e) is in [\(o), \(n)) modulo 2^16, but the unsigned test \(o) <= \(e) < \(n) is false, so the interrupt is missed"
                 },
                 trace: { m in RingTraces.missedInterrupt(m) }),
        ]
    }
}
