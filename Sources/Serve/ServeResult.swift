import Checker
import Foundation

/// How a `serve` run went: sessions, per-vq and per-worker counts, and the verdict.
public struct ServeResult: Sendable {
    public struct VQ: Sendable, Codable {
        public var vq: Int
        public var role: String
        public var worker: Int
        public var buffers: UInt64
        public var packets: UInt64
        public var bytes: UInt64
        public var drops: UInt64
        /// RX: loopback frames still queued when the ring stopped, was disabled or the session ended.
        public var undelivered: UInt64
        public var interrupts: UInt64
        public var kicks: UInt64
    }
    public struct WorkerStats: Sendable, Codable {
        public var id: Int
        public var vqs: [Int]
        public var passes: UInt64
        public var buffers: UInt64
        public var cpuSeconds: Double
        public var wakeups: UInt64
    }

    public let options: ServeOptions
    public var sessions = 0
    /// Nothing could be served: the socket or the trace could not be set up.
    public var setupFailure: String?
    /// Sessions that ended because the front-end broke the framing or stalled.
    public var sessionFailures: [String] = []
    /// Front-end messages naming vrings the device does not have.
    public var peerErrors: [String] = []
    /// Rings the device stopped using for bad driver input.
    public var refusals: [String] = []
    /// A refusal no rule names (an address outside the memory table, a memory fault): the ring's
    /// observation ended there.
    public var unjudgedRefusal = false
    public var events: UInt64 = 0
    public var seconds = 0.0
    public var traceFailure: String?
    public var checked = false
    public var findings: [Finding] = []
    public var totalFindings = 0
    public var notJudged: [String] = []
    public var checkerFailure: String?
    public var vqs: [VQ] = []
    public var workers: [WorkerStats] = []

    public init(options: ServeOptions) { self.options = options }

    /// `CheckExit` codes: 2 nothing served (setup failed, no front-end), the trace could not be
    /// written, the checker refused it, or a front-end broke the framing or stalled; 1 a rule was
    /// broken (with --check); 3 nothing else wrong, but something was not judged or not served (a
    /// vring beyond the device, a ring refused for input no rule names, a trace gap); 0 otherwise.
    public var exitStatus: Int32 {
        if setupFailure != nil || traceFailure != nil || checkerFailure != nil { return CheckExit.usageOrInput }
        if sessions == 0 { return CheckExit.usageOrInput }
        if totalFindings > 0 { return CheckExit.violation }
        if !sessionFailures.isEmpty { return CheckExit.usageOrInput }
        if !peerErrors.isEmpty || unjudgedRefusal || !notJudged.isEmpty { return CheckExit.incomplete }
        return CheckExit.conformant
    }

    /// The end-of-run summary (stderr).
    public var summary: String {
        var out: [String] = []
        let o = options
        out.append("serve: \(sessions) session(s) in \(String(format: "%.1f", seconds)) s; \(o.pairs) queue pair(s), \(workers.count) worker(s) (\(o.mapping)), data \(o.data.rawValue)\(o.tracePath.map { "; \(events) events written to \($0)" } ?? (o.check ? "; \(events) events checked" : ""))")
        for v in vqs where v.buffers > 0 || v.drops > 0 || v.undelivered > 0 || v.kicks > 0 {
            out.append("serve:   vq \(v.vq) \(v.role) worker \(v.worker): \(v.buffers) buffers, \(v.packets) frames, \(v.bytes) bytes, \(v.drops) dropped, \(v.undelivered) undelivered at stop, \(v.interrupts) interrupts, \(v.kicks) kicks")
        }
        let total = workers.reduce(0) { $0 + $1.buffers }
        for w in workers {
            let share = total > 0 ? 100 * Double(w.buffers) / Double(total) : 0
            out.append("serve:   worker \(w.id) (vq \(w.vqs.map(String.init).joined(separator: ","))): \(w.buffers) buffers (\(String(format: "%.1f", share)) %), \(w.passes) passes, \(w.wakeups) wake-ups, \(String(format: "%.3f", w.cpuSeconds)) s CPU")
        }
        if let f = setupFailure { out.append("serve: error: \(f)") }
        if sessions == 0 && setupFailure == nil { out.append("serve: error: no front-end connected: nothing was served or judged") }
        if let f = traceFailure { out.append("serve: error: \(f); the trace on disk is cut short") }
        if let f = checkerFailure { out.append("serve: error: the checker refused the trace: \(f)") }
        for f in sessionFailures { out.append("serve: error: \(f)") }
        for p in peerErrors { out.append("serve: error: \(p)") }
        for r in refusals { out.append("serve: refused: \(r)") }
        for n in notJudged { out.append("serve: not judged: \(n)") }
        if checked {
            if totalFindings > 0 {
                let rules = Set(findings.map(\.rule)).sorted().map(\.rawValue).joined(separator: ", ")
                out.append("serve: NOT conformant: \(totalFindings) finding(s), rules \(rules)")
            } else if exitStatus == CheckExit.conformant {
                out.append("serve: conformant: front-end and back-end broke no rule")
            } else {
                out.append("serve: no rule broken, but not everything was judged (incomplete)")
            }
        }
        return out.joined(separator: "\n")
    }
}
