import Testing
import Foundation
@testable import Proofs
import VirtioProtocol
import VirtqueueModel
import VhostModel

/// The SMT encodings are only worth their proofs if they say what the Swift model does. Here Z3
/// evaluates each encoding on thousands of concrete values and must agree with the Swift code.
/// A seeded generator keeps failures reproducible.
extension Z3Tests { @Suite struct DifferentialTests {
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func bv(_ v: UInt16) -> String { SMT.bv16(Int(v)) }

    /// RingCursor.applying against the SMT `step` relation, for 3,000 random states and steps
    /// (half of them near the invariant, where the guards matter; the rest anywhere, including
    /// states the invariant excludes). Z3 must find exactly Swift's successor, or none when
    /// Swift's guard refuses the step.
    @Test func ringTransitionRelationMatchesRingCursor() throws {
        let z = try Z3Session()
        var rng = SplitMix(state: 0x7269_6e67)
        let prelude = RingOwnership.prelude()
        var agreed = 0, refused = 0
        for i in 0..<3_000 {
            let n = UInt32(1) << UInt32.random(in: 0...15, using: &rng)
            let used = UInt16.random(in: .min ... .max, using: &rng)
            let c: RingCursor
            if i % 2 == 0 {
                let inflight = UInt16(truncatingIfNeeded: Int.random(in: 0...Int(n) + 1, using: &rng))
                let read = UInt16(truncatingIfNeeded: Int.random(in: 0...Int(inflight) + 1, using: &rng))
                c = RingCursor(size: n, avail: used &+ inflight, next: used &+ read, used: used)
            } else {
                c = RingCursor(size: n, avail: .random(in: .min ... .max, using: &rng), next: .random(in: .min ... .max, using: &rng), used: used)
            }
            let k: UInt16 = Bool.random(using: &rng) ? .random(in: 0...4, using: &rng) : .random(in: .min ... .max, using: &rng)
            let (step, op): (RingCursor.Step, String) = [(.publish(k), "#b00"), (.consume, "#b01"), (.complete(k), "#b10")][i % 3]
            let query = prelude + """
            (declare-const avail2 (_ BitVec 16))
            (declare-const next2 (_ BitVec 16))
            (declare-const used2 (_ BitVec 16))
            (assert (step \(op) \(SMT.bv16(Int(n))) \(Self.bv(c.avail)) \(Self.bv(c.next)) \(Self.bv(c.used)) \(Self.bv(k)) avail2 next2 used2))
            """
            let r = try z.check(query, solver: .simple)
            switch (c.applying(step), r) {
            case (nil, .unsat):
                refused += 1
            case (let s?, .sat(let m)):
                #expect(m.int("avail2") == Int(s.avail) && m.int("next2") == Int(s.next) && m.int("used2") == Int(s.used),
                        "\(c) \(step): Swift \(s), Z3 \(m)")
                // The relation is a function: no other successor.
                let other = try z.check(query + "\n(assert (not (and (= avail2 \(Self.bv(s.avail))) (= next2 \(Self.bv(s.next))) (= used2 \(Self.bv(s.used))))))", solver: .simple)
                #expect(other == .unsat, "\(c) \(step): a second successor \(other)")
                agreed += 1
            default:
                Issue.record("\(c) \(step): Swift \(String(describing: c.applying(step))), Z3 \(r)")
            }
        }
        // Both outcomes must be well represented, or the comparison says little.
        #expect(agreed > 500 && refused > 500, "agreed \(agreed), refused \(refused)")
    }

    /// The SMT invariant and size predicate against RingCursor.invariantHolds and
    /// SplitRing.isValidQueueSize.
    @Test func ringInvariantAndValidSizeMatchSwift() throws {
        let z = try Z3Session()
        var rng = SplitMix(state: 0x696e76)
        let prelude = RingOwnership.prelude()
        var holds = 0
        for i in 0..<2_000 {
            let n = UInt32(1) << UInt32.random(in: 0...15, using: &rng)
            let used = UInt16.random(in: .min ... .max, using: &rng)
            let avail = i % 2 == 0 ? used &+ UInt16(truncatingIfNeeded: Int.random(in: 0...Int(n) + 2, using: &rng)) : .random(in: .min ... .max, using: &rng)
            let next = i % 3 == 0 ? .random(in: .min ... .max, using: &rng) : used &+ UInt16.random(in: 0...(avail &- used) &+ 1, using: &rng)
            let c = RingCursor(size: n, avail: avail, next: next, used: used)
            let r = try z.check(prelude + "(assert (inv \(SMT.bv16(Int(n))) \(Self.bv(avail)) \(Self.bv(next)) \(Self.bv(used))))", solver: .simple)
            #expect((r != .unsat) == c.invariantHolds, "\(c): Swift \(c.invariantHolds), Z3 \(r)")
            if c.invariantHolds { holds += 1 }
        }
        #expect(holds > 400 && holds < 1_600)
        // Every power of two and its neighbours, then random sizes.
        var sizes: [Int] = [0, 0xffff, 0x8001]
        for e in 0...15 { sizes += [(1 << e) - 1, 1 << e, (1 << e) + 1] }
        for _ in 0..<300 { sizes.append(Int.random(in: 0...0xffff, using: &rng)) }
        for n in sizes where n <= 0xffff {
            let r = try z.check(prelude + "(assert (valid_size \(SMT.bv16(n))))", solver: .simple)
            #expect((r != .unsat) == SplitRing.isValidQueueSize(UInt32(n)), "N=\(n)")
        }
    }

    /// PackedCursor.applying against the SMT `publish` / `complete` relations of packed-ownership,
    /// and invariantHolds against `inv`, for 3,000 random states (half near the invariant) and
    /// steps, on sizes that are and are not powers of two.
    @Test func packedTransitionRelationMatchesPackedCursor() throws {
        let z = try Z3Session()
        var rng = SplitMix(state: 0x7061_636b)
        let prelude = PackedOwnership.prelude()
        var agreed = 0, refused = 0, holds = 0
        for i in 0..<3_000 {
            let n = [1, 2, 3, 5, 256, 1000, 32767, 32768][i % 8] as UInt32
            let ui = UInt16.random(in: 0..<UInt16(min(n, 0xffff)), using: &rng), uw = Bool.random(using: &rng)
            let c: PackedCursor
            if i % 2 == 0 {
                let p = PackedRing.position(RingBase(index: ui, wrap: uw), size: n) + UInt64.random(in: 0...UInt64(n), using: &rng)
                c = PackedCursor(size: n, availIndex: PackedRing.slot(p, size: n), availWrap: PackedRing.wrap(p, size: n), usedIndex: ui, usedWrap: uw)
            } else {
                c = PackedCursor(size: n, availIndex: .random(in: 0..<UInt16(min(n, 0xffff)), using: &rng), availWrap: .random(using: &rng), usedIndex: ui, usedWrap: uw)
            }
            let state = "\(n) \(c.availIndex) \(c.availWrap) \(c.usedIndex) \(c.usedWrap)"
            let inv = try z.check(prelude + "(assert (inv \(state)))", solver: .simple)
            #expect((inv != .unsat) == c.invariantHolds, "\(c): Swift \(c.invariantHolds), Z3 \(inv)")
            if c.invariantHolds { holds += 1 } else { continue }
            let k = UInt16(truncatingIfNeeded: Bool.random(using: &rng) ? Int.random(in: 0...4, using: &rng) : Int.random(in: 0...Int(n) + 1, using: &rng))
            let publish = i % 4 < 2
            let step: PackedCursor.Step = publish ? .publish(k) : .complete(k)
            let query = prelude + """
            (declare-const i2 Int)
            (declare-const w2 Bool)
            (assert (\(publish ? "publish" : "complete") \(state) \(k) i2 w2))
            """
            let r = try z.check(query, solver: .simple)
            switch (c.applying(step), r) {
            case (nil, .unsat): refused += 1
            case (let s?, .sat(let m)):
                let (i2, w2) = publish ? (s.availIndex, s.availWrap) : (s.usedIndex, s.usedWrap)
                #expect(m.int("i2") == Int(i2) && m.bool("w2") == w2, "\(c) \(step): Swift \(s), Z3 \(m)")
                agreed += 1
            default:
                Issue.record("\(c) \(step): Swift \(String(describing: c.applying(step))), Z3 \(r)")
            }
            #expect(c.deviceSeesAvailable == (c.inFlight > 0), "\(c)")
        }
        #expect(agreed > 300 && refused > 100 && holds > 1_000, "agreed \(agreed), refused \(refused), holds \(holds)")
        for n in [0, 1, 2, 3, 32767, 32768, 32769, 65535] {
            let r = try z.check(prelude + "(assert (valid_size \(n)))", solver: .simple)
            #expect((r != .unsat) == RingFormat.packed.isValidQueueSize(UInt32(n)), "N=\(n)")
        }
    }

    /// The integer form of DPDK's 16-bit formula in packed-need-event against the same formula in
    /// Swift's UInt16 arithmetic (the one PackedStoryTests compares with the model), and the
    /// model's window against `in_window`.
    @Test func packedNeedEventEncodingMatchesUInt16Arithmetic() throws {
        let z = try Z3Session()
        var rng = SplitMix(state: 0x706e65)
        let prelude = PackedNeedEvent.prelude()
        var trues = 0
        for _ in 0..<2_000 {
            let n = [1, 2, 3, 7, 256, 32768][Int.random(in: 0..<6, using: &rng)] as UInt32
            let old = UInt64.random(in: 0..<(4 * UInt64(n)), using: &rng), new = old + UInt64.random(in: 1...UInt64(n), using: &rng)
            let e = UInt16.random(in: 0..<UInt16(min(n, 0xffff)), using: &rng), ew = Bool.random(using: &rng)
            let (oi, ow, ni, nw) = (PackedRing.slot(old, size: n), PackedRing.wrap(old, size: n), PackedRing.slot(new, size: n), PackedRing.wrap(new, size: n))
            // DPDK's vhost_vring_call_packed, in uint16_t.
            var off = e, o = oi
            if ew != nw { off = off &- UInt16(truncatingIfNeeded: n) }
            if ni <= o { o = o &- UInt16(truncatingIfNeeded: n) }
            let dpdk = (ni &- off &- 1) < (ni &- o)
            let sup = PackedRing.EventSuppression(offWrap: e | (ew ? 0x8000 : 0), flags: 2)
            let model = PackedRing.descInWindow(sup, old: old, new: new, size: n)
            let args = "\(n) \(oi) \(ni) \(nw) \(e) \(ew)"
            let r = try z.check(prelude + "(assert (device_notifies \(args)))", solver: .simple)
            #expect((r != .unsat) == dpdk, "N=\(n) old=\(old) new=\(new) e=\(e) ew=\(ew)")
            let w = try z.check(prelude + "(assert (in_window \(n) \(oi) \(ow) \(ni) \(nw) \(e) \(ew)))", solver: .simple)
            #expect((w != .unsat) == model, "N=\(n) old=\(old) new=\(new) e=\(e) ew=\(ew)")
            if dpdk { trues += 1 }
        }
        #expect(trues > 100)
    }

    /// SplitRing.needEvent against the SMT need_event, on random and wrap-around triples.
    @Test func needEventMatchesSplitRing() throws {
        let z = try Z3Session()
        var rng = SplitMix(state: 0x6e6565)
        let prelude = NeedEvent.prelude()
        var trues = 0
        for i in 0..<3_000 {
            let old = UInt16.random(in: .min ... .max, using: &rng)
            let new = i % 2 == 0 ? old &+ UInt16.random(in: 0...8, using: &rng) : .random(in: .min ... .max, using: &rng)
            let e = i % 3 == 0 ? old &+ UInt16.random(in: 0...9, using: &rng) &- 1 : .random(in: .min ... .max, using: &rng)
            let swift = SplitRing.needEvent(event: e, new: new, old: old)
            let r = try z.check(prelude + "(assert (need_event \(Self.bv(e)) \(Self.bv(new)) \(Self.bv(old))))", solver: .simple)
            #expect((r != .unsat) == swift, "e=\(e) new=\(new) old=\(old)")
            if swift { trues += 1 }
        }
        #expect(trues > 300)
    }

    /// The SMT negotiation (set-owner-compat's prelude) evaluated on concrete cells against
    /// QemuNegotiation.negotiate: TX queues, SET_OWNER argument and workers.
    @Test func setOwnerEncodingMatchesQemuNegotiation() throws {
        let z = try Z3Session()
        let prelude = SetOwnerCompat.prelude()
        var cells = 0
        let bools = [false, true]
        for q in bools { for k in bools { for g in bools { for mq in bools { for v in bools {
            for smp in [1, 2, 4] { for n in [nil, 0, 2, 8] as [Int?] { for cap in [1, 2, 1000] {
                let i = NegotiationInput(smp: smp, vhost: v, mq: mq, numtxqs: n, newQemu: q, newKernel: k, newGuest: g, kernelWorkerCap: cap)
                let want = QemuNegotiation.negotiate(i)
                let cell = """
                (assert (= new_qemu \(q))) (assert (= new_kernel \(k))) (assert (= new_guest \(g))) (assert (= mq \(mq))) (assert (= vhost \(v)))
                (assert (= smp \(smp))) (assert (= numtxqs_set \(n != nil))) (assert (= numtxqs \(n ?? 0))) (assert (= cap \(cap)))
                """
                guard case .sat(let m) = try z.check(prelude + cell, solver: .simple) else {
                    Issue.record("\(i): the encoding has no value"); continue
                }
                #expect(m.int("tx") == want.txQueues, "\(i): tx Z3 \(m.int("tx") ?? -1), Swift \(want.txQueues)")
                #expect(m.int("argument") == (want.setOwnerArgument ?? 0), "\(i): argument")
                #expect(m.int("workers") == want.workers, "\(i): workers Z3 \(m.int("workers") ?? -1), Swift \(want.workers)")
                cells += 1
            } } }
        } } } } }
        #expect(cells == 32 * 3 * 4 * 3)
    }

    /// The Swift enumeration of the matrix (the cross-check `prove` runs) finds every cell valid,
    /// and it would catch the broken variant's cell.
    @Test func setOwnerMatrixEnumerationAgreesWithZ3() {
        let (n, failures) = SetOwnerMatrix.check()
        #expect(n > 10_000)
        #expect(failures.isEmpty, "\(failures)")
        // An old kernel with two workers is what `broken` must catch.
        let i = NegotiationInput(smp: 2, vhost: true, mq: true, newKernel: false)
        var r = QemuNegotiation.negotiate(i)
        r.workers = 2
        #expect(SetOwnerMatrix.broken(i, r).contains("legacy-one-worker"))
    }

    /// WorkerMapping.roundRobinLoad (the closed form mapping-balance proves) counts the vqs
    /// WorkerMapping.roundRobin gives each worker, and the seed table holds in Swift too.
    @Test func roundRobinLoadCountsTheSwiftMapping() {
        for w in 1...Mapping.balanceWorkerLimit {
            for q in 0...70 {
                var count = Array(repeating: 0, count: w)
                for vq in 0..<q { count[WorkerMapping.roundRobin(vq: vq, workers: w)] += 1 }
                for r in 0..<w { #expect(count[r] == WorkerMapping.roundRobinLoad(worker: r, queues: q, workers: w), "W=\(w) Q=\(q) r=\(r)") }
                #expect((count.max() ?? 0) - (count.min() ?? 0) <= 1)
            }
        }
        let w = OwnerSemantics.workers(requested: 4, profile: .seedRFC2)
        #expect(WorkerMapping.assigned(profile: .seedRFC2, vq: QueueLayout.seed.rxQueue(0), workers: w) == 0)
        #expect((0..<4).map { WorkerMapping.assigned(profile: .seedRFC2, vq: QueueLayout.seed.txQueue($0), workers: w) } == [1, 0, 1, 0])
    }

    /// The mapping's SMT `assign` (bvurem) against WorkerMapping.roundRobin on random 16-bit values.
    @Test func roundRobinEncodingMatchesWorkerMapping() throws {
        let z = try Z3Session()
        var rng = SplitMix(state: 0x6d6170)
        for _ in 0..<500 {
            let q = Int.random(in: 0...0xffff, using: &rng), w = Int.random(in: 1...(Bool.random(using: &rng) ? 16 : 0xffff), using: &rng)
            let r = try z.check(Mapping.rangePrelude() + "(declare-const a (_ BitVec 16)) (assert (= a (assign \(SMT.bv16(q)) \(SMT.bv16(w)))))", solver: .simple)
            guard case .sat(let m) = r else { Issue.record("q=\(q) W=\(w): \(r)"); continue }
            #expect(m.int("a") == WorkerMapping.roundRobin(vq: q, workers: w))
        }
    }
}
}
