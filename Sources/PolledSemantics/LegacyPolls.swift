/// How traces of older recorders (no `poll` events) divide into polls. Per poll the old recorder
/// wrote `(desc* avail_entry)+ avail_idx` if avail.idx had moved, then `used_entry+ used_idx` if
/// used.idx had moved: an observation that cannot continue the open poll starts the next one.
/// One definition, used by `PolledRing` and by tools that edit such traces (`mutate`).
public struct LegacyPolls: Sendable {
    public enum Part: Sendable { case none, availPart, availDone, usedPart, usedDone }
    public private(set) var part = Part.none

    public init() {}

    /// Whether an observation of kind `next` closes the open poll first; then records it.
    public mutating func closesPoll(before next: Part) -> Bool {
        defer { part = next }
        switch (part, next) {
        case (.none, _), (.availPart, .availPart), (.availPart, .availDone), (.availPart, .usedPart),
             (.availDone, .usedPart), (.availDone, .usedDone), (.usedPart, .usedPart), (.usedPart, .usedDone):
            return false
        default:
            return true
        }
    }

    /// Whether the open poll is complete (its last part ended with its index).
    public var complete: Bool { part == .availDone || part == .usedDone }

    public mutating func reset() { part = .none }
}
