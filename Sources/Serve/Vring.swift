import Glibc
import VhostUser
import VirtioProtocol

/// One vring of the device: what the front-end configured, and the device's state while it runs.
///
/// Threading: the control thread changes the configuration only while every worker is paused;
/// the one worker the mapping gives this vring reads the configuration and owns the running
/// state. Counters are read by the control thread after the workers have stopped.
final class Vring: @unchecked Sendable {
    let index: Int
    /// RX (even vq) or TX (odd vq): vhost-user-net numbers its queues in pairs.
    let isTX: Bool
    var pair: Int { index / 2 }

    // Configuration (SET_VRING_*).
    var size: UInt32 = 0
    var desc: UInt64 = 0, avail: UInt64 = 0, used: UInt64 = 0
    var addrSet = false
    var base: UInt16 = 0
    var kickFd: Int32 = -1
    /// SET_VRING_KICK with NOFD: the device polls the ring instead of waiting for kicks.
    var polling = false
    var callFd: Int32 = -1
    var errFd: Int32 = -1
    /// SET_VRING_ENABLE's last value; nil when none came (then: enabled unless PROTOCOL_FEATURES).
    var enableSent: Bool?

    // Running state.
    /// Between SET_VRING_KICK and GET_VRING_BASE / the end of the session.
    var started = false
    var ring: DeviceRing?
    /// Set when the device refused the driver's input: the ring is no longer used until restarted.
    var refused: String?
    var lastAvail: UInt16 = 0
    var lastUsed: UInt16 = 0
    /// RX: chains walked (avail entries read) and not yet used, oldest first.
    var prefetched: [RxChain] = []
    var prefetchHead = 0
    /// Notification state the device wrote, and what it last saw of the driver's (for the trace:
    /// events are written when a value changes).
    var noNotify = false
    var tracedUsedEvent: Int32 = -1
    var tracedAvailFlags: Int32 = -1
    var tracedUsedFlags: Int32 = -1
    var tracedAvailEvent: Int32 = -1

    // Counters.
    var buffers: UInt64 = 0
    var packets: UInt64 = 0
    var bytes: UInt64 = 0
    var drops: UInt64 = 0
    /// RX: frames from TX[k] still queued for this ring when it stopped or was disabled (never
    /// delivered, never refused for want of room).
    var undelivered: UInt64 = 0
    var interrupts: UInt64 = 0
    var kicks: UInt64 = 0

    init(index: Int) {
        self.index = index
        isTX = index % 2 == 1
    }

    func enabled(features: UInt64) -> Bool {
        enableSent ?? (features & FeatureBit.protocolFeatures.mask == 0)
    }

    var pendingRx: Int { prefetched.count - prefetchHead }

    /// Whether the worker has this ring to serve now.
    var serving: Bool { started && ring != nil && refused == nil }

    func closeFds() {
        for fd in [kickFd, callFd, errFd] where fd >= 0 { close(fd) }
        kickFd = -1; callFd = -1; errFd = -1
    }

    /// Back to the state of a new connection (fds closed).
    func reset() {
        closeFds()
        size = 0; desc = 0; avail = 0; used = 0; addrSet = false; base = 0
        polling = false; enableSent = nil
        stop()
    }

    /// The ring stops (GET_VRING_BASE, end of session): nothing is kept in flight.
    func stop() {
        started = false
        ring = nil
        refused = nil
        prefetched.removeAll()
        prefetchHead = 0
        noNotify = false
        tracedUsedEvent = -1; tracedAvailFlags = -1; tracedUsedFlags = -1; tracedAvailEvent = -1
    }

    /// The base GET_VRING_BASE returns: the next avail position not completed. RX chains walked but
    /// not used are given back (as vhost_discard_vq_desc does), so the next start reads them again.
    var stopBase: UInt16 { started ? lastAvail &- UInt16(truncatingIfNeeded: pendingRx) : base }
}

/// An RX chain the device has walked and holds until a frame needs it.
struct RxChain {
    var pos: UInt16
    var head: UInt16
    var segments: [Segment]
    var writable: Int
}
