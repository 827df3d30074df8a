import VirtioProtocol
import VirtqueueModel
import PolledSemantics

/// One model per vq, of either ring format, kept by format in arrays of the concrete model types:
/// the exact models (`RingTable`) and the judges of polled rings (`PolledTable`).
/// Each step mutates its model in place. Held as `any RingModel` (or `any PolledRingModel`), every
/// step went through an existential box, and every look at the split model (`as? SplitVirtqueue`)
/// copied the whole model, retaining each of its arrays: on a long trace most of the checker's time.
/// The protocols stay the seam both formats implement; these tables only decide where models live.
///
/// Every member reaches a model in place (`&split[q]`), reads too, which is why they are
/// `mutating`: Array's getter returns a copy of the element, and a call into the model's module
/// on that copy retains and releases every array the model holds. The arrays hold models, not
/// optionals: through `&split[q]!` the compiler moved the whole model out of the array and back
/// (a memmove of several hundred bytes per step). A vq without a model of a format holds that
/// format's `placeholder`, one instance shared by every such slot (its arrays are shared, so it
/// costs nothing per vq), never used: `kind` says which slot is real.
struct FormatTable<Split, Packed> {
    enum Kind: UInt8 { case none, split, packed }
    /// Which of `split` and `packed` holds vq `q`'s model (a byte to test on every event).
    private(set) var kind: [Kind]
    private var split: [Split]
    private var packed: [Packed]
    private let placeholder: (split: Split, packed: Packed)

    init(count n: Int, placeholder split: Split, _ packed: Packed) {
        placeholder = (split, packed)
        kind = Array(repeating: .none, count: n)
        self.split = Array(repeating: split, count: n)
        self.packed = Array(repeating: packed, count: n)
    }

    var count: Int { kind.count }
    var indices: Range<Int> { kind.indices }

    @inline(__always) func has(_ q: Int) -> Bool { kind[q] != .none }
    @inline(__always) func isSplit(_ q: Int) -> Bool { kind[q] == .split }

    /// Takes `model` as vq `q`'s: one of the two types, or a bug of the caller.
    mutating func set(_ q: Int, _ model: Any) {
        remove(q)
        if let s = model as? Split { split[q] = s; kind[q] = .split }
        else if let p = model as? Packed { packed[q] = p; kind[q] = .packed }
        else { preconditionFailure("a model of a type this table does not hold: \(type(of: model))") }
    }

    mutating func remove(_ q: Int) {
        switch kind[q] {
        case .none: return
        case .split: split[q] = placeholder.split
        case .packed: packed[q] = placeholder.packed
        }
        kind[q] = .none
    }

    /// A copy of vq `q`'s split model, if it has one (it retains each array of the model): for
    /// the rare paths; the event path uses `withSplit`.
    func splitModel(_ q: Int) -> Split? { kind[q] == .split ? split[q] : nil }

    /// Runs `body` on vq `q`'s split model in place; nil when it has none.
    @inline(__always) mutating func withSplit<R>(_ q: Int, _ body: (inout Split) -> R) -> R? {
        kind[q] == .split ? body(&split[q]) : nil
    }

    /// Runs `split` or `packed` on vq `q`'s model in place; nil when it has none.
    @inline(__always) mutating func with<R>(_ q: Int, split s: (inout Split) -> R, packed p: (inout Packed) -> R) -> R? {
        switch kind[q] {
        case .none: return nil
        case .split: return s(&split[q])
        case .packed: return p(&packed[q])
        }
    }
}

typealias RingTable = FormatTable<SplitVirtqueue, PackedVirtqueue>
typealias PolledTable = FormatTable<PolledRing, PolledPackedRing>

extension FormatTable where Split == SplitVirtqueue, Packed == PackedVirtqueue {
    /// Vq `q`'s model through the format seam, boxed: for the rare paths.
    subscript(q: Int) -> (any RingModel)? {
        switch kind[q] {
        case .none: return nil
        case .split: return split[q]
        case .packed: return packed[q]
        }
    }

    mutating func size(_ q: Int) -> UInt32? { with(q, split: { $0.size }, packed: { $0.size }) }
    func format(_ q: Int) -> RingFormat? { kind[q] == .none ? nil : (kind[q] == .split ? .split : .packed) }

    /// Indirect-table memory of vq `q`'s model, in the units of `Checker.indirectBudget`.
    mutating func indirectCost(_ q: Int) -> Int {
        with(q, split: { Checker.indirectCost($0) }, packed: { Checker.indirectCost($0) }) ?? 0
    }
    /// Applies `step` to vq `q`'s model, its findings appended to `v` in place.
    @inline(__always) mutating func apply(_ q: Int, _ step: RingStep, into v: inout [Violation]) -> StepEffect {
        switch kind[q] {
        case .none: preconditionFailure("vq \(q) has no ring model")
        case .split: return split[q].apply(step, into: &v)
        case .packed: return packed[q].apply(step, into: &v)
        }
    }
    mutating func interrupt(_ q: Int) { _ = with(q, split: { $0.interrupt() }, packed: { $0.interrupt() }) }
    mutating func owedInterrupt(_ q: Int) -> OwedNotification? { with(q, split: { $0.owedInterrupt }, packed: { $0.owedInterrupt }) ?? nil }
    mutating func kick(_ q: Int) { _ = with(q, split: { $0.kick() }, packed: { $0.kick() }) }
    mutating func releaseKick(_ q: Int) { _ = with(q, split: { $0.releaseKick() }, packed: { $0.releaseKick() }) }
    /// The kick vq `q`'s driver owes, where the trace shows its kicks.
    mutating func owedKick(_ q: Int) -> OwedNotification? {
        with(q, split: { $0.kicksSeen ? $0.owedKick : nil }, packed: { $0.kicksSeen ? $0.owedKick : nil }) ?? nil
    }
    mutating func setFeatures(_ q: Int, _ f: RingFeatures) { _ = with(q, split: { $0.features = f }, packed: { $0.features = f }) }
    mutating func setBase(_ q: Int, _ base: RingBase) { _ = with(q, split: { $0.setBase(base) }, packed: { $0.setBase(base) }) }
    mutating func forgetIdleIndirectTables(_ q: Int) {
        _ = with(q, split: { $0.forgetIdleIndirectTables() }, packed: { $0.forgetIdleIndirectTables() })
    }
}

extension FormatTable where Split == PolledRing, Packed == PolledPackedRing {
    /// Vq `q`'s judge through the format seam, boxed (a copy): for the rare paths.
    subscript(q: Int) -> (any PolledRingModel)? {
        switch kind[q] {
        case .none: return nil
        case .split: return split[q]
        case .packed: return packed[q]
        }
    }

    mutating func size(_ q: Int) -> UInt32? { with(q, split: { $0.size }, packed: { $0.size }) }
    mutating func format(_ q: Int) -> RingFormat? { with(q, split: { $0.format }, packed: { $0.format }) }
    /// Indirect-table memory of vq `q`'s judge, in the units of `Checker.indirectBudget`.
    mutating func indirectCost(_ q: Int) -> Int {
        with(q, split: { $0.indirectEntriesHeld + Checker.indirectTableCost * $0.indirectTablesHeld },
             packed: { $0.indirectEntriesHeld + Checker.indirectTableCost * $0.indirectTablesHeld }) ?? 0
    }
    mutating func observe(_ q: Int, _ o: PolledObservation, ref: UInt64) -> PollOutcome? {
        with(q, split: { $0.observe(o, ref: ref) }, packed: { $0.observe(o, ref: ref) }) ?? nil
    }
    /// `observe`, adding to `indirectDelta` the change it made to `indirectCost(q)`: one access to
    /// the judge per observation instead of three (the checker keeps the budget on every one).
    // A switch on the kind, inlined into the caller, as `RingTable.apply`: through `with` and its
    // closures this was a call of its own per observation (about 110 instructions).
    @inline(__always)
    mutating func observe(_ q: Int, _ o: PolledObservation, ref: UInt64, indirectDelta: inout Int) -> PollOutcome? {
        switch kind[q] {
        case .none: return nil
        case .split: return Self.observe(&split[q], o, ref: ref, indirectDelta: &indirectDelta)
        case .packed: return Self.observe(&packed[q], o, ref: ref, indirectDelta: &indirectDelta)
        }
    }

    /// The judge reached in place (`inout`): read through the array's getter, the costs would copy it.
    @inline(__always)
    private static func observe<R: PolledRingModel>(_ r: inout R, _ o: PolledObservation, ref: UInt64, indirectDelta: inout Int) -> PollOutcome? {
        let before = r.indirectEntriesHeld + Checker.indirectTableCost * r.indirectTablesHeld
        let outcome = r.observe(o, ref: ref)
        indirectDelta += r.indirectEntriesHeld + Checker.indirectTableCost * r.indirectTablesHeld - before
        return outcome
    }
    mutating func closeLegacyPoll(_ q: Int) -> PollOutcome? {
        with(q, split: { $0.closeLegacyPoll() }, packed: { $0.closeLegacyPoll() }) ?? nil
    }
    mutating func gap(_ q: Int) { _ = with(q, split: { $0.gap() }, packed: { $0.gap() }) }
    /// A poll that ends a gap (`PolledRingModel.gapEnds`: a packed restart keeps what it read).
    mutating func gapEnds(_ q: Int) { _ = with(q, split: { $0.gapEnds() }, packed: { $0.gapEnds() }) }
    mutating func interrupt(_ q: Int) { _ = with(q, split: { $0.interrupt() }, packed: { $0.interrupt() }) }
    mutating func setFeatures(_ q: Int, _ f: RingFeatures) { _ = with(q, split: { $0.setFeatures(f) }, packed: { $0.setFeatures(f) }) }
    mutating func setBase(_ q: Int, _ b: RingBase) { _ = with(q, split: { $0.setBase(b) }, packed: { $0.setBase(b) }) }
    mutating func forgetIdleIndirectTables(_ q: Int) {
        _ = with(q, split: { $0.forgetIdleIndirectTables() }, packed: { $0.forgetIdleIndirectTables() })
    }
    /// Ends vq `q`'s observation: what it left undecided is counted; returns its coverage.
    mutating func finish(_ q: Int) -> PolledCoverage? {
        with(q, split: { $0.finish(); return $0.coverage }, packed: { $0.finish(); return $0.coverage })
    }
}
