import CSupport
import Glibc
import TraceFormat
import VhostUser
import VirtioProtocol

/// How `drive` runs: where the back-end is, how many pairs, the bounds.
public struct DriveOptions: Sendable {
    public var socket: String
    /// Queue pairs the multi-queue scenarios use (at most what GET_QUEUE_NUM reports).
    public var pairs = 1
    /// Directory for the traces (one per run), or nil for none.
    public var outputDir: String?
    public var connectTimeout = 5.0
    public var replyTimeout = 5.0
    /// Seconds the back-end has to use buffers it must use (else WEDGED).
    public var progressTimeout = 5.0
    /// Seconds the back-end has to use a hostile chain before it counts as refused.
    public var refuseWindow = 0.3
    /// Seconds an owed interrupt may take to arrive (the eventfd write follows used.idx).
    public var interruptGrace = 1.0
    /// Bytes of each guest memory region.
    public var regionSize = 16 << 20
    public init(socket: String) { self.socket = socket }
}

/// Evidence for a FAIL: the rule or check broken, its spec reference, and where in the trace.
public struct Evidence: Sendable, Equatable {
    public let id: String
    public let spec: String
    public let message: String
    /// Index of the trace event at (or just before) which it was seen; nil at the end.
    public let event: UInt64?
}

/// One run of one scenario (one feature variant): the connection, guest memory, rings, the trace,
/// and what the run found. Scenario bodies drive the back-end through it.
public final class Run {
    public let scenario: Scenario
    public let variant: Variant
    public let options: DriveOptions
    /// Tag carried by every packet of this run.
    public let id: UInt32
    public let trace: DriveTrace
    public private(set) var mem: DriverMemory
    public private(set) var fe: FrontEnd?
    public private(set) var rings: [UInt16: DriverRing] = [:]
    public private(set) var failures: [Evidence] = []
    /// What the back-end refused (the spec lets it): the reason for a REJECTED verdict.
    public private(set) var refusals: [String] = []
    /// What the run saw, for the report.
    public private(set) var notes: [String] = []
    /// Sessions after the first (reconnects).
    public private(set) var sessions = 0
    var seq: UInt32 = 0
    /// Per RX ring: buffers still owed to the packet being received (MRG_RXBUF), and the last
    /// buffer's (used len, capacity).
    private var rxContinuation: [UInt16: Int] = [:]
    public private(set) var rxPackets = 0
    private var rxUntrusted = Set<UInt16>()
    /// Whether received packets are checked (header, num_buffers): set by the scenarios that post
    /// receive buffers.
    public var checkRX = false
    /// Set by a hostile scenario once its hostile input is in the trace: from then on the trace
    /// must show the planted driver rules.
    public private(set) var plantedDone = false
    public func planted() { plantedDone = true }
    /// TX buffers per ring: one slot per descriptor index, reused once its chain is used.
    private var txPools: [UInt16: TxPool] = [:]

    public init(scenario: Scenario, variant: Variant, options: DriveOptions, id: UInt32, tracePath: String?, regions: Int = 1) throws(DriveError) {
        self.scenario = scenario; self.variant = variant; self.options = options; self.id = id
        trace = try DriveTrace(queues: 2 * max(1, options.pairs), path: tracePath)
        do { mem = try DriverMemory(regionSizes: Array(repeating: options.regionSize, count: regions)) } catch {
            throw .tool("\(error)")
        }
    }

    public var session: FrontEnd {
        get throws(DriveError) {
            guard let fe else { throw .tool("no connection: the scenario must open one first") }
            return fe
        }
    }

    // MARK: what the run found

    public func fail(_ check: DriveCheck, _ message: String) {
        guard failures.count < 32 else { return }
        failures.append(Evidence(id: check.id, spec: check.spec, message: message, event: trace.count == 0 ? nil : trace.count - 1))
    }

    public func refused(_ what: String) { refusals.append(what) }
    public func note(_ s: String) { if notes.count < 32 { notes.append(s) } }

    // MARK: connection

    /// Replaces the memory before `open` (several regions, or a different size).
    public func useMemory(regions sizes: [Int]) throws(DriveError) {
        do { mem = try DriverMemory(regionSizes: sizes) } catch { throw .tool("\(error)") }
    }

    /// Features this run asks for: VERSION_1, what the scenario needs, the variant's.
    public var wantedFeatures: UInt64 {
        var f = FeatureBit.version1.mask
        for b in scenario.needs + variant.on { f |= b.mask }
        for b in scenario.excludes { f &= ~b.mask }
        return f
    }

    /// Connects, negotiates and sends the memory table. SKIPPED when a needed feature is missing.
    public func open(extraProtocol: [ProtocolFeatureBit] = []) throws(DriveError) {
        let fe = try FrontEnd(connect: options.socket, trace: trace, connectBound: options.connectTimeout, replyBound: options.replyTimeout)
        self.fe = fe
        // Without VIRTIO_NET_F_MQ there is no multi-queue protocol either (the single-queue case).
        let base: [ProtocolFeatureBit] = scenario.excludes.contains(.netMQ) ? [.replyAck] : [.mq, .replyAck]
        let wantProtocol = (base + scenario.needsProtocol + extraProtocol).reduce(UInt64(0)) { $0 | $1.mask }
        try fe.negotiate(want: wantedFeatures, wantProtocol: wantProtocol)
        for f in scenario.needs where !fe.offers(f) {
            throw .skipped("the back-end does not offer \(Variant.name(f)) (feature bit \(f.rawValue))")
        }
        for f in variant.on where !fe.offers(f) {
            if variant.fallBack { note("\(Variant.name(f)) is not offered: run with it off") }
            else { throw .skipped("the back-end does not offer \(Variant.name(f)) (feature bit \(f.rawValue))") }
        }
        for p in scenario.needsProtocol where !fe.offersProtocol(p) {
            throw .skipped("the back-end does not offer protocol feature \(p) (bit \(p.rawValue))")
        }
        if pairs < scenario.minPairs {
            throw .skipped("the scenario needs \(scenario.minPairs) queue pairs; --pairs \(options.pairs) and GET_QUEUE_NUM \(fe.queueNum.map(String.init) ?? "(no MQ)") allow \(pairs)")
        }
        try fe.setMemTable(mem)
    }

    /// Queue pairs this run may use: `--pairs`, capped by GET_QUEUE_NUM.
    public var pairs: Int {
        let q = fe?.queueNum ?? 1
        return max(1, min(options.pairs, q))
    }

    /// Ends the session and opens a new one on the same memory (the rings keep their state in
    /// guest memory; the caller sets them up again). Written as `reset_owner` between sessions.
    public func reconnect() throws(DriveError) {
        fe?.close()
        fe = nil
        trace.control(.resetOwner)
        sessions += 1
        for r in rings.values { r.stopped = true }
        try open()
    }

    public func closeConnection() { fe?.close(); fe = nil }

    // MARK: rings

    /// Creates ring `vq` and starts it (NUM, BASE, ADDR, KICK, CALL, ENABLE).
    @discardableResult
    public func ring(_ vq: UInt16, size: Int, base: UInt16 = 0, regions: (desc: Int, avail: Int, used: Int)? = nil,
                     decoy: Bool = true, enable: Bool = true) throws(DriveError) -> DriverRing {
        guard Int(vq) < trace.queueCount else { throw .tool("vq \(vq) is beyond the \(trace.queueCount) vrings of this run (--pairs)") }
        let r = try DriverRing(vq: vq, size: size, base: base, memory: mem, trace: trace, regions: regions, decoy: decoy)
        let fe = try session
        r.eventIdx = fe.has(.eventIdx)
        r.inOrder = fe.has(.inOrder)
        if vq % 2 == 0 { r.onElement = { [unowned self] ring, c in self.rxHeader(ring, c) } }
        rings[vq] = r
        if r.decoy != nil {
            let b = try mem.alloc(64, region: r.desc.region, label: "vq \(vq) decoy buffer (never made available)")
            mem.write(bytes: NetFrame.txPacket(frameLength: 52, run: id, vq: vq, seq: 0xDEC0), at: b)
            r.armDecoy(buffer: b)
        }
        try start(r, base: base, enable: enable)
        return r
    }

    /// Sets up (again) and starts `r` at `base`: what QEMU sends for each ring it starts.
    public func start(_ r: DriverRing, base: UInt16, enable: Bool = true) throws(DriveError) {
        let fe = try session
        let n = try fe.setVringNum(r.vq, UInt32(r.size))
        guard n == 0 else { throw .refused("the back-end refused SET_VRING_NUM \(r.size) on vq \(r.vq)") }
        try fe.setVringBase(r.vq, base)
        let a = try fe.setVringAddr(r.vq, desc: r.desc.user, avail: r.avail.user, used: r.used.user)
        guard a == 0 else { throw .refused("the back-end refused SET_VRING_ADDR on vq \(r.vq)") }
        try fe.setVringKick(r.vq, fd: r.kickFd)
        try fe.setVringCall(r.vq, fd: r.callFd)
        r.stopped = false
        if fe.has(.protocolFeatures) && enable { try self.enable(r, true) }
    }

    /// Both rings of pair `k` (receiveq k+1 = vq 2k, transmitq k+1 = vq 2k+1).
    public func pair(_ k: Int, size: Int, base: UInt16 = 0, decoy: Bool = true) throws(DriveError) -> (rx: DriverRing, tx: DriverRing) {
        let rx = try ring(UInt16(2 * k), size: size, base: base, decoy: decoy)
        let tx = try ring(UInt16(2 * k + 1), size: size, base: base, decoy: decoy)
        return (rx, tx)
    }

    /// SET_VRING_ENABLE. Disabling is recorded after a poll that follows the acknowledgement, so
    /// that what the device did before the change took effect lies before it; enabling is recorded
    /// as soon as it is acknowledged (the device may use the ring at once, and those completions
    /// must lie after it).
    public func enable(_ r: DriverRing, _ on: Bool) throws(DriveError) {
        r.poll()
        let res = try session.setVringEnable(r.vq, on)
        if !on { r.poll() }
        trace.control(.setVringEnable, vq: r.vq, value: on ? 1 : 0, result: res)
        if res != 0 { refused("SET_VRING_ENABLE \(on ? 1 : 0) on vq \(r.vq) was answered failure") }
    }

    /// GET_VRING_BASE: waits for an owed interrupt first, then stops the ring; everything the
    /// device published before the reply is placed before the stop. Returns the base.
    public func stop(_ r: DriverRing) throws(DriveError) -> UInt16 {
        try awaitInterrupts([r])
        r.poll()
        let base = try session.getVringBase(r.vq)
        r.poll()
        if r.owesInterrupt {
            let end = IOBound.now &+ UInt64(options.interruptGrace * 1e9)
            while r.owesInterrupt && IOBound.now < end { usleep(100); r.poll() }
        }
        r.stopped = true
        // Judged by the checker (VHOST-VRING-BASE-RANGE) from the event's value.
        trace.control(.getVringBase, vq: r.vq, value: UInt64(base))
        return base
    }

    // MARK: waiting

    public func pollAll() { for r in rings.values.sorted(by: { $0.vq < $1.vq }) { r.poll() } }

    /// Polls until `done` holds; WEDGED after `within` (default: the progress bound).
    public func wait(_ what: @autoclosure () -> String, within: Double? = nil, until done: () -> Bool) throws(DriveError) {
        let secs = within ?? options.progressTimeout
        let end = IOBound.now &+ UInt64(secs * 1e9)
        while true {
            pollAll()
            if done() { return }
            if IOBound.now >= end { throw .wedged("\(what()): not within \(secs) s") }
            if fe?.isClosed == true { throw .closed("the connection closed while waiting for \(what())") }
            if let fe, fe.channel.readable(timeoutNs: 0), !(try peerAlive(fe)) {
                throw .closed("the back-end closed the connection while \(what()) was awaited")
            }
            usleep(50)
        }
    }

    /// Whether the back-end is still connected (a readable socket with nothing on it is a close).
    private func peerAlive(_ fe: FrontEnd) throws(DriveError) -> Bool {
        var b: UInt8 = 0
        let n = recv(fe.channel.fd, &b, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if n == 0 { return false }
        if n < 0 { return errno == EAGAIN || errno == EWOULDBLOCK }
        return true   // a message waits: not ours to read here
    }

    /// Polls for `seconds` (letting the back-end act), then returns.
    public func settle(_ seconds: Double) {
        let end = IOBound.now &+ UInt64(seconds * 1e9)
        while IOBound.now < end { pollAll(); usleep(100) }
    }

    /// Waits until `r` has nothing in flight.
    public func drain(_ r: DriverRing, _ what: String? = nil) throws(DriveError) {
        try wait(what ?? "vq \(r.vq): \(r.inFlight) buffer(s) in flight to be used") { r.inFlight == 0 }
    }

    /// Whether the device used the chain headed `head` within the refusal window.
    public func used(_ head: UInt16, on r: DriverRing, within: Double? = nil) -> Bool {
        let end = IOBound.now &+ UInt64((within ?? options.refuseWindow) * 1e9)
        while IOBound.now < end {
            r.poll()
            if !r.isInFlight(head) { return true }
            usleep(50)
        }
        return !r.isInFlight(head)
    }

    /// Waits (up to the grace) until no ring owes an interrupt.
    public func awaitInterrupts(_ rs: [DriverRing]? = nil) throws(DriveError) {
        let list = rs ?? Array(rings.values)
        let end = IOBound.now &+ UInt64(options.interruptGrace * 1e9)
        while list.contains(where: { $0.owesInterrupt && !$0.stopped }) && IOBound.now < end {
            for r in list { r.poll() }
            usleep(100)
        }
    }

    // MARK: TX

    /// A TX chain of one packet (header + `frame` bytes) in `parts` readable descriptors, or in an
    /// indirect table of `parts` entries. Not exposed yet.
    public func txChain(_ r: DriverRing, frame: Int = 64, parts: Int = 1, indirect: Bool = false, directBefore: Int = 0) throws(DriveError) -> DriverRing.Chain {
        seq &+= 1
        let bytes = NetFrame.txPacket(frameLength: frame, run: id, vq: r.vq, seq: seq)
        let span = try txBuffer(r, bytes.count)
        mem.write(bytes: bytes, at: span)
        let pieces = split(span, into: parts + directBefore).map { DriverRing.Part($0, write: false) }
        if indirect {
            return try r.indirectChain(direct: Array(pieces.prefix(directBefore)), indirect: Array(pieces.dropFirst(directBefore)), tag: Int(seq))
        }
        return try r.chain(pieces, tag: Int(seq))
    }

    /// The TX buffer for the chain about to be built on `r`: slot `head` of a pool of one slot per
    /// descriptor, so a buffer is never rewritten while its chain is in flight.
    private func txBuffer(_ r: DriverRing, _ n: Int) throws(DriveError) -> GuestSpan {
        let need = max(128, (n + 63) / 64 * 64)
        if txPools[r.vq] == nil || txPools[r.vq]!.slotSize < need {
            let span = try mem.alloc(r.size * need, region: r.desc.region, label: "vq \(r.vq) TX buffers")
            txPools[r.vq] = TxPool(span: span, slotSize: need)
        }
        guard let head = r.nextHead else { throw .tool("vq \(r.vq): no free descriptor for a TX packet") }
        let p = txPools[r.vq]!
        return p.span.sub(Int(head) * p.slotSize, n)
    }
    private struct TxPool { var span: GuestSpan; var slotSize: Int }

    func split(_ s: GuestSpan, into n: Int) -> [GuestSpan] {
        guard n > 1 else { return [s] }
        let n = min(n, s.length)
        let piece = s.length / n
        return (0..<n).map { k in s.sub(k * piece, k == n - 1 ? s.length - k * piece : piece) }
    }

    /// Sends `count` one-descriptor packets on `r` (in batches as descriptors allow) and waits for
    /// all of them to be used. With `indirectEvery` > 0 every n-th packet goes in an indirect table.
    public func send(_ r: DriverRing, count: Int, batch: Int = 32, frame: Int = 64, indirectEvery: Int = 0) throws(DriveError) {
        var sent = 0
        while sent < count {
            let room = min(batch, count - sent, r.freeDescriptors, r.size - r.inFlight)
            if room <= 0 {
                try wait("vq \(r.vq): descriptors to come back (\(r.inFlight) buffer(s) in flight)") { r.freeDescriptors >= 1 && r.inFlight < r.size }
                continue
            }
            var cs: [DriverRing.Chain] = []
            for k in 0..<room {
                let ind = indirectEvery > 0 && (sent + k) % indirectEvery == 0
                cs.append(try txChain(r, frame: frame, parts: 1, indirect: ind))
            }
            r.expose(cs)
            sent += room
            r.poll()
        }
        try drain(r)
    }

    // MARK: RX

    /// Makes `count` receive buffers of `bytes` each available on `r` (filled with 0xA5 first, so
    /// a header field the device leaves unset shows).
    public func postRX(_ r: DriverRing, count: Int, bytes: Int) throws(DriveError) {
        var cs: [DriverRing.Chain] = []
        for _ in 0..<count {
            let b = try mem.alloc(bytes, region: r.desc.region, label: "vq \(r.vq) RX buffer")
            mem.fill(0xA5, at: b)
            cs.append(try r.chain([DriverRing.Part(b, write: true)]))
        }
        r.expose(cs)
    }

    /// The header of each received packet, as an `rx_header` event right after the used element
    /// that starts the packet (the checker judges num_buffers, the header's offload fields and the
    /// used len: NET-RX-NUM-BUFFERS, NET-RX-HDR-OFFLOAD, NET-RX-USED-LEN). With MRG_RXBUF the
    /// driver follows num_buffers to know where the next packet starts, as a driver does.
    func rxHeader(_ r: DriverRing, _ c: DriverRing.Completion) -> TraceEvent? {
        guard checkRX, !rxUntrusted.contains(r.vq), let chain = c.chain else { return nil }
        let mrg = fe?.has(.netMrgRxbuf) ?? false
        if let owed = rxContinuation[r.vq], owed > 0 {
            rxContinuation[r.vq] = owed - 1
            return nil
        }
        rxPackets += 1
        // IN_ORDER: an element left unwritten, or one too short for a header (the checker judges
        // its len): nothing to read; where the next packet starts is then unknown with MRG_RXBUF.
        guard let len = c.len, len >= UInt32(NetFrame.headerSize), let buf = chain.buffers.first,
              let hdr = mem.bytes(buf, count: NetFrame.headerSize) else {
            if mrg { rxUntrusted.insert(r.vq) }
            return nil
        }
        let nb = UInt16(hdr[NetFrame.numBuffersOffset]) | UInt16(hdr[NetFrame.numBuffersOffset + 1]) << 8
        if mrg {
            // A count beyond the ring cannot be followed: later packets on this ring are not read.
            if nb == 0 || Int(nb) > r.size { rxUntrusted.insert(r.vq) } else { rxContinuation[r.vq] = Int(nb) - 1 }
        }
        return TraceEvent(.rxHeader, vq: r.vq, aux: UInt16(hdr[1]), p0: UInt64(c.position), p1: UInt64(nb), p2: UInt64(hdr[0]))
    }

    // MARK: the end

    /// Final polls (and the interrupt grace), then the trace is closed and judged.
    public func finish() {
        if fe != nil && fe?.isClosed == false { try? awaitInterrupts() }
        pollAll()
        trace.finish()
    }
}

// MARK: helpers the catalogue shares

extension Run {
    /// A finding against a rule of the catalogue that the driver's own bookkeeping decides (an
    /// interrupt still owed after the grace: the checker would only see it at the trace's end).
    public func failRule(_ rule: RuleID, _ message: String) {
        failures.append(Evidence(id: rule.rawValue, spec: rule.rule.specRef, message: message, event: trace.count == 0 ? nil : trace.count - 1))
    }

    /// After the grace, an interrupt the driver asked for must have come.
    public func checkInterrupt(_ r: DriverRing, _ why: String) throws(DriveError) {
        try awaitInterrupts([r])
        if r.owesInterrupt {
            failRule(.vqInterruptMissed, "vq \(r.vq): no interrupt within \(options.interruptGrace) s of used.idx reaching \(r.usedIdx) (\(why) asked for one)")
            r.forgetOwedNotification()
        }
    }

    /// The first queue size the back-end accepts on vq 1 (REPLY_ACK tells), smallest or largest
    /// first; nil (a refusal noted) when it accepts none.
    public func probeQueueSize(ascending: Bool) throws(DriveError) -> Int? {
        let sizes = (0...15).map { 1 << $0 }
        for n in ascending ? sizes : sizes.reversed() {
            if try session.setVringNum(1, UInt32(n)) == 0 {
                if n != (ascending ? 1 : 32768) { note("queue sizes \(ascending ? "below" : "above") \(n) refused") }
                return n
            }
        }
        refused("the back-end refused every queue size from 1 to 32768")
        return nil
    }

    /// A TX packet split into three descriptors, one in each of the first three regions.
    public func regionSpanningChain(_ r: DriverRing, seq s: UInt32) throws(DriveError) -> DriverRing.Chain {
        let bytes = NetFrame.txPacket(frameLength: 64, run: id, vq: r.vq, seq: s)
        let cut = [0, bytes.count / 3, 2 * bytes.count / 3, bytes.count]
        var parts: [DriverRing.Part] = []
        for k in 0..<3 {
            let piece = Array(bytes[cut[k]..<cut[k + 1]])
            let span = try mem.alloc(piece.count, region: k % mem.regions.count, label: "vq \(r.vq) TX buffer (region \(k))")
            mem.write(bytes: piece, at: span)
            parts.append(DriverRing.Part(span, write: false))
        }
        return try r.chain(parts, tag: Int(s))
    }

    /// Waits until `n` packets were received; SKIPPED when none came at all (the back-end does not
    /// deliver what is sent to RX, so nothing about RX was exercised).
    public func awaitRX(_ n: Int) throws(DriveError) {
        do { try wait("\(n) packet(s) to be received", until: { self.rxPackets >= n }) } catch {
            guard case .wedged = error, rxPackets == 0 else { throw error }
            throw .skipped("no packet came back on RX within \(options.progressTimeout) s: the back-end does not deliver the TX packets to RX (testpmd's io forwarding does), so nothing about RX was exercised")
        }
        settle(0.1)
        note("\(rxPackets) packet(s) received")
    }
}
