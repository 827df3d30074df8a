import CSupport
import Foundation
import Synchronization
import TraceFormat

/// Collects the events of every thread of `serve` into one trace, in an order they really
/// happened in, and hands them to the sink (the file, the checker, or both) on a writer thread.
///
/// Each producer (a worker, or the control thread) builds the events of one service pass in a
/// buffer of its own and appends the whole pass under one lock. So per vq the trace is the order
/// of the one worker serving it, and across workers it is a linearisation of what happened:
/// passes on different vqs commute, and every hand-off between threads is made only after the
/// producer's events are appended (a TX pass appends before its frames reach RX[k]; the control
/// thread appends a ring message only while the workers are paused). One lock acquisition per
/// pass, not per event, is what keeps the cost low (`Specs/serve.md` has the measurement).
///
/// Memory stays bounded: at `maxPending` events not yet written, producers wait for the writer.
/// The bound is also how far the checker may lag behind the device, so it is kept small: at the end
/// of a session serve writes and judges at most about two batches of it before it exits (a bound of
/// 1M events let a fast front-end leave serve tens of seconds of judging behind on a debug build).
final class EventLog: @unchecked Sendable {
    let sink: TraceSink
    private let cond = NSCondition()
    private var pending: [TraceEvent] = []
    private var closing = false
    private var writerDone = false
    private let maxPending: Int
    private var thread: Thread?
    private let stop = Atomic<Bool>(false)
    /// Events written to the sink.
    private(set) var written: UInt64 = 0
    let t0: UInt64

    init(sink: TraceSink, maxPending: Int = 1 << 16, t0: UInt64) {
        self.sink = sink; self.maxPending = maxPending; self.t0 = t0
        pending.reserveCapacity(4096)
    }

    /// Nanoseconds since serve started (the trace's time stamps).
    var now: UInt64 { cs_now_ns() &- t0 }

    func start() {
        let t = Thread { [self] in writerLoop() }
        t.name = "serve-trace"
        thread = t
        t.start()
    }

    /// Appends a pass's events (and empties `batch`). Waits while the writer is `maxPending` behind.
    func append(_ batch: inout [TraceEvent]) {
        guard !batch.isEmpty else { return }
        cond.lock()
        while pending.count >= maxPending && !writerDone { cond.wait() }
        if !writerDone { pending.append(contentsOf: batch) }
        cond.signal()
        cond.unlock()
        batch.removeAll(keepingCapacity: true)
    }

    func append(_ e: TraceEvent) {
        var b = [e]
        append(&b)
    }

    /// Whether the sink asked the run to end (the checker's first finding with --stop-on-violation)
    /// or failed.
    var stopRequested: Bool { stop.load(ordering: .relaxed) }

    private func writerLoop() {
        var local: [TraceEvent] = []
        local.reserveCapacity(4096)
        var lastFlush = cs_now_ns()
        while true {
            cond.lock()
            while pending.isEmpty && !closing { _ = cond.wait(until: Date().addingTimeInterval(0.5)) ; if pending.isEmpty && !closing { break } }
            swap(&pending, &local)
            let end = closing && local.isEmpty
            cond.broadcast()
            cond.unlock()
            for e in local { sink.write(e) }
            written += UInt64(local.count)
            local.removeAll(keepingCapacity: true)
            if sink.stopRequested || sink.failure != nil { stop.store(true, ordering: .relaxed) }
            let t = cs_now_ns()
            if t &- lastFlush > 500_000_000 { sink.flush(); lastFlush = t }
            if end { break }
        }
        sink.flush()
        cond.lock()
        writerDone = true
        cond.broadcast()
        cond.unlock()
    }

    /// Writes what is pending, stops the writer and closes the sink.
    func close() {
        cond.lock()
        closing = true
        cond.broadcast()
        while !writerDone { cond.wait() }
        cond.unlock()
        sink.close()
    }
}
