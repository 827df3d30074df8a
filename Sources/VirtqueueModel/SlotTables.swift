/// Per-descriptor and per-position state of a ring, in arrays indexed by slot instead of
/// dictionaries: a look-up is an index, not a hash, and nothing is allocated per buffer.
/// Each has the dictionary operations the models used, so the rules read as before.

/// A value per chain head (a descriptor index). Heads at or past the ring size have none.
struct HeadTable<Value> {
    private var values: [Value?]
    /// Heads holding a value.
    private(set) var count = 0

    init(size: UInt32) { values = Array(repeating: nil, count: Int(size)) }

    subscript(head: UInt16) -> Value? {
        get { Int(head) < values.count ? values[Int(head)] : nil }
        set {
            precondition(Int(head) < values.count || newValue == nil, "head \(head) outside the ring")
            guard Int(head) < values.count else { return }
            if values[Int(head)] == nil { if newValue != nil { count += 1 } } else if newValue == nil { count -= 1 }
            values[Int(head)] = newValue
        }
    }

    /// Modifies the value of `head` in place (it must hold one).
    mutating func update(_ head: UInt16, _ body: (inout Value) -> Void) {
        body(&values[Int(head)]!)
    }

    @discardableResult
    mutating func removeValue(forKey head: UInt16) -> Value? {
        guard let v = self[head] else { return nil }
        self[head] = nil
        return v
    }

    var isEmpty: Bool { count == 0 }

    /// The heads holding a value, in ascending order.
    var keys: [UInt16] { values.indices.filter { values[$0] != nil }.map { UInt16($0) } }
}

/// A value per free-running 16-bit ring position, for positions inside a window of `size` (a power
/// of two) consecutive positions: the used elements written and not yet published lie in
/// [used, used + size), so no two of them share a slot. The position is kept beside the value, so
/// a slot left from an earlier lap reads as empty.
struct PositionTable<Value> {
    private var values: [Value?]
    private var positions: [UInt16]
    private let mask: Int

    init(size: UInt32) {
        precondition(size > 0 && size & (size - 1) == 0, "a window of a power of two positions")
        values = Array(repeating: nil, count: Int(size))
        positions = Array(repeating: 0, count: Int(size))
        mask = Int(size) - 1
    }

    subscript(pos: UInt16) -> Value? {
        get {
            let s = Int(pos) & mask
            return positions[s] == pos ? values[s] : nil
        }
        set {
            let s = Int(pos) & mask
            if newValue == nil {
                if positions[s] == pos { values[s] = nil }
            } else {
                positions[s] = pos
                values[s] = newValue
            }
        }
    }

    mutating func removeValue(forKey pos: UInt16) -> Value? {
        guard let v = self[pos] else { return nil }
        values[Int(pos) & mask] = nil
        return v
    }
}

extension HeadTable: Sendable where Value: Sendable {}
extension PositionTable: Sendable where Value: Sendable {}
