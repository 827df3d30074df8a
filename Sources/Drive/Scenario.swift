import VirtioProtocol

/// What one scenario run concluded about the back-end.
public enum Verdict: String, Sendable, CaseIterable {
    /// Everything the scenario exercised conformed.
    case pass = "PASS"
    /// A device rule or a scenario check was broken (named with its spec reference and event).
    case fail = "FAIL"
    /// The back-end refused input the spec lets it refuse (stopped the ring, left the chain unused,
    /// answered failure, reset the connection); what it refused is said.
    case rejected = "REJECTED"
    /// No reply or no progress within the bound.
    case wedged = "WEDGED"
    /// The connection closed where the spec gives no reason to, or the back-end is gone.
    case crashed = "CRASHED"
    /// The back-end does not offer what the scenario needs.
    case skipped = "SKIPPED"
    /// `drive` itself failed: nothing is concluded about the back-end.
    case error = "ERROR"

    /// Whether the verdict lets the gate pass: conformant behaviour (PASS, or a refusal the spec
    /// allows) or a scenario that did not apply.
    public var passesGate: Bool { self == .pass || self == .rejected || self == .skipped }
}

/// A check a scenario makes beyond the rule catalogue: what only an active driver can see (the
/// device's writes to guest memory, when a ring starts, the RX header it fills in). Each names the
/// requirements it stands for (`Specs/requirements.md` IDs) and the spec text.
public struct DriveCheck: Sendable, Hashable {
    public let id: String
    public let requirements: [String]
    public let spec: String
    public let statement: String

    public static func == (a: DriveCheck, b: DriveCheck) -> Bool { a.id == b.id }
    public func hash(into h: inout Hasher) { h.combine(id) }
}

extension DriveCheck {
    public static let writes = DriveCheck(
        id: "DRIVE-WRITES", requirements: ["SPLIT-08", "SPLIT-09"],
        spec: "virtio 1.x \"The Virtqueue Descriptor Table\" (device MUST NOT write a device-readable buffer or the descriptor table); \"The Virtqueue Used Ring\"",
        statement: "The device writes guest memory only in its used rings and in device-writable buffers the driver made available.")
    public static let startsOnKick = DriveCheck(
        id: "DRIVE-STARTS-ON-KICK", requirements: ["VU-07"],
        spec: "vhost-user.rst \"Ring states\" (each ring is initialized stopped; the back-end starts it upon a kick; a stopped ring is not processed at all)",
        statement: "A ring whose kick fd was given is not processed before the first kick on it.")
    public static let progress = DriveCheck(
        id: "DRIVE-PROGRESS", requirements: ["VU-06", "VU-02", "VU-25"],
        spec: "vhost-user.rst \"Ring states\" (a started, enabled ring is processed); \"Communication\" and REPLY_ACK (requests that need a reply get one)",
        statement: "Buffers made available on a started, enabled ring are used, and every request that needs a reply gets one, within the bound (else WEDGED).")
    public static let survives = DriveCheck(
        id: "DRIVE-SURVIVES", requirements: ["VU-27"],
        spec: "virtio 1.x \"Device Status Field\" (a device in an error it cannot recover from sets DEVICE_NEEDS_RESET; the driver recovers by a reset); vhost-user.rst \"Communication\" (a back-end may close the connection on an error; the front-end may reconnect)",
        statement: "After hostile input the back-end is still there: a new connection with a freshly set-up ring is served (else CRASHED or WEDGED).")

    public static let all: [DriveCheck] = [.writes, .startsOnKick, .progress, .survives]
}

/// One scenario: what it does, what it exercises, what the back-end may and may not do, and the
/// driver code that runs it. The catalogue (`Catalogue.all`) is the one definition;
/// `Specs/scenarios.md` and the requirements table's "drive scenarios" column come from it.
public struct Scenario: Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        case boundary = "valid boundary"
        case hostileRing = "hostile ring input"
        case hostileMessage = "hostile vhost-user message"
        public var isHostile: Bool { self != .boundary }
    }

    public let name: String
    public let kind: Kind
    /// What the driver does, in one or two sentences.
    public let summary: String
    /// Requirement IDs (`Specs/requirements.md`) the scenario exercises.
    public let requirements: [String]
    /// Device rules the scenario's trace is judged on that it is built to exercise (every device
    /// rule is judged on every trace; these are the ones the scenario aims at).
    public let rules: [RuleID]
    public let checks: [DriveCheck]
    /// What the spec lets the device do (hostile input: refuse, stop the ring, reset, ...).
    public let allows: String
    /// What the spec forbids the device (consume past avail.idx, complete what was never made
    /// available, write outside a buffer, crash, wedge, ...).
    public let forbids: String
    /// Driver rules the scenario breaks on purpose: the trace must show exactly these against
    /// the driver (a missing one means the scenario did not do what it says: an ERROR).
    public let planted: [RuleID]
    /// Driver rules the hostile input may break as well, depending on what the device did before
    /// (not required in the trace, but not drive's defect either).
    public let mayAlsoBreak: [RuleID]
    /// Device rules not held against the back-end for what it does with the hostile input, and why
    /// (the spec says nothing of what a device does with it).
    public let excused: [RuleID]
    public let excuse: String?
    public let needs: [FeatureBit]
    public let needsProtocol: [ProtocolFeatureBit]
    /// Features that must be off.
    public let excludes: [FeatureBit]
    /// Features `--all` turns on and off (every combination).
    public let matrix: [FeatureBit]
    /// Queue pairs the scenario needs (more: SKIPPED when `--pairs` or GET_QUEUE_NUM is lower).
    public let minPairs: Int
    public let body: @Sendable (Run) throws -> Void

    public init(_ name: String, _ kind: Kind, summary: String, requirements: [String], rules: [RuleID], checks: [DriveCheck] = [],
                allows: String, forbids: String, planted: [RuleID] = [], mayAlsoBreak: [RuleID] = [], excused: [RuleID] = [], excuse: String? = nil,
                needs: [FeatureBit] = [], needsProtocol: [ProtocolFeatureBit] = [], excludes: [FeatureBit] = [], matrix: [FeatureBit] = [],
                minPairs: Int = 1, body: @escaping @Sendable (Run) throws -> Void) {
        self.name = name; self.kind = kind; self.summary = summary; self.requirements = requirements; self.rules = rules
        self.checks = checks; self.allows = allows; self.forbids = forbids; self.planted = planted; self.mayAlsoBreak = mayAlsoBreak; self.excused = excused
        self.excuse = excuse; self.needs = needs; self.needsProtocol = needsProtocol; self.excludes = excludes
        self.matrix = matrix; self.minPairs = minPairs; self.body = body
    }

    /// The feature combinations `--all` runs: every on/off choice of `matrix`.
    public var variants: [Variant] {
        var out: [Variant] = [Variant(on: [])]
        for f in matrix { out = out.flatMap { [ $0, Variant(on: $0.on + [f]) ] } }
        return out.map { Variant(on: $0.on, varied: matrix) }
    }

    /// The one run without `--all`: every matrix feature on where the back-end offers it.
    public var defaultVariant: Variant { Variant(on: matrix, varied: matrix, fallBack: true) }
}

/// The features of one run of a scenario: `on` wanted on, the rest of `varied` off.
public struct Variant: Sendable, Equatable {
    public var on: [FeatureBit]
    public var varied: [FeatureBit] = []
    /// Turn a feature the back-end does not offer off instead of skipping the run.
    public var fallBack = false

    public var label: String {
        varied.isEmpty ? "" : varied.map { (on.contains($0) ? "+" : "-") + Variant.name($0) }.joined(separator: " ")
    }

    public static func name(_ f: FeatureBit) -> String {
        switch f {
        case .eventIdx: return "event_idx"
        case .indirectDesc: return "indirect"
        case .inOrder: return "in_order"
        case .netMrgRxbuf: return "mrg_rxbuf"
        case .ringPacked: return "packed"
        default: return "bit\(f.rawValue)"
        }
    }
}
