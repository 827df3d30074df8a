import VirtioProtocol
import TraceFormat

/// Ownership of a packed virtqueue: an inductive invariant over the driver's and the device's
/// positions as implementations keep them (a 15-bit slot index and a wrap counter each), with a
/// symbolic size N up to 32768 that need not be a power of two. The transition relation mirrors
/// `PackedCursor.allows` / `applying` exactly; a differential test holds the two together.
public enum PackedOwnership {
    public static let name = "packed-ownership"
    static let source = "virtio 1.x \"Packed Virtqueues\" (up to 2^15 entries, size not a power of 2), \"Driver and Device Ring Wrap Counters\" (counters start at 1 and change after the ring's last descriptor; AVAIL = driver counter, USED its inverse; used: both = device counter), device- and driver-normative \"The Virtqueue Descriptor Table\" (use only descriptors observed available; change only descriptors observed used)"

    /// Positions are written in integer arithmetic: indices are below N <= 32768 and steps at most
    /// N, so every sum an implementation computes in its 16-bit (or wider) fields is exact, and
    /// integers are what Z3 decides fastest (the bit-vector form of the step goals timed out at
    /// 10 s; in integers they take milliseconds, measured). The 15-bit packing of a base is a bit-vector goal of its own
    /// (`index-fits-15-bits`); a differential test holds the relation to `PackedCursor`.
    static func prelude(validSize: String = "(and (<= 1 N) (<= N 32768))",
                        flip: String = "(not w)",
                        publishGuard: String = "(<= k (- N (dist N ai aw ui uw)))",
                        completeGuard: String = "(<= k (dist N ai aw ui uw))",
                        usedMarkWrap: String = "uw") -> String {
        """
        ; N is a valid packed queue size: 1 <= N <= 32768 (not necessarily a power of two).
        (define-fun valid_size ((N Int)) Bool \(validSize))
        ; Positions the device owns, from the used position (ui, uw) to the avail position (ai, aw):
        ; with equal wrap counters ai - ui, otherwise ai + N - ui.
        (define-fun dist ((N Int) (ai Int) (aw Bool) (ui Int) (uw Bool)) Int
          (ite (= aw uw) (- ai ui) (- (+ ai N) ui)))
        ; The invariant: both indices are slots, and used is at most one lap behind avail.
        (define-fun inv ((N Int) (ai Int) (aw Bool) (ui Int) (uw Bool)) Bool
          (and (<= 0 ai) (< ai N) (<= 0 ui) (< ui N) (ite (= aw uw) (<= ui ai) (<= ai ui))))
        ; Advancing a position by k: the index wraps at N, and then the wrap counter flips.
        (define-fun adv_i ((N Int) (i Int) (k Int)) Int (ite (>= (+ i k) N) (- (+ i k) N) (+ i k)))
        (define-fun adv_w ((N Int) (i Int) (w Bool) (k Int)) Bool (ite (>= (+ i k) N) \(flip) w))
        ; Driver: makes 1 <= k <= N more descriptors available if they fit in the free part of the ring.
        (define-fun publish ((N Int) (ai Int) (aw Bool) (ui Int) (uw Bool) (k Int) (ai2 Int) (aw2 Bool)) Bool
          (and (<= 1 k) (<= k N) \(publishGuard) (= ai2 (adv_i N ai k)) (= aw2 (adv_w N ai aw k))))
        ; Device: marks used descriptors spanning 1 <= k <= N positions it owns (one list or batch).
        (define-fun complete ((N Int) (ai Int) (aw Bool) (ui Int) (uw Bool) (k Int) (ui2 Int) (uw2 Bool)) Bool
          (and (<= 1 k) (<= k N) \(completeGuard) (= ui2 (adv_i N ui k)) (= uw2 (adv_w N ui uw k))))
        ; The availability test (what the device checks at its position, against its counter):
        ; AVAIL equal to the counter, USED not. The used test (what the driver checks): both equal.
        (define-fun avail_test ((av Bool) (us Bool) (c Bool)) Bool (and (= av c) (not (= us c))))
        (define-fun used_test ((av Bool) (us Bool) (c Bool)) Bool (and (= av c) (= us c)))
        ; The counter the driver had when it made the device's position (ui) available: its own if
        ; that position is in its current lap, the previous one's otherwise.
        (define-fun driver_wrap_at_used ((ai Int) (aw Bool) (ui Int)) Bool (ite (< ui ai) aw (not aw)))
        ; The counter the device writes into a used descriptor's AVAIL and USED bits.
        (define-fun used_mark_wrap ((aw Bool) (uw Bool)) Bool \(usedMarkWrap))

        """
    }

    static let state = """
    (declare-const N Int)
    (declare-const ai Int)
    (declare-const aw Bool)
    (declare-const ui Int)
    (declare-const uw Bool)
    (declare-const k Int)
    """
    static let shown = ["N", "ai", "aw", "ui", "uw", "k"]

    static let initGoal = Goal("init", "a ring started at any base (index b < N, wrap counter w; both sides there) satisfies inv, with nothing in flight",
                               shown: ["N", "b", "w"], smt: """
    (declare-const N Int)
    (declare-const b Int)
    (declare-const w Bool)
    (assert (valid_size N))
    (assert (and (<= 0 b) (< b N)))
    (assert (not (and (inv N b w b w) (= (dist N b w b w) 0))))
    """)

    static let publishGoal = Goal("step-publish", "from any state satisfying inv, making k descriptors available (when they fit) keeps inv and adds exactly k positions to the device's",
                                  shown: shown + ["ai2", "aw2"], smt: """
    \(state)
    (declare-const ai2 Int)
    (declare-const aw2 Bool)
    (assert (valid_size N))
    (assert (inv N ai aw ui uw))
    (assert (publish N ai aw ui uw k ai2 aw2))
    (assert (not (and (inv N ai2 aw2 ui uw) (= (dist N ai2 aw2 ui uw) (+ (dist N ai aw ui uw) k)))))
    """)

    static let completeGoal = Goal("step-complete", "from any state satisfying inv, marking used descriptors over k positions the device owns keeps inv and returns exactly k positions",
                                   shown: shown + ["ui2", "uw2"], smt: """
    \(state)
    (declare-const ui2 Int)
    (declare-const uw2 Bool)
    (assert (valid_size N))
    (assert (inv N ai aw ui uw))
    (assert (complete N ai aw ui uw k ui2 uw2))
    (assert (not (and (inv N ai aw ui2 uw2) (= (dist N ai aw ui2 uw2) (- (dist N ai aw ui uw) k)))))
    """)

    /// PACKED-WRAP-COUNTER, PACKED-DEVICE-OWNERSHIP: the device's test, against its own counter,
    /// sees exactly the descriptors in flight.
    static let seesAvailableGoal = Goal("device-sees-available", "under inv with something in flight, the flags the driver stored at the device's position (AVAIL = its counter then, USED the inverse) pass the device's availability test against the device's counter",
                                        shown: ["N", "ai", "aw", "ui", "uw"], smt: """
    \(state)
    (assert (valid_size N))
    (assert (inv N ai aw ui uw))
    (assert (not (= (dist N ai aw ui uw) 0)))
    (assert (not (avail_test (driver_wrap_at_used ai aw ui) (not (driver_wrap_at_used ai aw ui)) uw)))
    """)

    static let emptyGoal = Goal("empty-shows-nothing", "under inv with nothing in flight, what the previous lap left at the device's position (the driver's flags or the device's used mark, both with the other counter) fails the availability test",
                                shown: ["N", "ai", "aw", "ui", "uw", "leftUsed"], smt: """
    \(state)
    (declare-const leftUsed Bool)
    (assert (valid_size N))
    (assert (inv N ai aw ui uw))
    (assert (= (dist N ai aw ui uw) 0))
    (assert (avail_test (not uw) (ite leftUsed (not uw) uw) uw))
    """)

    /// The driver sees exactly what the device marked used.
    static let seesUsedGoal = Goal("driver-sees-used", "under inv with something in flight, the used mark the device writes at its position passes the driver's used test against the used position's counter, and the driver's own available flags there do not",
                                   shown: ["N", "ai", "aw", "ui", "uw"], smt: """
    \(state)
    (assert (valid_size N))
    (assert (inv N ai aw ui uw))
    (assert (not (= (dist N ai aw ui uw) 0)))
    (assert (not (and (used_test (used_mark_wrap aw uw) (used_mark_wrap aw uw) uw)
                      (not (used_test uw (not uw) uw)))))
    """)

    /// PACKED-DRIVER-OWNERSHIP / PACKED-USED-ID: distinct positions in flight are distinct slots.
    static let slotsGoal = Goal("one-owner-per-slot", "under inv, the in-flight positions used+i and used+j (i < j < in flight) occupy different slots, so each slot has one owner",
                                shown: ["N", "ai", "aw", "ui", "uw", "i", "j"], smt: """
    \(state)
    (declare-const i Int)
    (declare-const j Int)
    (assert (valid_size N))
    (assert (inv N ai aw ui uw))
    (assert (and (<= 0 i) (< i j) (< j (dist N ai aw ui uw))))
    (assert (= (mod (+ ui i) N) (mod (+ ui j) N)))
    """)

    /// PACKED-SIZE: why N must not exceed 32768. A vring base, an event offset and a poll carry
    /// the index in bits 0-14 and the wrap counter in bit 15.
    static let encodingGoal = Goal("index-fits-15-bits", "for a valid N every slot index leaves bit 15 clear, so (wrap << 15 | index) decodes back to the same index and wrap counter",
                                   shown: ["N", "i", "w"], smt: """
    (declare-const N (_ BitVec 16))
    (declare-const i (_ BitVec 16))
    (declare-const w Bool)
    (assert (valid_size (bv2int N)))
    (assert (bvult i N))
    (assert (let ((enc (bvor i (ite w #x8000 #x0000))))
              (not (and (= (bvand enc #x7fff) i) (= (= (bvand enc #x8000) #x8000) w)))))
    """)

    public static var property: Spec {
        Spec(name: name, kind: .property, source: source,
             summary: "Inductive invariant of the packed ring over the driver's and the device's (index, wrap counter) positions and every N in 1...32768: both indices are slots and used is at most one lap behind avail. It holds at every base, each PackedCursor step preserves it and moves exactly k positions, the device's availability test against its own counter sees exactly the descriptors in flight (nothing when the ring is empty), the driver's used test sees exactly the device's used marks, in-flight positions are distinct slots, and a slot index always fits the 15 bits of the vhost base encoding (PACKED-WRAP-COUNTER, PACKED-DRIVER-OWNERSHIP, PACKED-DEVICE-OWNERSHIP, PACKED-USED-ID, PACKED-SIZE).",
             prelude: prelude(),
             goals: [initGoal, publishGoal, completeGoal, seesAvailableGoal, emptyGoal, seesUsedGoal, slotsGoal, encodingGoal])
    }

    static func words(_ m: Model) -> String {
        "N=\(m.int("N") ?? -1) avail=\(m.int("ai") ?? -1)/\(m.bool("aw") == true ? 1 : 0) used=\(m.int("ui") ?? -1)/\(m.bool("uw") == true ? 1 : 0)"
    }

    static let small = "(assert (<= N 4))"

    public static var variants: [Spec] {
        [
            Spec(name: name + "/no-wrap-flip", kind: .variant(of: name), source: source,
                 summary: "A driver (or device) that does not flip its wrap counter when its index passes the ring's end.",
                 prelude: prelude(flip: "w"), goals: [publishGoal],
                 smallWitness: small + " (assert (> (+ ai k) N))",
                 explain: { m in
                     "at \(words(m)) the driver makes k=\(m.int("k") ?? -1) descriptors available past the ring's end and keeps its wrap counter: its position becomes \(m.int("ai2") ?? -1)/\(m.bool("aw2") == true ? 1 : 0), and the AVAIL/USED bits it writes from slot 0 on say \"available\" only for the lap before"
                 },
                 trace: { m in PackedTraces.noWrapFlip(m) }),
            Spec(name: name + "/used-against-driver-counter", kind: .variant(of: name), source: source,
                 summary: "A device that marks used descriptors with the driver's wrap counter instead of its own: the two differ whenever the descriptors in flight span the ring's end.",
                 prelude: prelude(usedMarkWrap: "aw"), goals: [seesUsedGoal],
                 smallWitness: small,
                 explain: { m in
                     "at \(words(m)) the device marks the descriptor at its position with AVAIL=USED=\(m.bool("aw") == true ? 1 : 0), the driver's counter, but the used position's counter is \(m.bool("uw") == true ? 1 : 0): the driver never sees it used"
                 },
                 trace: { m in PackedTraces.usedWrongCounter(m) }),
            Spec(name: name + "/publish-unbounded", kind: .variant(of: name), source: source,
                 summary: "A driver that makes descriptors available without checking that they fit in the free part of the ring.",
                 prelude: prelude(publishGuard: "true"), goals: [publishGoal],
                 smallWitness: small,
                 explain: { m in
                     "at \(words(m)) (\(m.int("k") ?? -1) more than the free part allows) the driver makes k=\(m.int("k") ?? -1) descriptors available: its position passes the device's"
                 },
                 trace: { m in PackedTraces.overPublish(m) }),
            Spec(name: name + "/use-unavailable", kind: .variant(of: name), source: source,
                 summary: "A device that marks used descriptors over positions it does not own (past the driver's position).",
                 prelude: prelude(completeGuard: "true"), goals: [completeGoal],
                 smallWitness: small,
                 explain: { m in
                     "at \(words(m)) the device marks used descriptors over k=\(m.int("k") ?? -1) positions, more than the \(PackedTraces.pre(m).map { String($0.dist) } ?? "?") in flight: its position passes the driver's"
                 },
                 trace: { m in PackedTraces.useUnavailable(m) }),
            Spec(name: name + "/size-unbounded", kind: .variant(of: name), source: source,
                 summary: "Queue sizes up to 65535: a slot index of 32768 or more collides with the wrap bit of the base encoding.",
                 prelude: prelude(validSize: "(and (<= 1 N) (<= N 65535))"), goals: [encodingGoal],
                 smallWitness: "(assert (bvule N #x8004))",
                 explain: { m in
                     "with N=\(m.int("N") ?? -1), slot \(m.int("i") ?? -1) encodes to a value whose bit 15 is set: it reads back as index \((m.int("i") ?? 0) & 0x7fff) with the wrap counter flipped"
                 },
                 trace: { m in PackedTraces.badSize(m) }),
        ]
    }
}

/// The packed event-suppression window (`PackedRing.notificationRequired` with RING_EVENT_FLAGS_DESC)
/// is the 16-bit formula DPDK (`vhost_vring_call_packed`) and QEMU (`vring_packed_need_event`)
/// compute, for every N up to 32768: so PACKED-INTERRUPT-MISSED asks for what a correct device sends, and
/// PACKED-KICK-MISSED (the same window on the avail side) for what a correct driver sends.
public enum PackedNeedEvent {
    public static let name = "packed-need-event"
    static let source = "virtio 1.x packed \"Driver and Device Event Suppression\" (desc_event_off / desc_event_wrap); DPDK lib/vhost vhost_vring_call_packed; QEMU hw/virtio/virtio.c vring_packed_need_event; Linux virtqueue_kick_prepare_packed"

    /// Written in integer arithmetic: a 16-bit subtraction is the difference modulo 2^16, which is
    /// how it is written here (Z3 decides the integer form at once; the bit-vector form of the same
    /// goal took 6.4 s, measured). A differential test evaluates `device_notifies` against the
    /// 16-bit Swift formula on concrete values.
    static func prelude(offAdjust: String = "(ite (= ew nw) e (u16 (- e N)))") -> String {
        """
        (define-fun valid_size ((N Int)) Bool (and (<= 1 N) (<= N 32768)))
        ; A 16-bit value of an integer: what C's uint16_t arithmetic keeps.
        (define-fun u16 ((x Int)) Int (mod x 65536))
        ; Positions from old (oi, ow) to new (ni, nw): the window just marked used.
        (define-fun wlen ((N Int) (oi Int) (ow Bool) (ni Int) (nw Bool)) Int
          (ite (= ow nw) (- ni oi) (- (+ ni N) oi)))
        ; The model's definition: the descriptor the driver names (slot e, wrap ew) is a position of the window.
        (define-fun in_window ((N Int) (oi Int) (ow Bool) (ni Int) (nw Bool) (e Int) (ew Bool)) Bool
          (and (< (ite (>= e oi) (- e oi) (- (+ e N) oi)) (wlen N oi ow ni nw))
               (= (ite (>= e oi) ow (not ow)) ew)))
        ; DPDK: if (new <= old) old -= size; off moved back a lap when its wrap is not the used one;
        ; then vring_need_event: (u16)(new - off - 1) < (u16)(new - old), all in uint16_t.
        (define-fun device_notifies ((N Int) (oi Int) (ni Int) (nw Bool) (e Int) (ew Bool)) Bool
          (let ((old (ite (<= ni oi) (u16 (- oi N)) oi)) (off \(offAdjust)))
            (< (u16 (- (u16 (- ni off)) 1)) (u16 (- ni old)))))

        """
    }

    static let goal = Goal("window", "for every N <= 32768, every window of 1...N positions and every (slot, wrap) the driver names, the position-window definition and DPDK's 16-bit formula agree",
                           shown: ["N", "oi", "ow", "ni", "nw", "e", "ew"], smt: """
    (declare-const N Int)
    (declare-const oi Int)
    (declare-const ow Bool)
    (declare-const ni Int)
    (declare-const nw Bool)
    (declare-const e Int)
    (declare-const ew Bool)
    (assert (valid_size N))
    (assert (and (<= 0 oi) (< oi N) (<= 0 ni) (< ni N) (<= 0 e) (< e N)))
    ; new's wrap counter: the same lap when new is past old, the next when it has passed the end.
    (assert (= nw (ite (> ni oi) ow (not ow))))
    (assert (not (= (in_window N oi ow ni nw e ew) (device_notifies N oi ni nw e ew))))
    """)

    public static var property: Spec {
        Spec(name: name, kind: .property, source: source,
             summary: "With RING_EVENT_FLAGS_DESC, the descriptor the driver names (offset, wrap counter) lies in the positions the device just marked used exactly when DPDK's and QEMU's 16-bit formula (offset moved back N when its wrap counter is not the used one's) asks for a notification, for every N <= 32768 and every window of up to N positions: the window PACKED-INTERRUPT-MISSED owes is the one correct devices notify for (and, on the driver's side with the Device Event Suppression, the window PACKED-KICK-MISSED owes is the one Linux and DPDK drivers kick for).",
             prelude: prelude(), goals: [goal])
    }

    public static var variants: [Spec] {
        [
            Spec(name: name + "/no-wrap-adjust", kind: .variant(of: name), source: source,
                 summary: "A device that ignores desc_event_wrap (never moves the offset back a lap): it misses a descriptor named in the lap before the ring's end.",
                 prelude: prelude(offAdjust: "e"), goals: [goal],
                 smallWitness: "(assert (<= N 4)) (assert (in_window N oi ow ni nw e ew))",
                 explain: { m in
                     "the device marks positions from \(m.int("oi") ?? -1)/\(m.bool("ow") == true ? 1 : 0) to \(m.int("ni") ?? -1)/\(m.bool("nw") == true ? 1 : 0) used on a ring of \(m.int("N") ?? -1); the driver asked for slot \(m.int("e") ?? -1) wrap \(m.bool("ew") == true ? 1 : 0), which is among them, but without the wrap adjustment the formula says no"
                 },
                 trace: { m in PackedTraces.missedInterrupt(m) }),
        ]
    }
}
