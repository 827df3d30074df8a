import CSupport
import Drive
import Glibc
import VhostUser
import VirtioProtocol

/// What the recorder-rate benchmark's front-end is asked to do.
public struct LoadOptions: Sendable {
    /// The socket the front-end connects to (`conformance record --listen`).
    public var frontendSocket: String
    /// The socket the back-end listens on (`conformance record --connect`).
    public var backendSocket: String
    public var pairs = 1
    /// Rings filled: vq 0 ..< rings (RX rings get device-writable buffers).
    public var rings = 1
    public var queueSize = 256
    /// Buffers per second on each ring.
    public var rate: Double = 1_000_000
    /// Buffers exposed (and then used) at once: the generator waits until a whole batch is due.
    public var batch = 32
    public var seconds: Double = 2
    /// Seconds the rings are left quiet after they start and before they stop (the recorder's
    /// first observation, and its last poll before GET_VRING_BASE).
    public var settle: Double = 0.2

    public init(frontendSocket: String, backendSocket: String) {
        self.frontendSocket = frontendSocket; self.backendSocket = backendSocket
    }
}

/// What one run produced.
public struct LoadResult: Sendable {
    public var rings: Int
    public var buffersPerRing: [UInt64]
    /// Seconds from the first batch to the last.
    public var seconds: Double
    /// The most buffers per ring that were due and not yet written when the generator looked
    /// (beyond one batch: the generator itself fell behind the rate asked, and skipped them).
    public var maxBehind: UInt64

    public var totalBuffers: UInt64 { buffersPerRing.reduce(0, +) }
    /// Buffers per second on one ring, on average.
    public var ratePerRing: Double { seconds > 0 ? Double(totalBuffers) / Double(max(1, rings)) / seconds : 0 }
}

/// The synthetic front-end of the recorder-rate benchmark (`scripts/bench-record.sh`): negotiates
/// through the recorder with a `ControlBackEnd`, lays out and starts the rings with `drive`'s
/// `FrontEnd` and `DriverRing`, fills them at the set rate for the set time, stops them with
/// GET_VRING_BASE and disconnects.
public enum LoadRun {
    public static func run(_ o: LoadOptions) throws(DriveError) -> LoadResult {
        guard o.rings >= 1, o.rings <= 2 * o.pairs else { throw .tool("--rings must be between 1 and 2 × --pairs") }
        guard SplitRing.isValidQueueSize(UInt32(o.queueSize)), o.batch >= 1, o.batch <= o.queueSize else {
            throw .tool("--queue-size must be a split ring size and --batch between 1 and it")
        }
        let backEnd: ControlBackEnd
        do { backEnd = try ControlBackEnd(path: o.backendSocket, pairs: o.pairs) } catch { throw .tool("\(error)") }
        backEnd.start(within: o.seconds + 30)
        let result: LoadResult
        do { result = try drive(o, backEnd) } catch {
            _ = backEnd.stop()
            throw error
        }
        if let f = backEnd.stop() { throw .tool(f) }
        return result
    }

    private static func drive(_ o: LoadOptions, _ backEnd: ControlBackEnd) throws(DriveError) -> LoadResult {
        let trace = try DriveTrace(queues: 2 * o.pairs, path: nil)
        let fe = try FrontEnd(connect: o.frontendSocket, trace: trace, connectBound: 10, replyBound: 5)
        defer { fe.close() }
        try fe.negotiate(want: ControlBackEnd.features, wantProtocol: ControlBackEnd.protocolFeatures)
        let bufferLength = 2048
        let perRing = 16 * o.queueSize + 8 * o.queueSize + 4096 * 3 + o.queueSize * bufferLength
        let mem: DriverMemory
        do { mem = try DriverMemory(regionSizes: [(o.rings * perRing + 0xFFFFF) & ~0xFFFFF]) } catch { throw .tool("\(error)") }
        try fe.setMemTable(mem)
        var rings: [LoadRing] = []
        var keep: [DriverRing] = []
        for k in 0..<o.rings {
            let vq = UInt16(k)
            let r = try DriverRing(vq: vq, size: o.queueSize, base: 0, memory: mem, trace: trace, decoy: false)
            let buffers = try mem.alloc(o.queueSize * bufferLength, align: 4096, label: "vq \(vq) buffers")
            r.setAvailFlags(SplitRing.availFlagNoInterrupt)
            let ring = LoadRing(ring: r, memory: mem, buffers: buffers, bufferLength: bufferLength, deviceWritable: vq % 2 == 0)
            ring.deviceNeedsNoKicks()
            try check(fe.setVringNum(vq, UInt32(o.queueSize)), "SET_VRING_NUM", vq)
            try check(fe.setVringBase(vq, 0), "SET_VRING_BASE", vq)
            try check(fe.setVringAddr(vq, desc: r.desc.user, avail: r.avail.user, used: r.used.user), "SET_VRING_ADDR", vq)
            try check(fe.setVringCall(vq, fd: r.callFd), "SET_VRING_CALL", vq)
            try check(fe.setVringKick(vq, fd: r.kickFd), "SET_VRING_KICK", vq)
            try check(fe.setVringEnable(vq, true), "SET_VRING_ENABLE", vq)
            rings.append(ring); keep.append(r)
        }
        pause(o.settle)
        let (seconds, behind) = fill(&rings, rate: o.rate, batch: o.batch, seconds: o.seconds)
        pause(o.settle)
        for r in rings {
            backEnd.setUsedIndex(r.vq, r.index)
            let base = try fe.getVringBase(r.vq)
            guard base == r.index else { throw .tool("GET_VRING_BASE of vq \(r.vq) answered \(base), not \(r.index)") }
        }
        withExtendedLifetime(keep) {}
        return LoadResult(rings: o.rings, buffersPerRing: rings.map(\.buffersDone), seconds: seconds, maxBehind: behind)
    }

    /// Fills every ring at `rate` buffers/s for `seconds`, a whole batch at a time once it is due.
    /// Between batches it sleeps until the next is due (a generator spinning under a real-time
    /// policy is throttled by the kernel for 50 ms a second, which it would then count against the
    /// recorder). Returns the time taken and the largest backlog seen beyond one batch.
    static func fill(_ rings: inout [LoadRing], rate: Double, batch: Int, seconds: Double) -> (Double, UInt64) {
        let t0 = cs_now_ns()
        let end = t0 &+ UInt64(seconds * 1e9)
        let nsPerBuffer = 1e9 / rate
        var done: UInt64 = 0
        var behind: UInt64 = 0
        var now = t0
        while now < end {
            let due = UInt64(Double(now &- t0) / nsPerBuffer)
            if due >= done &+ UInt64(batch) {
                let late = due - done - UInt64(batch)
                behind = max(behind, late)
                // A generator that was descheduled does not catch up in a burst (laps of the ring
                // in microseconds, a rate far above the one asked): what it missed is skipped, and
                // the rate it made says so.
                if late >= UInt64(batch) { done += late }
                for k in rings.indices { rings[k].batch(batch) }
                done += UInt64(batch)
            } else {
                let next = t0 &+ UInt64(Double(done &+ UInt64(batch)) * nsPerBuffer)
                if next > now &+ 2_000 { sleep(until: min(next, end)) }
            }
            now = cs_now_ns()
        }
        return (Double(now &- t0) / 1e9, behind)
    }

    /// Sleeps until CLOCK_MONOTONIC reaches `t` (the clock `cs_now_ns` reads).
    private static func sleep(until t: UInt64) {
        var ts = timespec(tv_sec: Int(t / 1_000_000_000), tv_nsec: Int(t % 1_000_000_000))
        _ = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil)
    }

    private static func check(_ r: Int16, _ what: String, _ vq: UInt16) throws(DriveError) {
        guard r == 0 else { throw .refused("the back-end refused \(what) of vq \(vq)") }
    }

    private static func pause(_ s: Double) { if s > 0 { usleep(UInt32(s * 1e6)) } }
}
