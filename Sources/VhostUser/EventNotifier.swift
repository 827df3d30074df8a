import CSupport
import Glibc

/// Kick and call notifications through eventfds a peer handed over. The fd's blocking mode is
/// the peer's business (it is shared with them), so reads and writes here never block whatever it
/// is: a full counter is reported, not waited on.
public enum EventNotifier {
    /// Whether `fd` is an eventfd at all (a pipe or a file passed as a kick fd is not).
    public static func isEventFd(_ fd: Int32) -> Bool { cs_is_eventfd(fd) == 1 }

    /// Takes the pending count (0 if none); nil on error.
    public static func take(_ fd: Int32) -> UInt64? {
        let v = cs_eventfd_take_nb(fd)
        return v < 0 ? nil : UInt64(v)
    }

    public enum SignalResult: Equatable, Sendable { case signalled, full, failed }

    /// Adds `count` to the counter. `.full` when it would overflow (the reader has not drained it;
    /// it has an unread notification anyway), nothing added then.
    public static func signal(_ fd: Int32, count: UInt64 = 1) -> SignalResult {
        switch cs_eventfd_add_nb(fd, count) {
        case 0: return .signalled
        case 1: return .full
        default: return .failed
        }
    }

    /// A fresh non-blocking, close-on-exec eventfd, or nil.
    public static func make() -> Int32? {
        let fd = cs_eventfd()
        return fd < 0 ? nil : fd
    }
}
