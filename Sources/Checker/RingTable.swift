import VirtioProtocol
import VirtqueueModel

/// The exact model of each vq's ring, kept by format in arrays of the concrete model types.
/// Each step mutates its model in place. Held as `any RingModel`, every step went through an
/// existential box, and every look at the split model (`as? SplitVirtqueue`) copied the whole
/// model, retaining each of its arrays: on a long trace most of the checker's time.
/// `RingModel` stays the seam both formats implement; this table only decides where they live.
///
/// Every member reaches a model in place (`&split[q]!`), reads too, which is why they are
/// `mutating`: Array's getter returns a copy of the element, and a call into the model's module
/// on that copy retains and releases every array the model holds.
struct RingTable {
    enum Kind: UInt8 { case none, split, packed }
    /// Which of `split` and `packed` holds vq `q`'s model (a byte to test on every event).
    private(set) var kind: [Kind]
    var split: [SplitVirtqueue?]
    var packed: [PackedVirtqueue?]

    init(count n: Int) {
        kind = Array(repeating: .none, count: n)
        split = Array(repeating: nil, count: n)
        packed = Array(repeating: nil, count: n)
    }

    var count: Int { kind.count }
    var indices: Range<Int> { kind.indices }

    @inline(__always) func has(_ q: Int) -> Bool { kind[q] != .none }
    @inline(__always) func isSplit(_ q: Int) -> Bool { kind[q] == .split }

    /// Vq `q`'s model through the format seam, boxed: for the rare paths (finding text, the end
    /// of the trace, a test); the event path uses the members below.
    subscript(q: Int) -> (any RingModel)? {
        switch kind[q] {
        case .none: return nil
        case .split: return split[q]!
        case .packed: return packed[q]!
        }
    }

    mutating func set(_ q: Int, _ model: any RingModel) {
        remove(q)
        if let s = model as? SplitVirtqueue { split[q] = s; kind[q] = .split }
        else if let p = model as? PackedVirtqueue { packed[q] = p; kind[q] = .packed }
        else { preconditionFailure("a ring model of a format the checker does not store: \(model.format)") }
    }

    mutating func remove(_ q: Int) {
        split[q] = nil
        packed[q] = nil
        kind[q] = .none
    }

    /// Runs `body` on vq `q`'s split model in place; nil when it has none.
    @inline(__always) mutating func withSplit<R>(_ q: Int, _ body: (inout SplitVirtqueue) -> R) -> R? {
        kind[q] == .split ? body(&split[q]!) : nil
    }

    /// Runs `split` or `packed` on vq `q`'s model in place; nil when it has none.
    @inline(__always) mutating func with<R>(_ q: Int, split s: (inout SplitVirtqueue) -> R, packed p: (inout PackedVirtqueue) -> R) -> R? {
        switch kind[q] {
        case .none: return nil
        case .split: return s(&split[q]!)
        case .packed: return p(&packed[q]!)
        }
    }

    mutating func size(_ q: Int) -> UInt32? { with(q, split: { $0.size }, packed: { $0.size }) }

    func format(_ q: Int) -> RingFormat? {
        switch kind[q] {
        case .none: return nil
        case .split: return .split
        case .packed: return .packed
        }
    }

    /// Indirect-table memory of vq `q`'s model, in the units of `Checker.indirectBudget`.
    mutating func indirectCost(_ q: Int) -> Int {
        with(q, split: { Checker.indirectCost($0) }, packed: { Checker.indirectCost($0) }) ?? 0
    }

    mutating func apply(_ q: Int, _ step: RingStep) -> StepResult {
        switch kind[q] {
        case .none: preconditionFailure("vq \(q) has no ring model")
        case .split: return split[q]!.apply(step)
        case .packed: return packed[q]!.apply(step)
        }
    }

    mutating func interrupt(_ q: Int) {
        switch kind[q] {
        case .none: break
        case .split: split[q]!.interrupt()
        case .packed: packed[q]!.interrupt()
        }
    }

    mutating func owedInterrupt(_ q: Int) -> OwedInterrupt? {
        with(q, split: { $0.owedInterrupt }, packed: { $0.owedInterrupt }) ?? nil
    }

    mutating func setFeatures(_ q: Int, _ f: RingFeatures) {
        switch kind[q] {
        case .none: break
        case .split: split[q]!.features = f
        case .packed: packed[q]!.features = f
        }
    }

    mutating func setBase(_ q: Int, _ base: RingBase) {
        switch kind[q] {
        case .none: break
        case .split: split[q]!.setBase(base)
        case .packed: packed[q]!.setBase(base)
        }
    }

    mutating func forgetIdleIndirectTables(_ q: Int) {
        switch kind[q] {
        case .none: break
        case .split: split[q]!.forgetIdleIndirectTables()
        case .packed: packed[q]!.forgetIdleIndirectTables()
        }
    }
}
