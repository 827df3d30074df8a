import CSupport
import Checker
import TraceFormat
import VirtioProtocol

/// Why a scenario step could not go on. The runner turns each into a verdict.
public enum DriveError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The back-end closed the connection (CRASHED, or REJECTED where a reset is an allowed answer).
    case closed(String)
    /// No reply, or no progress, within the bound (WEDGED).
    case wedged(String)
    /// The back-end refused something the spec lets it refuse (REJECTED).
    case refused(String)
    /// The back-end does not offer what the scenario needs (SKIPPED).
    case skipped(String)
    /// `drive` itself failed (its memory, a file it writes): no verdict about the back-end.
    case tool(String)

    public var description: String {
        switch self {
        case .closed(let s), .wedged(let s), .refused(let s), .skipped(let s), .tool(let s): return s
        }
    }
}

/// The exact trace of one scenario run, written as it happens: to a file (with `-o`) and into a
/// checker at once, so the findings are known when the run ends and memory stays flat however
/// long the run is.
public final class DriveTrace {
    public let header: TraceHeader
    public let path: String?
    private var writer: TraceWriter?
    private var checker: Checker
    private let t0 = cs_now_ns()
    /// Events written so far (the index the next one gets).
    public private(set) var count: UInt64 = 0
    /// Findings, all of them up to `keep` (a broken back-end can break a rule at every event).
    public private(set) var findings: [Finding] = []
    public private(set) var totalFindings = 0
    public static let keep = 64
    private var finished = false

    /// A vhost-user trace (profile vhost-user, mq layout) of `queues` vrings whose sizes are set
    /// by `set_vring_num` events.
    public init(queues: Int, path: String?) throws(DriveError) {
        header = TraceHeader(profile: .vhostUser, layout: .mq, flags: [], features: 0, workers: 0,
                             queueSizes: Array(repeating: 0, count: max(1, queues)))
        self.path = path
        checker = Checker(header: header)
        if let path {
            do { writer = try TraceWriter(path: path, header: header) } catch { throw .tool("cannot write \(path): \(error)") }
        }
    }

    public var queueCount: Int { header.queueCount }
    public var now: UInt64 { cs_now_ns() &- t0 }

    /// Appends one event (timestamped now) and judges it.
    public func emit(_ event: TraceEvent) {
        guard !finished else { return }
        var e = event
        e.timestamp = now
        writer?.write(e)
        let offset = UInt64(header.encodedSize) + count * UInt64(TraceEvent.size)
        note(checker.process(e, index: count, offset: offset))
        count += 1
    }

    private func note(_ fs: [Finding]) {
        for f in fs {
            totalFindings += 1
            if findings.count < Self.keep { findings.append(f) }
        }
    }

    /// Ends the trace: obligations still open are judged, the file is closed.
    public func finish() {
        guard !finished else { return }
        note(checker.finish())
        finished = true
        writer?.close()
    }

    /// What the checker could not judge (none expected in an exact trace).
    public var notJudged: [String] { checker.notJudged }
    public var writeFailure: String? { writer?.failure }

    // MARK: the events drive writes

    public func control(_ kind: EventKind, vq: UInt16? = nil, value: UInt64 = 0, result: Int16 = 0) {
        if let vq, Int(vq) >= queueCount { return }
        emit(.control(kind, vq: vq ?? TraceEvent.none, value: value, result: result))
    }
}
