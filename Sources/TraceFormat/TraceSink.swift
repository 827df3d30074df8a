/// Where a capture's events go. The recorder opens the sink with the header as soon as it starts
/// (so a trace exists whatever happens next), writes events in trace order, flushes at least once
/// a second, and closes it at the end. A file is one sink; live checking is a sink that tees into
/// the checker (`CheckingSink`, in `Sources/Checker`), composed outside the recorder; `serve` writes
/// into the same sinks.
public protocol TraceSink: AnyObject {
    func open(_ header: TraceHeader) throws(TraceSinkError)
    func write(_ event: TraceEvent)
    /// A group of events, in order (a poll's snapshot: one call instead of one per event).
    func write(contentsOf events: [TraceEvent])
    /// Makes what was written so far durable enough that a crash or kill loses at most what follows.
    func flush()
    func close()
    /// Set when writing failed; the capture stops, and no valid trace can be promised.
    var failure: String? { get }
    /// Set when the sink wants the capture to end (e.g. a checking sink at its first finding).
    var stopRequested: Bool { get }
}

extension TraceSink {
    public func write(contentsOf events: [TraceEvent]) { for e in events { write(e) } }
}

public struct TraceSinkError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The binary trace file (`TraceWriter`).
public final class TraceFileSink: TraceSink {
    public let path: String
    private var writer: TraceWriter?
    public init(path: String) { self.path = path }

    public func open(_ header: TraceHeader) throws(TraceSinkError) {
        do {
            writer = try TraceWriter(path: path, header: header)
        } catch {
            throw TraceSinkError("\(error)")
        }
        writer?.flush()
        if let f = writer?.failure { throw TraceSinkError(f) }
    }

    public func write(_ event: TraceEvent) { writer?.write(event) }
    public func write(contentsOf events: [TraceEvent]) { writer?.write(contentsOf: events) }
    public func flush() { writer?.flush() }
    public func close() { writer?.close(); }
    public var failure: String? { writer?.failure }
    public var stopRequested: Bool { false }
}

/// Drops every event: `serve --check` without `--trace` judges the events without keeping them.
public final class NullTraceSink: TraceSink {
    public init() {}
    public func open(_ header: TraceHeader) throws(TraceSinkError) {}
    public func write(_ event: TraceEvent) {}
    public func flush() {}
    public func close() {}
    public var failure: String? { nil }
    public var stopRequested: Bool { false }
}
