import TraceFormat

/// One class of hostile behaviour: what the peer does, with which recorder options, and what
/// the peer under test must do about it.
public struct Attack: Sendable, CustomStringConvertible {
    public enum Category: String, CaseIterable, Sendable {
        case framing, fds, memoryTables = "memory tables", ringAddresses = "ring addresses and sizes", indices, floods
        case stalls, disconnects, rewrites = "rings rewritten while polled", notifications
    }
    /// Which peer misbehaves: a front-end attack runs against any back-end under test (the recorder,
    /// later `serve`); a back-end attack against anything that connects to a back-end.
    public enum Side: Sendable { case frontEnd, backEnd }

    public struct Expectation: Sendable {
        /// Exit statuses allowed (the `CheckExit` codes).
        public var exit: Set<Int32>
        /// Text the peer under test must say on stderr.
        public var message: String?
        /// A `ring_gap` of this reason must be in the trace.
        public var gap: RingGapReason?
        /// `check` of the trace must give one of these (never 2: a garbage file).
        public var check: Set<Int32> = [0, 1, 3]
        /// The recorder's eventfds stand in for kick/call fds (`--relay-notifications`).
        public var fdsReplaced = false
        public init(exit: Set<Int32>, message: String? = nil, gap: RingGapReason? = nil, check: Set<Int32> = [0, 1, 3], fdsReplaced: Bool = false) {
            self.exit = exit; self.message = message; self.gap = gap; self.check = check; self.fdsReplaced = fdsReplaced
        }
    }

    public let name: String
    public let category: Category
    public let side: Side
    public var args: [String] = []
    public var backEnd: BackEndBehaviour = .cooperative
    public var memorySize = 1 << 16
    public var drainReplies = true
    /// Seconds the capture may run (`--duration`); the attack normally ends it sooner.
    public var duration = 2.0
    /// SIGTERM to the peer under test this many seconds after the attack starts.
    public var sigtermAfter: Double?
    /// Whether the front-end connects at all.
    public var connects = true
    public let expect: Expectation
    public let run: @Sendable (HostileFrontEnd) -> Void

    public init(_ name: String, _ category: Category, side: Side = .frontEnd, args: [String] = [], backEnd: BackEndBehaviour = .cooperative,
                memorySize: Int = 1 << 16, drainReplies: Bool = true, duration: Double = 2, sigtermAfter: Double? = nil,
                connects: Bool = true, expect: Expectation, run: @escaping @Sendable (HostileFrontEnd) -> Void) {
        self.name = name; self.category = category; self.side = side; self.args = args; self.backEnd = backEnd
        self.memorySize = memorySize; self.drainReplies = drainReplies; self.duration = duration
        self.sigtermAfter = sigtermAfter; self.connects = connects; self.expect = expect; self.run = run
    }

    public var description: String { name }
}
