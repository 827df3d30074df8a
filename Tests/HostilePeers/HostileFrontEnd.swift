import CSupport
import Foundation
import Glibc
import VhostUser
import VirtioProtocol

/// A vhost-user front-end that does what its script says: the well-formed steps a real one takes
/// (handshake, memory table, ring setup) and whatever breaks them. It owns its guest memory and
/// drains replies in the background (unless told not to), keeping a transcript of both directions.
public final class HostileFrontEnd: @unchecked Sendable {
    /// The current connection; earlier ones (after `reconnect`) are in `sessions` too.
    public private(set) var socket: PeerSocket
    public private(set) var sessions: [PeerSocket]
    /// The socket of the peer under test.
    public let path: String
    public let memory: GuestMemory
    public static let defaultFeatures = FeatureBit.version1.mask | FeatureBit.protocolFeatures.mask | FeatureBit.indirectDesc.mask
    private let draining: Bool
    private let drainDone = DispatchSemaphore(value: 0)
    /// Files this front-end created for its attacks (kept open until it ends).
    private var owned: [Int32] = []

    public init(socket: PeerSocket, path: String, memorySize: Int, drainReplies: Bool) {
        self.socket = socket; self.path = path
        sessions = [socket]
        memory = GuestMemory(size: memorySize)
        draining = drainReplies
        startDrain(socket)
    }

    private func startDrain(_ s: PeerSocket) {
        guard draining else { return }
        Thread.detachNewThread { [self] in
            while !s.isClosed && !s.peerClosed {
                if let m = s.receiveMessage(within: 0.05) { m.closeFds() }
            }
            drainDone.signal()
        }
    }

    /// Waits (up to `seconds`) for the peer under test to close this connection.
    public func waitForClose(_ seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if socket.peerClosed { return true }
            if !draining, socket.seesClose(within: 0.05) { return true }
            usleep(10_000)
        }
        return false
    }

    /// Closes this connection and connects again (a front-end that restarts).
    @discardableResult
    public func reconnect(within seconds: Double = 3) -> Bool {
        socket.close()
        if draining { _ = drainDone.wait(timeout: .now() + 2) }
        guard let s = PeerSocket.connect(path, within: seconds) else { return false }
        socket = s
        sessions.append(s)
        startDrain(s)
        return true
    }

    @discardableResult public func send(_ m: Message) -> Bool { socket.send(m) }
    @discardableResult public func raw(_ bytes: [UInt8], fds: [Int32] = [], within: Double = 2) -> Bool { socket.send(bytes, fds: fds, within: within) }

    public func pause(_ seconds: Double) { usleep(UInt32(max(0, seconds) * 1e6)) }

    /// An fd kept open for the rest of the attack.
    public func keep(_ fd: Int32) -> Int32 { owned.append(fd); return fd }

    /// SET_OWNER, GET_FEATURES, SET_FEATURES and SET_MEM_TABLE with this front-end's memory
    /// (or the given regions and fds).
    public func handshake(features: UInt64 = HostileFrontEnd.defaultFeatures, regions: [MemoryRegionDescription]? = nil, fds: [Int32]? = nil) {
        send(Message(.setOwner))
        send(Message(.getFeatures))
        send(Message(.setFeatures, payload: U64Payload(features)))
        let r = regions ?? [memory.region()]
        send(Message(.setMemTable, payload: MemoryTablePayload(regions: r), fds: fds ?? Array(repeating: memory.fd, count: r.count)))
    }

    /// A ring of `size` entries at `offset` of the guest memory (layout only).
    public func ring(size: Int = 8, at offset: Int = 0) -> SplitRingWriter { SplitRingWriter(memory: memory, size: size, at: offset) }

    /// NUM, ADDR, BASE, ENABLE, then KICK with an eventfd: the ring starts.
    public func setUp(_ ring: SplitRingWriter, vq: UInt32 = 0, base: UInt32 = 0, size: UInt32? = nil,
                      desc: UInt64? = nil, avail: UInt64? = nil, used: UInt64? = nil, kick: Bool = true) {
        send(Message(.setVringNum, payload: VringState(index: vq, num: size ?? UInt32(ring.size))))
        send(Message(.setVringAddr, payload: VringAddress(index: vq, desc: desc ?? ring.descAddr, used: used ?? ring.usedAddr, avail: avail ?? ring.availAddr)))
        send(Message(.setVringBase, payload: VringState(index: vq, num: base)))
        send(Message(.setVringEnable, payload: VringState(index: vq, num: 1)))
        if kick { self.kick(vq) }
    }

    public func kick(_ vq: UInt32) {
        let k = keep(cs_eventfd())
        send(Message(.setVringKick, payload: VringFile(index: UInt8(truncatingIfNeeded: vq)), fds: [k]))
    }

    /// Exposes `count` one-descriptor buffers and completes them, as a driver and device pair would.
    public func traffic(_ ring: SplitRingWriter, count: Int, from: UInt16 = 0, pace: Double = 0.001) {
        for k in 0..<count {
            let pos = from &+ UInt16(truncatingIfNeeded: k)
            let head = Int(pos) % ring.size
            ring.simpleBuffer(head, bufferOffset: 0x8000 + 64 * head, write: true)
            ring.expose(head: UInt16(head), at: pos)
            ring.complete(id: UInt32(head), len: 16, at: pos)
            if pace > 0 { pause(pace) }
        }
    }

    /// Closes the connection (after letting replies arrive) and releases what the attack kept open.
    public func end(drain: Double = 0.1) {
        if draining && drain > 0 { pause(drain) }
        socket.close()
        if draining { _ = drainDone.wait(timeout: .now() + 2) }
        for fd in owned { close(fd) }
        owned = []
    }
}
