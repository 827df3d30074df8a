import CSupport
import Foundation
import Glibc
import TraceFormat
import VhostUser
import VirtioProtocol

/// The device state the control thread and the workers share. The control thread changes it only
/// while every worker is paused (`Server.paused`); workers read it during their passes.
final class Device: @unchecked Sendable {
    let options: ServeOptions
    let memory = MemoryTable(writable: true)
    let vrings: [Vring]
    /// Loopback: frames from TX[k] for RX[k], one queue per pair.
    let loop: [PacketQueue]
    var workers: [Worker] = []
    /// The worker of each vring.
    let workerOf: [Int]
    var features: UInt64 = 0
    var protocolFeatures: UInt64 = 0
    var eventIdx: Bool { features & FeatureBit.eventIdx.mask != 0 }
    let log: EventLog?
    var tracing: Bool { log != nil }
    let t0: UInt64
    var now: UInt64 { cs_now_ns() &- t0 }

    private let noteLock = NSLock()
    private var notes: [String: Int] = [:]
    let logLine: @Sendable (String) -> Void
    /// Rings refused for bad driver input (one line each), and whether one had no rule to name it.
    private(set) var refusals: [String] = []
    private(set) var unjudgedRefusal = false

    init(options: ServeOptions, log: EventLog?, t0: UInt64, logLine: @escaping @Sendable (String) -> Void) {
        self.options = options; self.log = log; self.t0 = t0; self.logLine = logLine
        vrings = (0..<options.vrings).map { Vring(index: $0) }
        loop = (0..<options.pairs).map { _ in PacketQueue() }
        let w = options.effectiveWorkers
        workerOf = (0..<options.vrings).map { options.mapping.worker(of: $0, workers: w) }
    }

    /// Loopback: the queue a frame from TX vring `v` goes to, if RX[k] takes frames now.
    func loopTarget(of v: Vring) -> PacketQueue? {
        let rx = vrings[2 * v.pair]
        guard rx.started, rx.ring != nil, rx.enabled(features: features) else { return nil }
        return loop[v.pair]
    }

    /// A TX worker queued frames for RX[pair]: wake the worker serving it if it sleeps.
    func frameQueued(for pair: Int, queue: PacketQueue) {
        let w = workers[workerOf[2 * pair]]
        if w.sleeping.load(ordering: .sequentiallyConsistent) { w.wake() }
    }

    func ringRefused(_ v: Vring, _ fault: ChainFault) {
        let line = "vq \(v.index) (\(v.isTX ? "TX" : "RX")[\(v.pair)]): driver error, ring no longer used: \(fault.message)"
        noteLock.withLock {
            if refusals.count < 64 { refusals.append(line) }
            if case .rule = fault {} else { unjudgedRefusal = true }
        }
        logLine("serve: \(line)")
    }

    /// Logs a line at most five times per kind (a flood costs neither stderr nor memory).
    func note(_ line: String, kind: String? = nil) {
        let k = kind ?? line
        let n = noteLock.withLock { () -> Int in
            let n = notes[k, default: 0]
            if notes.count < 256 || notes[k] != nil { notes[k] = n + 1 }
            return n
        }
        if n < 5 { logLine("serve: \(line)") } else if n == 5 { logLine("serve: (further such messages are counted, not shown)") }
    }
}
