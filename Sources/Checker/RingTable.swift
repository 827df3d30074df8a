import VirtioProtocol
import VirtqueueModel

/// The exact model of each vq's ring, kept by format in arrays of the concrete model types.
/// Each step mutates its model in place. Held as `any RingModel`, every step went through an
/// existential box, and every look at the split model (`as? SplitVirtqueue`) copied the whole
/// model, retaining each of its arrays: on a long trace most of the checker's time.
/// `RingModel` stays the seam both formats implement; this table only decides where they live.
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

    func size(_ q: Int) -> UInt32? {
        switch kind[q] {
        case .none: return nil
        case .split: return split[q]!.size
        case .packed: return packed[q]!.size
        }
    }

    func format(_ q: Int) -> RingFormat? {
        switch kind[q] {
        case .none: return nil
        case .split: return .split
        case .packed: return .packed
        }
    }

    /// Indirect-table memory of vq `q`'s model, in the units of `Checker.indirectBudget`.
    func indirectCost(_ q: Int) -> Int {
        switch kind[q] {
        case .none: return 0
        case .split: return Checker.indirectCost(split[q]!)
        case .packed: return Checker.indirectCost(packed[q]!)
        }
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

    func owedInterrupt(_ q: Int) -> OwedInterrupt? {
        switch kind[q] {
        case .none: return nil
        case .split: return split[q]!.owedInterrupt
        case .packed: return packed[q]!.owedInterrupt
        }
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
