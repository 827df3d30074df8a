import CSupport
import Foundation
import Glibc
import HostilePeers
import LiveCheck
@testable import Recorder
import TraceFormat
import VhostUser
import VirtioProtocol

/// A capture running in a background thread between a test front-end and a test back-end, both
/// `PeerSocket`s: the test plays both peers and writes the rings itself.
final class Capture: @unchecked Sendable {
    let dir: String
    var backendListener: Int32
    var fe: PeerSocket!
    var be: PeerSocket!
    let options: RecordOptions
    private let lock = NSLock()
    private var _result: LiveResult?
    private var _log: [String] = []
    private let done = DispatchSemaphore(value: 0)

    var tracePath: String { options.outputPath }
    var log: [String] { lock.withLock { _log } }

    init(check: Bool = false, stopOnViolation: Bool = false, connect: Bool = true, tweak: (inout RecordOptions) -> Void = { _ in }) throws {
        dir = NSTemporaryDirectory() + "rec-cap-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        backendListener = cs_unix_listen(dir + "/be.sock")
        guard backendListener >= 0 else { throw POSIXError(.EADDRINUSE) }
        var o = RecordOptions(listenPath: dir + "/fe.sock", connectPath: dir + "/be.sock", outputPath: dir + "/t.trace")
        o.handleSignals = false
        o.progressInterval = 0
        o.acceptTimeout = 10
        o.pollIntervalMicros = 100
        o.writeAhead = 1
        o.stallTimeout = 1
        o.duration = 20   // a bound for a test that goes wrong, never the expected end
        tweak(&o)
        options = o
        let opts = o
        Thread.detachNewThread { [self] in
            let r = LiveRecord.run(opts, check: check, stopOnViolation: stopOnViolation, log: { line in self.lock.withLock { self._log.append(line) } })
            lock.withLock { _result = r }
            done.signal()
        }
        if connect { try connectPeers() }
    }

    func connectPeers() throws {
        guard let f = PeerSocket.connect(options.listenPath) else { throw POSIXError(.ECONNREFUSED) }
        fe = f
        let b = cs_unix_accept(backendListener, 5000)
        guard b >= 0 else { throw POSIXError(.ECONNREFUSED) }
        be = PeerSocket(fd: b)
    }

    func finish(timeout: Double = 15) -> LiveResult? {
        _ = done.wait(timeout: .now() + timeout)
        return lock.withLock { _result }
    }

    var isDone: Bool { lock.withLock { _result != nil } }

    func cleanup() {
        fe?.close(); be?.close()
        if backendListener >= 0 { close(backendListener) }
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// The front-end sends `m`; returns what reached the back-end (its fds closed unless kept).
    @discardableResult
    func forward(_ m: Message, keepFds: Bool = false) -> Message? {
        guard fe.send(m) else { return nil }
        let got = be.receiveMessage()
        if !keepFds { got?.closeFds() }
        return got
    }

    /// The back-end answers `m`; returns what reached the front-end.
    @discardableResult
    func reply(_ m: Message) -> Message? {
        guard be.send(m) else { return nil }
        let got = fe.receiveMessage()
        got?.closeFds()
        return got
    }

    /// SET_OWNER, SET_FEATURES, SET_MEM_TABLE with `memory`, then vq `vq` set up on `ring` and
    /// started with an eventfd kick. Returns after the kick reached the back-end.
    func startRing(vq: UInt32 = 0, ring: SplitRingWriter, features: UInt64 = FeatureBit.version1.mask | FeatureBit.protocolFeatures.mask,
                   region: MemoryRegionDescription? = nil, base: UInt32 = 0, owner: Bool = true) {
        if owner {
            forward(Message(.setOwner))
            forward(Message(.setFeatures, payload: U64Payload(features)))
            forward(Message(.setMemTable, payload: MemoryTablePayload(regions: [region ?? ring.memory.region()]), fds: [ring.memory.fd]))
        }
        forward(Message(.setVringNum, payload: VringState(index: vq, num: UInt32(ring.size))))
        forward(Message(.setVringAddr, payload: VringAddress(index: vq, desc: ring.descAddr, used: ring.usedAddr, avail: ring.availAddr)))
        forward(Message(.setVringBase, payload: VringState(index: vq, num: base)))
        forward(Message(.setVringEnable, payload: VringState(index: vq, num: 1)))
        let kick = cs_eventfd()
        forward(Message(.setVringKick, payload: VringFile(index: UInt8(vq)), fds: [kick]))
        close(kick)
    }

    /// Sets up a packed ring (VIRTIO_F_RING_PACKED) and starts it; base 32768 is index 0, wrap 1.
    func startPackedRing(vq: UInt32 = 0, ring: PackedRingWriter, features: UInt64, base: UInt32 = 32768) {
        forward(Message(.setOwner))
        forward(Message(.setFeatures, payload: U64Payload(features)))
        forward(Message(.setMemTable, payload: MemoryTablePayload(regions: [ring.memory.region()]), fds: [ring.memory.fd]))
        forward(Message(.setVringNum, payload: VringState(index: vq, num: UInt32(ring.size))))
        forward(Message(.setVringAddr, payload: VringAddress(index: vq, desc: ring.descAddr, used: ring.deviceEventAddr, avail: ring.driverEventAddr)))
        forward(Message(.setVringBase, payload: VringState(index: vq, num: base)))
        forward(Message(.setVringEnable, payload: VringState(index: vq, num: 1)))
        let kick = cs_eventfd()
        forward(Message(.setVringKick, payload: VringFile(index: UInt8(vq)), fds: [kick]))
        close(kick)
    }

    /// Events of one vq, in trace order.
    func events(vq: UInt16) throws -> [TraceEvent] { try events().filter { $0.vq == vq } }

    func events() throws -> [TraceEvent] {
        let r = try TraceReader(path: tracePath)
        var out: [TraceEvent] = []
        while let (e, _) = try r.next() { out.append(e) }
        return out
    }

    /// Waits until the trace file holds an event satisfying `p` (the recorder flushes at least
    /// twice a second), up to `seconds`.
    /// Waits until what the trace holds so far satisfies `p`.
    func waitForEvents(within seconds: Double = 3, _ p: ([TraceEvent]) -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if let ev = try? events(), p(ev) { return true }
            usleep(10_000)
        }
        return false
    }

    func waitForEvent(within seconds: Double = 3, _ p: (TraceEvent) -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if let ev = try? events(), ev.contains(where: p) { return true }
            usleep(50_000)
        }
        return false
    }
}
