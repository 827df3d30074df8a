/// How a capture ended and what it produced.
public struct RecordResult: Sendable {
    public enum End: Sendable, Equatable {
        case frontendClosed, backendClosed, duration, maxEvents, signal
        /// The sink asked to stop (a checking sink at its first finding).
        case sinkStopped
        /// A session could not go on: a malformed message, a stalled peer, an I/O error. The trace
        /// on disk is still valid.
        case failed(String)
        /// Nothing was captured: the output or the sockets could not be set up.
        case setupFailed(String)
    }
    public var end: End
    public var events: UInt64 = 0
    public var seconds: Double = 0
    public var queueCount = 0
    /// Sessions that ended because a peer broke the framing or stalled (with `--reconnect` the
    /// capture goes on after them), with the reason.
    public var sessionFailures: [String] = []
    /// Rings not followed or with gaps, each with the reason: the trace is incomplete.
    public var ringProblems: [String] = []
    /// Front-end messages the trace cannot say (a vring beyond the header's queue count).
    public var peerErrors: [String] = []
    /// Set when the trace file could not be written: no valid trace is promised.
    public var traceFailure: String?

    public init(end: End) { self.end = end }

    /// Something was observed but not recorded, or a ring was not followed throughout.
    public var incomplete: Bool { !ringProblems.isEmpty || !peerErrors.isEmpty }
}
