import VirtioProtocol
import TraceFormat

/// One broken rule at one place in a trace.
public struct Finding: Sendable, Equatable {
    public let rule: RuleID
    /// 0-based index of the event that broke the rule (nil for end-of-trace findings).
    public let eventIndex: UInt64?
    /// Byte offset of that event in the binary trace (the end of the file for end-of-trace findings).
    public let offset: UInt64
    /// The virtqueue concerned, if any.
    public let vq: UInt16?
    /// What happened, in plain words.
    public let message: String
    /// The last few events on that vq (or device-wide), oldest first, ending with the culprit.
    public var context: [ContextEvent]

    public init(rule: RuleID, eventIndex: UInt64?, offset: UInt64, vq: UInt16?, message: String, context: [ContextEvent] = []) {
        self.rule = rule; self.eventIndex = eventIndex; self.offset = offset; self.vq = vq
        self.message = message; self.context = context
    }

    public var specRef: String { rule.rule.specRef }
}

/// An event as shown in a finding's context.
public struct ContextEvent: Sendable, Equatable {
    public let index: UInt64
    public let offset: UInt64
    public let text: String
    public init(index: UInt64, offset: UInt64, text: String) { self.index = index; self.offset = offset; self.text = text }
}
