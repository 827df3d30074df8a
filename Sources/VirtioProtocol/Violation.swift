/// A rule broken by one step of a model. Models report these; the checker adds where and when.
public struct Violation: Equatable, Sendable, CustomStringConvertible {
    public let rule: RuleID
    public let message: String
    public init(_ rule: RuleID, _ message: String) { self.rule = rule; self.message = message }
    public var description: String { "\(rule.rawValue): \(message)" }
}

extension Array where Element == Violation {
    /// `v += found`, doing nothing when nothing was found. The rules gather their findings with
    /// `+=` on almost every event, nearly always with nothing to add, and the standard library's
    /// append of an empty array to an empty one still made a new buffer each time.
    @inlinable public static func += (lhs: inout [Violation], rhs: [Violation]) {
        if rhs.isEmpty { return }
        if lhs.isEmpty { lhs = rhs } else { lhs.append(contentsOf: rhs) }
    }
}
