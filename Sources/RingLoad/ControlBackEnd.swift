import Foundation
import Glibc
import VhostUser
import VirtioProtocol

/// The back-end side of the recorder-rate benchmark: a vhost-user back-end that answers the control
/// plane and never touches a ring. The device's part of the data plane (used elements and used.idx)
/// is written by the load generator itself, in the front-end's memory, so that one thread sets the
/// rate of both sides and the recorder is the only other party reading the rings.
public final class ControlBackEnd: @unchecked Sendable {
    public static let features: UInt64 = FeatureBit.version1.mask | FeatureBit.protocolFeatures.mask | FeatureBit.netMQ.mask
    public static let protocolFeatures: UInt64 = ProtocolFeatureBit.mq.mask | ProtocolFeatureBit.replyAck.mask

    public let path: String
    let pairs: Int
    private let listener: Listener
    private let lock = NSLock()
    private var stopped = false
    private var usedIndex: [UInt32: UInt16] = [:]
    private var failure: String?
    private let done = DispatchSemaphore(value: 0)

    /// Listens on `path` (at once: the recorder connects to it when the front-end arrives).
    public init(path: String, pairs: Int) throws(VhostUserError) {
        self.path = path; self.pairs = pairs
        listener = try Listener(path: path)
    }

    /// Serves one connection on a thread of its own, within `seconds`.
    public func start(within seconds: Double) {
        let t = Thread { [self] in
            serve(within: seconds)
            done.signal()
        }
        t.start()
    }

    /// What GET_VRING_BASE answers for vring `vq`: where the device (the generator) stopped.
    public func setUsedIndex(_ vq: UInt16, _ idx: UInt16) { lock.withLock { usedIndex[UInt32(vq)] = idx } }

    /// Ends the thread (within a second) and says what went wrong, if anything.
    public func stop() -> String? {
        lock.withLock { stopped = true }
        _ = done.wait(timeout: .now() + 2)
        return lock.withLock { failure }
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func serve(within seconds: Double) {
        let bound = IOBound.within(seconds, stop: { [self] in isStopped })
        let c: Channel
        do { c = try listener.accept(within: bound) } catch {
            if !isStopped { lock.withLock { failure = "no connection on \(path): \(error)" } }
            return
        }
        defer { c.close() }
        while true {
            let m: Message
            do { m = try c.receive(within: bound) } catch {
                if case .closed = error { return }
                if !isStopped { lock.withLock { failure = "back-end: \(error)" } }
                return
            }
            m.closeFds()
            guard let r = answer(m) else { continue }
            do { try c.send(r, within: .within(1)) } catch {
                lock.withLock { failure = "back-end: sending the reply to \(m.name): \(error)" }
                return
            }
        }
    }

    /// The reply a back-end owes `m`, if any (REPLY_ACK negotiated whenever the front-end asks).
    private func answer(_ m: Message) -> Message? {
        switch m.request {
        case .getFeatures?: return .reply(to: m, payload: U64Payload(Self.features))
        case .getProtocolFeatures?: return .reply(to: m, payload: U64Payload(Self.protocolFeatures))
        case .getQueueNum?: return .reply(to: m, payload: U64Payload(UInt64(pairs)))
        case .getVringBase?:
            let s = m.decode(VringState.self) ?? VringState(index: 0, num: 0)
            let idx = lock.withLock { usedIndex[s.index] ?? 0 }
            return .reply(to: m, payload: VringState(index: s.index, num: UInt32(idx)))
        default:
            return m.needsReply ? .ack(m, success: true) : nil
        }
    }
}
