/// Setup and run state of one vring on the vhost side.
/// vhost-user.rst "Ring states": a ring starts stopped and disabled, starts on its first kick,
/// stops on GET_VRING_BASE; SET_VRING_ENABLE toggles enabled independently.
public struct RingLifecycle: Equatable, Sendable {
    public var sizeSet = false
    public var addrSet = false
    public var kickSet = false
    /// Stopped by GET_VRING_BASE (or a vhost-net backend detach) and not restarted since.
    public var stopped = false
    public var enabled = true
    /// SET_VRING_ENABLE was received (so feature negotiation no longer decides `enabled`).
    public var enableSent = false
    /// Whether the device has a way to interrupt the driver: a call fd was set (SET_VRING_CALL with
    /// an fd). With "no fd" (vhost-user bit 8: the front-end polls) or fd -1 (kernel), or before any
    /// SET_VRING_CALL, it cannot, and no interrupt is owed.
    public var canInterrupt = false
    /// Kernel vhost: a backend (tap) is attached, so the ring is active (SET_VRING_NUM/BASE: -EBUSY).
    public var backendAttached = false
    /// vhost-user "Ring states": started on its first kick (or at once when the kick is "no fd":
    /// the back-end polls), stopped by GET_VRING_BASE.
    public var started = false

    public init() {}

    /// Everything the device needs before it may touch the ring.
    public var ready: Bool { sizeSet && addrSet && kickSet && !stopped }

    public static var preset: RingLifecycle {
        var r = RingLifecycle()
        r.sizeSet = true; r.addrSet = true; r.kickSet = true; r.canInterrupt = true; r.started = true
        return r
    }

    /// What is still missing, for messages.
    public var missing: [String] {
        var m: [String] = []
        if !sizeSet { m.append("SET_VRING_NUM") }
        if !addrSet { m.append("SET_VRING_ADDR") }
        if !kickSet { m.append("SET_VRING_KICK") }
        return m
    }
}
