/// A rule broken by one step of a model. Models report these; the checker adds where and when.
public struct Violation: Equatable, Sendable, CustomStringConvertible {
    public let rule: RuleID
    public let message: String
    public init(_ rule: RuleID, _ message: String) { self.rule = rule; self.message = message }
    public var description: String { "\(rule.rawValue): \(message)" }
}
