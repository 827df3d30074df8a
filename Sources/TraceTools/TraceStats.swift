import TraceFormat
import VirtioProtocol

/// Load-spread figures for any trace: how buffers, kicks and interrupts spread over the virtqueues
/// and workers (the questions the seed's tables ask), and how long the trace spans.
public struct TraceStats: Sendable {
    public struct Queue: Sendable {
        public let vq: Int
        public let role: String
        public var events: UInt64 = 0
        /// Buffers the driver made available (avail.idx advances).
        public var exposed: UInt64 = 0
        /// Buffers the device completed (used.idx advances).
        public var used: UInt64 = 0
        public var kicks: UInt64 = 0
        public var interrupts: UInt64 = 0
        public var enabled: Bool?
        /// The trace set this queue up or used it (or its header gave it a size).
        public var setUp = false
        public var kicksPerBuffer: Double { used == 0 ? 0 : Double(kicks) / Double(used) }
        public var interruptsPerBuffer: Double { used == 0 ? 0 : Double(interrupts) / Double(used) }
    }
    public struct Worker: Sendable {
        public let worker: Int
        public var events: UInt64 = 0
        public var used: UInt64 = 0
        public var services: UInt64 = 0
        public var queues: Set<Int> = []
    }

    public let profile: String
    public let sampled: Bool
    public var events: UInt64 = 0
    public var controlEvents: UInt64 = 0
    public var queues: [Queue]
    /// The queues the trace set up or used, in vq order: what the text and JSON list (a recorder's
    /// header declares 256 queues whatever the front-end uses).
    public var setUpQueues: [Queue] { queues.filter(\.setUp) }
    public var workers: [Int: Worker] = [:]
    /// Device events that name no worker (a recorder cannot see the back-end's threads).
    public var unattributedDeviceEvents: UInt64 = 0
    /// (worker, vq) pairs listed at most: a hostile trace could otherwise name every one of the
    /// 65535 × 32748 pairs and make the lists grow with its length. Beyond it, new pairs are not
    /// listed and `queueListsTruncated` says so.
    public static let workerQueueBudget = 1 << 20
    public let workerQueueBudget: Int
    public private(set) var workerQueuePairs = 0
    public private(set) var queueListsTruncated = false
    public var firstTimestamp: UInt64?
    public var lastTimestamp: UInt64?
    public var spanSeconds: Double {
        guard let a = firstTimestamp, let b = lastTimestamp, b >= a else { return 0 }
        return Double(b - a) / 1e9
    }

    public init(header: TraceHeader, workerQueueBudget: Int = TraceStats.workerQueueBudget) {
        self.workerQueueBudget = workerQueueBudget
        profile = header.profile.description
        sampled = header.flags.contains(.sampled)
        queues = (0..<header.queueCount).map { Queue(vq: $0, role: header.layout.role(of: $0, queueCount: header.queueCount).description) }
        for q in queues.indices where header.queueSizes[q] != 0 { queues[q].setUp = true }
        availIdx = Array(repeating: 0, count: header.queueCount)
        usedIdx = Array(repeating: 0, count: header.queueCount)
    }

    /// Indices last seen per queue; nil after a `ring_gap` (the next `poll` sets them again).
    private var availIdx: [UInt16?]
    private var usedIdx: [UInt16?]

    public mutating func add(_ e: TraceEvent) {
        events += 1
        if e.timestamp != 0 {
            if firstTimestamp == nil { firstTimestamp = e.timestamp }
            lastTimestamp = max(lastTimestamp ?? 0, e.timestamp)
        }
        if e.kind.plane == .control { controlEvents += 1 }
        let q: Int? = e.vq != TraceEvent.none && Int(e.vq) < queues.count ? Int(e.vq) : nil
        if let q { queues[q].events += 1 }
        if e.kind.hasWorker {
            if e.worker == TraceEvent.none { if e.kind.plane == .device { unattributedDeviceEvents += 1 } }
            else {
                let w = Int(e.worker)
                workers[w, default: Worker(worker: w)].events += 1
                if let q, !workers[w]!.queues.contains(q) {
                    if workerQueuePairs < workerQueueBudget { workers[w]!.queues.insert(q); workerQueuePairs += 1 }
                    else { queueListsTruncated = true }
                }
                if e.kind == .serviceBegin { workers[w]!.services += 1 }
            }
        }
        guard let q else { return }
        queues[q].setUp = true
        switch e.kind {
        case .setVringBase:
            // Indices restart from the base.
            availIdx[q] = UInt16(truncatingIfNeeded: e.p0); usedIdx[q] = availIdx[q]
        case .setVringEnable:
            queues[q].enabled = e.p0 != 0
        case .availIdx:
            let v = UInt16(truncatingIfNeeded: e.p0)
            queues[q].exposed = saturating(queues[q].exposed, UInt64(v &- (availIdx[q] ?? 0)))
            availIdx[q] = v
        case .usedIdx:
            let v = UInt16(truncatingIfNeeded: e.p0)
            let n = UInt64(v &- (usedIdx[q] ?? 0))
            queues[q].used = saturating(queues[q].used, n)
            usedIdx[q] = v
            if e.worker != TraceEvent.none { workers[Int(e.worker)]!.used = saturating(workers[Int(e.worker)]!.used, n) }
        case .poll:
            // A snapshot's indices: what moved since the last observation of this ring.
            let a = UInt16(truncatingIfNeeded: e.p0), u = UInt16(truncatingIfNeeded: e.p1)
            if let last = availIdx[q] { queues[q].exposed = saturating(queues[q].exposed, UInt64(a &- last)) }
            if let last = usedIdx[q] { queues[q].used = saturating(queues[q].used, UInt64(u &- last)) }
            availIdx[q] = a; usedIdx[q] = u
        case .ringGap:
            availIdx[q] = nil; usedIdx[q] = nil
        case .kick: queues[q].kicks += 1
        case .interrupt: queues[q].interrupts += 1
        default: break
        }
    }

    /// Reads a whole trace, streaming.
    public static func of(path: String) throws -> TraceStats {
        let r = try TraceReader(path: path)
        var s = TraceStats(header: r.header)
        while let (e, _) = try r.next() { s.add(e) }
        return s
    }

    public func text() -> String {
        var out = "profile \(profile)\(sampled ? " (sampled: data-plane values observed by polling)" : ""), \(events) events (\(controlEvents) control), span \(String(format3: spanSeconds)) s\n"
        out += "vq  role    on@end   events      exposed     used        kicks/buf  irqs/buf\n"
        for q in listed {
            let en = q.enabled.map { $0 ? "yes" : "no" } ?? "-"
            out += pad("\(q.vq)", 4) + pad(q.role, 8) + pad(en, 9) + pad("\(q.events)", 12) + pad("\(q.exposed)", 12)
                + pad("\(q.used)", 12) + pad(String(format3: q.kicksPerBuffer), 11) + String(format3: q.interruptsPerBuffer) + "\n"
        }
        let total = queues.reduce(UInt64(0)) { saturating($0, $1.used) }
        out += "total buffers used \(total)"
        // Huge counts over a span of a few nanoseconds give rates no integer type holds.
        if spanSeconds > 0 { out += ", \(String(wholeNumber: Double(total) / spanSeconds)) per second" }
        out += "\n"
        if workers.isEmpty {
            out += "workers: none named in the trace (\(unattributedDeviceEvents) device events without a worker)\n"
        } else {
            out += "worker  events      used        services  vqs\n"
            for w in workers.keys.sorted() {
                let x = workers[w]!
                out += pad("\(w)", 8) + pad("\(x.events)", 12) + pad("\(x.used)", 12) + pad("\(x.services)", 10)
                    + x.queues.sorted().map(String.init).joined(separator: ",") + "\n"
            }
            if queueListsTruncated { out += "(vq lists truncated: more than \(workerQueueBudget) worker/vq pairs)\n" }
        }
        return out
    }

    public func json() -> String {
        var s = "{\"profile\":\"\(profile)\",\"sampled\":\(sampled),\"events\":\(events),\"controlEvents\":\(controlEvents),\"spanSeconds\":\(spanSeconds),"
        s += "\"queues\":["
        s += listed.map { q in
            "{\"vq\":\(q.vq),\"role\":\"\(q.role)\",\"enabledAtEnd\":\(q.enabled.map { "\($0)" } ?? "null"),\"events\":\(q.events),\"exposed\":\(q.exposed),\"used\":\(q.used),\"kicks\":\(q.kicks),\"interrupts\":\(q.interrupts),\"kicksPerBuffer\":\(q.kicksPerBuffer),\"interruptsPerBuffer\":\(q.interruptsPerBuffer)}"
        }.joined(separator: ",")
        s += "],\"workers\":["
        s += workers.keys.sorted().map { w in
            let x = workers[w]!
            return "{\"worker\":\(w),\"events\":\(x.events),\"used\":\(x.used),\"services\":\(x.services),\"queues\":[\(x.queues.sorted().map(String.init).joined(separator: ","))]}"
        }.joined(separator: ",")
        s += "],\"unattributedDeviceEvents\":\(unattributedDeviceEvents),\"queueListsTruncated\":\(queueListsTruncated)}\n"
        return s
    }

    /// The set-up queues, or all of them when the trace names none.
    private var listed: [Queue] { setUpQueues.isEmpty ? queues : setUpQueues }

    private func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s + " " : s + String(repeating: " ", count: w - s.count) }
}

/// Counters never wrap (a trace would need petabytes to get there, but no value read from a file
/// may trap).
func saturating(_ a: UInt64, _ b: UInt64) -> UInt64 {
    let (s, o) = a.addingReportingOverflow(b)
    return o ? .max : s
}

extension String {
    /// Three decimals; values no Int can hold (or not finite) are printed as Swift prints a Double.
    init(format3 v: Double) {
        guard v.isFinite, abs(v) < 1e15 else { self = "\(v)"; return }
        let m = Int((v * 1000).rounded())
        let frac = String(abs(m % 1000))
        self = (m < 0 && m > -1000 ? "-" : "") + "\(m / 1000)." + String(repeating: "0", count: 3 - frac.count) + frac
    }

    /// A rate as a whole number, or as a Double when no UInt64 holds it.
    init(wholeNumber v: Double) {
        guard v.isFinite, v >= 0, v < 1.8e19 else { self = "\(v)"; return }
        self = String(UInt64(v))
    }
}
