import CSupport
import Foundation
import Glibc
import VhostUser
import VirtioProtocol

/// What a test back-end does with what it is sent.
public enum BackEndBehaviour: Sendable {
    /// Answers what must be answered (GET_*, REPLY_ACK), like a real back-end that touches no ring.
    case cooperative
    /// Answers the first GET_FEATURES with half a reply, then goes silent.
    case stallMidReply
    /// Never reads its socket.
    case stopReading
    /// Answers the first request with a header announcing a 1 MiB payload.
    case garbageHeader
    /// Sends `count` replies nobody asked for, as fast as it can, after the first message.
    case unsolicitedReplies(count: Int)
    /// Closes the connection after `messages` messages.
    case closesAfter(messages: Int)
    /// Closes the connection after `messages` messages and stops listening (a back-end that died).
    case leavesAfter(messages: Int)
    /// Answers the first GET_FEATURES with a reply carrying 9 fds.
    case tooManyFds
    /// Accepts nothing: connections wait in the listen backlog forever.
    case neverAccepts
    /// Signals every call eventfd it is given, continuously.
    case signalsCalls
    /// Answers GET_FEATURES with a reply that carries a memfd (as GET_INFLIGHT_FD replies do).
    case replyWithFd
}

/// A vhost-user back-end for tests: listens on a socket, accepts connection after connection,
/// records every byte and fd it receives and sends, and behaves as told.
public final class TestBackEnd: @unchecked Sendable {
    public let path: String
    public let behaviour: BackEndBehaviour
    public var features: UInt64 = FeatureBit.version1.mask | FeatureBit.protocolFeatures.mask | FeatureBit.indirectDesc.mask
        | FeatureBit.eventIdx.mask | FeatureBit.netMQ.mask | FeatureBit.netCtrlVQ.mask
    public var protocolFeatures: UInt64 = ProtocolFeatureBit.mq.mask | ProtocolFeatureBit.replyAck.mask | ProtocolFeatureBit.status.mask
        | ProtocolFeatureBit.configureMemSlots.mask
    private let listener: Int32
    private let lock = NSLock()
    private var _connections: [PeerSocket] = []
    private var stopped = false
    private var threads = 0
    private let done = DispatchGroup()

    public init(path: String, behaviour: BackEndBehaviour = .cooperative) throws {
        self.path = path; self.behaviour = behaviour
        unlink(path)
        listener = cs_unix_listen(path)
        guard listener >= 0 else { throw POSIXError(.EADDRINUSE) }
        if case .neverAccepts = behaviour { return }
        done.enter()
        Thread.detachNewThread { [self] in acceptLoop(); done.leave() }
    }

    /// Every connection accepted so far, in order.
    public var connections: [PeerSocket] { lock.withLock { _connections } }
    /// Bytes received over all connections, concatenated per connection.
    public var isStopped: Bool { lock.withLock { stopped } }

    public func stop() {
        lock.withLock { stopped = true }
        _ = done.wait(timeout: .now() + 5)
        for c in connections { c.close() }
        closeListener()
    }

    private var listenerClosed = false
    private func closeListener() {
        let first = lock.withLock { () -> Bool in defer { listenerClosed = true }; return !listenerClosed }
        if first { close(listener); unlink(path) }
    }

    private func acceptLoop() {
        while !isStopped {
            let s = cs_unix_accept(listener, 50)
            if s < 0 { continue }
            let p = PeerSocket(fd: s)
            lock.withLock { _connections.append(p) }
            done.enter()
            Thread.detachNewThread { [self] in serve(p); done.leave() }
        }
    }

    private func reply(_ p: PeerSocket, _ m: Message, _ payload: [UInt8], fds: [Int32] = []) {
        let h = MessageHeader(request: m.header.request, flags: [.version1, .reply], size: UInt32(payload.count))
        p.send(h.encode() + payload, fds: fds, within: 1)
    }

    private func serve(_ p: PeerSocket) {
        var count = 0
        var calls: [Int32] = []
        defer { for c in calls { close(c) } }
        if case .stopReading = behaviour {
            while !isStopped && !p.isClosed { usleep(20_000) }
            return
        }
        while !isStopped && !p.isClosed {
            if case .signalsCalls = behaviour { for c in calls { _ = EventNotifier.signal(c) } }
            guard let m = p.receiveMessage(within: 0.02) else {
                if p.peerClosed { return }
                continue
            }
            count += 1
            var keep: [Int32] = []
            if case .signalsCalls = behaviour, m.request == .setVringCall, let f = m.fds.first { keep.append(dup(f)) }
            calls += keep
            m.closeFds()
            switch behaviour {
            case .stallMidReply where m.request == .getFeatures:
                p.send(Array(MessageHeader(request: 1, flags: [.version1, .reply], size: 8).encode() + [1, 2]))
                while !isStopped && !p.isClosed { usleep(20_000) }
                return
            case .garbageHeader:
                p.send(MessageHeader(request: m.header.request, flags: [.version1, .reply], size: 1 << 20).encode())
                while !isStopped && !p.isClosed { usleep(20_000) }
                return
            case .unsolicitedReplies(let n) where count == 1:
                for _ in 0..<n { reply(p, Message(.getQueueNum), U64Payload(8).encode()) }
            case .closesAfter(let n) where count >= n:
                p.close()
                return
            case .leavesAfter(let n) where count >= n:
                lock.withLock { stopped = true }
                closeListener()
                p.close()
                return
            case .tooManyFds where m.request == .getFeatures:
                let fds = (0..<9).map { _ in cs_memfd("be", 4096) }
                reply(p, m, U64Payload(features).encode(), fds: fds)
                fds.forEach { close($0) }
                continue
            case .replyWithFd where m.request == .getFeatures:
                let fd = cs_memfd("be-inflight", 4096)
                reply(p, m, U64Payload(features).encode(), fds: [fd])
                close(fd)
                continue
            default:
                break
            }
            answer(p, m)
        }
    }

    /// The replies a back-end owes.
    private func answer(_ p: PeerSocket, _ m: Message) {
        let replyAck = protocolFeatures & ProtocolFeatureBit.replyAck.mask != 0
        switch m.request {
        case .getFeatures?: reply(p, m, U64Payload(features).encode())
        case .getProtocolFeatures?: reply(p, m, U64Payload(protocolFeatures).encode())
        case .getQueueNum?: reply(p, m, U64Payload(8).encode())
        case .getMaxMemSlots?: reply(p, m, U64Payload(8).encode())
        case .getVringBase?:
            let s = m.decode(VringState.self) ?? VringState(index: 0, num: 0)
            reply(p, m, VringState(index: s.index, num: 0).encode())
        case .getStatus?: reply(p, m, StatusPayload(status: 0x0f).encode())
        case .getConfig?: reply(p, m, m.payload)
        default:
            if m.needsReply && replyAck { reply(p, m, U64Payload(0).encode()) }
        }
    }
}
