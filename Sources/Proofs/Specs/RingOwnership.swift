import VirtioProtocol
import TraceFormat

/// Ring ownership of a split virtqueue: an inductive invariant over the three free-running
/// 16-bit indices of `RingCursor` (avail, next, used) with a symbolic power-of-two size N.
/// The transition relation mirrors `RingCursor.allows` / `applying` exactly; a differential
/// test holds the two together on random concrete states.
public enum RingOwnership {
    public static let name = "ring-ownership"
    static let source = "virtio 1.x \"Split Virtqueues\" (queue size: power of 2, max 32768; size bounds outstanding buffers), \"Updating idx\" (free-running 16-bit indices, slot = idx mod N), \"The Virtqueue Available Ring\" (no unexposing); drivers/vhost/vhost.c vhost_get_vq_desc (reads only while last_avail_idx != avail_idx)"

    /// Shared definitions. `guard_*` names are the guards of `RingCursor.allows`.
    static func prelude(pow2: String = defaultPow2, publishGuard: String = defaultPublishGuard,
                        consumeGuard: String = "(not (= next avail))",
                        completeGuard: String = "(bvule k (bvsub next used))") -> String {
        let maxN = SMT.bv16(Int(SplitRing.maxQueueSize))
        return """
        ; N is a valid split queue size: a power of two between 1 and \(SplitRing.maxQueueSize) (\(maxN)).
        (define-fun valid_size ((N (_ BitVec 16))) Bool
          \(pow2.replacingOccurrences(of: "MAXN", with: maxN)))
        ; The invariant: in-flight = avail - used (mod 2^16) is at most N, and the device's
        ; next index lies between used and avail: (next - used) <= (avail - used).
        (define-fun inv ((N (_ BitVec 16)) (avail (_ BitVec 16)) (next (_ BitVec 16)) (used (_ BitVec 16))) Bool
          (and (bvule (bvsub avail used) N)
               (bvule (bvsub next used) (bvsub avail used))))
        ; RingCursor computes guards in UInt32, so sums do not wrap there: widen before adding.
        (define-fun w32 ((x (_ BitVec 16))) (_ BitVec 32) ((_ zero_extend 16) x))
        ; Driver: publish k more entries (avail += k) if in-flight + k <= N.
        (define-fun publish ((N (_ BitVec 16)) (avail (_ BitVec 16)) (next (_ BitVec 16)) (used (_ BitVec 16)) (k (_ BitVec 16))
                             (avail2 (_ BitVec 16)) (next2 (_ BitVec 16)) (used2 (_ BitVec 16))) Bool
          (and \(publishGuard)
               (= avail2 (bvadd avail k)) (= next2 next) (= used2 used)))
        ; Device: read the next available entry (next += 1) if one is exposed.
        (define-fun consume ((N (_ BitVec 16)) (avail (_ BitVec 16)) (next (_ BitVec 16)) (used (_ BitVec 16))
                             (avail2 (_ BitVec 16)) (next2 (_ BitVec 16)) (used2 (_ BitVec 16))) Bool
          (and \(consumeGuard)
               (= avail2 avail) (= next2 (bvadd next #x0001)) (= used2 used)))
        ; Device: return k entries it has read (used += k) if k <= next - used.
        (define-fun complete ((N (_ BitVec 16)) (avail (_ BitVec 16)) (next (_ BitVec 16)) (used (_ BitVec 16)) (k (_ BitVec 16))
                              (avail2 (_ BitVec 16)) (next2 (_ BitVec 16)) (used2 (_ BitVec 16))) Bool
          (and \(completeGuard)
               (= avail2 avail) (= next2 next) (= used2 (bvadd used k))))
        ; One step of the model: op 0 = publish(k), 1 = consume, 2 = complete(k).
        (define-fun step ((op (_ BitVec 2)) (N (_ BitVec 16)) (avail (_ BitVec 16)) (next (_ BitVec 16)) (used (_ BitVec 16)) (k (_ BitVec 16))
                          (avail2 (_ BitVec 16)) (next2 (_ BitVec 16)) (used2 (_ BitVec 16))) Bool
          (or (and (= op #b00) (publish N avail next used k avail2 next2 used2))
              (and (= op #b01) (consume N avail next used avail2 next2 used2))
              (and (= op #b10) (complete N avail next used k avail2 next2 used2))))

        """
    }

    static let defaultPow2 = "(and (not (= N #x0000)) (= (bvand N (bvsub N #x0001)) #x0000) (bvule N MAXN))"
    static let defaultPublishGuard = "(bvule (bvadd (w32 (bvsub avail used)) (w32 k)) (w32 N))"

    static let state = """
    (declare-const N (_ BitVec 16))
    (declare-const avail (_ BitVec 16))
    (declare-const next (_ BitVec 16))
    (declare-const used (_ BitVec 16))
    """
    static let post = """
    (declare-const k (_ BitVec 16))
    (declare-const avail2 (_ BitVec 16))
    (declare-const next2 (_ BitVec 16))
    (declare-const used2 (_ BitVec 16))
    """
    static let shownStep = ["N", "avail", "next", "used", "k", "avail2", "next2", "used2"]

    static func stepGoal(_ op: String, _ call: String) -> Goal {
        Goal("step-\(op)", "from any state satisfying inv with a valid N, \(op) (when its guard holds) leads to a state satisfying inv",
             shown: shownStep, smt: """
        \(state)
        \(post)
        (assert (valid_size N))
        (assert (inv N avail next used))
        (assert \(call))
        (assert (not (inv N avail2 next2 used2)))
        """)
    }

    static let initGoal = Goal("init", "a ring set up at any base index s (avail = next = used = s) satisfies inv",
                               shown: ["N", "s"], smt: """
    (declare-const N (_ BitVec 16))
    (declare-const s (_ BitVec 16))
    (assert (valid_size N))
    (assert (not (inv N s s s)))
    """)

    static let publishGoal = stepGoal("publish", "(publish N avail next used k avail2 next2 used2)")
    static let consumeGoal = stepGoal("consume", "(consume N avail next used avail2 next2 used2)")
    static let completeGoal = stepGoal("complete", "(complete N avail next used k avail2 next2 used2)")

    /// Slots of distinct in-flight entries differ: each descriptor slot has exactly one owner
    /// (VQ-USED-ID, VQ-DRIVER-OWNERSHIP rest on this).
    static let slotsGoal = Goal("implies-one-owner-per-slot",
        "under inv, the in-flight positions used+i and used+j (i != j, both < avail - used) occupy different ring slots, so each slot has one owner",
        shown: ["N", "avail", "next", "used", "i", "j"], smt: """
    \(state)
    (declare-const i (_ BitVec 16))
    (declare-const j (_ BitVec 16))
    (assert (valid_size N))
    (assert (inv N avail next used))
    (assert (bvult i j))
    (assert (bvult j (bvsub avail used)))
    (assert (= (bvand (bvadd used i) (bvsub N #x0001)) (bvand (bvadd used j) (bvsub N #x0001))))
    """)

    /// VQ-AVAIL-READ: the entry the device reads next is exposed and not yet returned.
    static let readGoal = Goal("implies-read-within-avail",
        "under inv, when the consume guard holds the entry at next is in flight and unread: next - used < avail - used",
        shown: ["N", "avail", "next", "used"], smt: """
    \(state)
    (assert (valid_size N))
    (assert (inv N avail next used))
    (assert (not (= next avail)))
    (assert (not (bvult (bvsub next used) (bvsub avail used))))
    """)

    /// VQ-USED-IDX: completing never moves used past next.
    static let usedGoal = Goal("implies-used-behind-next",
        "under inv, a complete(k) step keeps used at or behind next: after it, next - used2 <= next - used",
        shown: shownStep, smt: """
    \(state)
    \(post)
    (assert (valid_size N))
    (assert (inv N avail next used))
    (assert (complete N avail next used k avail2 next2 used2))
    (assert (not (bvule (bvsub next2 used2) (bvsub next used))))
    """)

    /// VQ-SIZE: why N must be a power of two. With free-running indices, slot(p+1) follows
    /// slot(p) across the 16-bit wrap only when N divides 2^16.
    static let continuityGoal = Goal("implies-slot-continuity",
        "for a valid N the slot p mod N advances by one (mod N) from p to p+1, including across the wrap at 0xffff, and equals p & (N-1)",
        shown: ["N", "p"], smt: """
    (declare-const N (_ BitVec 16))
    (declare-const p (_ BitVec 16))
    (assert (valid_size N))
    (assert (or (not (= (bvurem (bvadd p #x0001) N) (bvurem (bvadd (bvurem p N) #x0001) N)))
                (not (= (bvurem p N) (bvand p (bvsub N #x0001))))))
    """)

    public static var property: Spec {
        Spec(name: name, kind: .property, source: source,
             summary: "Inductive invariant of the split ring over 16-bit free-running indices and every power-of-two N <= 32768: (avail - used) <= N and (next - used) <= (avail - used), mod 2^16. It holds initially, every RingCursor step preserves it, and it implies the ring rules VQ-INFLIGHT, VQ-AVAIL-READ, VQ-USED-IDX, VQ-USED-ID / VQ-DRIVER-OWNERSHIP (one owner per slot) and VQ-SIZE (slot continuity needs a power of two).",
             prelude: prelude(),
             goals: [initGoal, publishGoal, consumeGoal, completeGoal, slotsGoal, readGoal, usedGoal, continuityGoal])
    }

    // MARK: broken variants

    static func words(_ m: Model) -> String {
        "N=\(m.int("N") ?? -1) avail=\(m.int("avail") ?? -1) next=\(m.int("next") ?? -1) used=\(m.int("used") ?? -1)"
    }

    public static var variants: [Spec] {
        [
            Spec(name: name + "/publish-unbounded", kind: .variant(of: name), source: source,
                 summary: "A driver that publishes without the in-flight bound (no in-flight + k <= N guard).",
                 prelude: prelude(publishGuard: "true"), goals: [publishGoal],
                 smallWitness: "(assert (bvule N #x0004)) (assert (bvule k #x0008)) (assert (= avail next)) (assert (= next used)) (assert (= used #x0000))",
                 explain: { m in
                     "from \(words(m)) the driver publishes k=\(m.int("k") ?? -1) entries: avail becomes \(m.int("avail2") ?? -1), so \((m.int("avail2") ?? 0) &- (m.int("used") ?? 0) & 0xffff) buffers are in flight on a ring of \(m.int("N") ?? -1)"
                 },
                 trace: { m in RingTraces.overPublish(m) }),
            Spec(name: name + "/unsigned-inflight", kind: .variant(of: name), source: source,
                 summary: "A driver that bounds in-flight with unsigned index arithmetic, avail + k <= used + N, instead of the modular (avail - used) + k <= N: wrong once avail wraps past 0xffff before used does.",
                 prelude: prelude(publishGuard: "(bvule (bvadd (w32 avail) (w32 k)) (bvadd (w32 used) (w32 N)))"), goals: [publishGoal],
                 smallWitness: "(assert (bvule N #x0004)) (assert (bvule k #x0010)) (assert (= next used))",
                 explain: { m in
                     "at \(words(m)) avail has wrapped and used has not; avail + k = \((m.int("avail") ?? 0) + (m.int("k") ?? 0)) <= used + N = \((m.int("used") ?? 0) + (m.int("N") ?? 0)) lets the driver publish k=\(m.int("k") ?? -1), leaving \(((m.int("avail2") ?? 0) - (m.int("used") ?? 0)) & 0xffff) buffers in flight"
                 },
                 trace: { m in RingTraces.overPublish(m) }),
            Spec(name: name + "/consume-past-avail", kind: .variant(of: name), source: source,
                 summary: "A device that reads the next entry without checking next != avail (vhost's last_avail_idx != avail_idx).",
                 prelude: prelude(consumeGuard: "true"), goals: [consumeGoal],
                 smallWitness: "(assert (bvule N #x0004)) (assert (= used #x0000)) (assert (bvule avail #x0004))",
                 explain: { m in
                     "at \(words(m)) nothing is left to read (next = avail) but the device reads position \(m.int("next") ?? -1), which the driver has not exposed"
                 },
                 trace: { m in RingTraces.readPastAvail(m) }),
            Spec(name: name + "/complete-unread", kind: .variant(of: name), source: source,
                 summary: "A device that may return any in-flight entry (k <= avail - used) rather than only entries it has read (k <= next - used).",
                 prelude: prelude(completeGuard: "(bvule k (bvsub avail used))"), goals: [completeGoal],
                 smallWitness: "(assert (bvule N #x0004)) (assert (= used #x0000)) (assert (= next used))",
                 explain: { m in
                     "at \(words(m)) the device returns k=\(m.int("k") ?? -1) entries although it has read only \(((m.int("next") ?? 0) - (m.int("used") ?? 0)) & 0xffff): used moves to \(m.int("used2") ?? -1), past next"
                 },
                 trace: { m in RingTraces.completeUnread(m) }),
            Spec(name: name + "/size-not-power-of-two", kind: .variant(of: name), source: source,
                 summary: "Queue sizes that are not powers of two (any 1 <= N <= 32768): slot = idx mod N jumps at the 16-bit wrap.",
                 prelude: prelude(pow2: "(and (not (= N #x0000)) (bvule N MAXN))"), goals: [continuityGoal],
                 smallWitness: "(assert (bvule N #x0008)) (assert (not (= (bvurem (bvadd p #x0001) N) (bvurem (bvadd (bvurem p N) #x0001) N))))",
                 explain: { m in
                     let n = m.int("N") ?? 1, p = m.int("p") ?? 0
                     return "with N=\(n), index p=\(p) is slot \(p % n) but p+1=\((p + 1) & 0xffff) is slot \(((p + 1) & 0xffff) % n), not \((p % n + 1) % n)"
                 },
                 trace: { m in RingTraces.badSize(m) }),
        ]
    }
}
