import CSupport

/// How long an I/O operation may take: until a monotonic deadline, and no longer than the moment
/// `stop` turns true (a signal handler's flag, a test's cancel). Socket and eventfd operations wait
/// in slices of at most `slice` so a stop is seen promptly even when no signal interrupts the wait
/// (a signal may be delivered to another thread).
public struct IOBound: Sendable {
    /// CLOCK_MONOTONIC nanoseconds; `UInt64.max` for none.
    public var deadline: UInt64
    public var stop: @Sendable () -> Bool
    public static let slice: UInt64 = 20_000_000

    public init(deadline: UInt64 = .max, stop: @escaping @Sendable () -> Bool = { false }) {
        self.deadline = deadline; self.stop = stop
    }

    /// A bound `seconds` from now (and by `stop`).
    public static func within(_ seconds: Double, stop: @escaping @Sendable () -> Bool = { false }) -> IOBound {
        IOBound(deadline: IOBound.now &+ UInt64(max(0, seconds) * 1e9), stop: stop)
    }

    public static var now: UInt64 { cs_now_ns() }

    /// The earlier of this deadline and `other`, same stop condition.
    public func capped(at other: UInt64) -> IOBound { IOBound(deadline: min(deadline, other), stop: stop) }

    /// Nanoseconds to wait in the next slice; nil when the bound is reached or stop is set.
    public func nextSlice() -> Int? {
        if stop() { return nil }
        let t = IOBound.now
        guard t < deadline else { return nil }
        return Int(min(deadline - t, IOBound.slice))
    }

    /// The error for a wait that ended without completing: stopped, or timed out doing `what`.
    func expired(_ what: @autoclosure () -> String) -> VhostUserError { stop() ? .stopped : .timedOut(what()) }
}
