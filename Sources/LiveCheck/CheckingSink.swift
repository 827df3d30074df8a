import Checker
import Recorder
import TraceFormat
import VirtioProtocol

/// A trace sink that passes every event to another sink (the file) and to the checker: live
/// checking is this composition, so the recorder itself knows no rules.
public final class CheckingSink: TraceSink {
    let inner: TraceSink
    let stopOnViolation: Bool
    let onFinding: (Finding) -> Void
    private var checker: Checker?
    private var headerSize = 0
    private var index: UInt64 = 0
    private var seen = Set<RuleID>()
    /// The first finding of each rule, as `check` shows them.
    public private(set) var findings: [Finding] = []
    public private(set) var totalFindings = 0
    /// What the checker could not judge (gaps, packed rings), as `check` reports it.
    public private(set) var notJudged: [String] = []
    /// Set when the checker refused the trace (its ring budget).
    public private(set) var fatal: String?

    public init(writingTo inner: TraceSink, stopOnViolation: Bool = false, onFinding: @escaping (Finding) -> Void = { _ in }) {
        self.inner = inner; self.stopOnViolation = stopOnViolation; self.onFinding = onFinding
    }

    public func open(_ header: TraceHeader) throws(TraceSinkError) {
        try inner.open(header)
        checker = Checker(header: header)
        headerSize = header.encodedSize
    }

    public func write(_ event: TraceEvent) {
        inner.write(event)
        // In place: a copy of the checker out of the optional would make every event copy its
        // rings (copy-on-write of arrays the size of the queue), which is O(N) per event.
        guard checker != nil else { return }
        let fs = checker!.process(event, index: index, offset: UInt64(headerSize) + index * UInt64(TraceEvent.size))
        index += 1
        if let f = checker!.fatal, fatal == nil { fatal = f }
        report(fs)
    }

    private func report(_ fs: [Finding]) {
        for f in fs {
            totalFindings += 1
            // First finding per rule in full, the rest counted (as `check` does).
            if seen.insert(f.rule).inserted {
                findings.append(f)
                onFinding(f)
                checker?.suppressed.insert(f.rule)
            }
        }
    }

    public func flush() { inner.flush() }

    public func close() {
        if var c = checker {
            report(c.finish())
            totalFindings += c.suppressedCount
            notJudged = c.notJudged
            checker = nil
        }
        inner.close()
    }

    public var failure: String? { inner.failure }
    public var stopRequested: Bool { inner.stopRequested || (stopOnViolation && totalFindings > 0) || fatal != nil }
}
