import Glibc
import VhostUser

/// The kick and call eventfds of one vring under --interpose. The back-end gets eventfds of the
/// relay's; the relay keeps duplicates of the front-end's. Kicks and calls are passed on by the
/// relay pass that moved what they announce, never before (`Interposer.step`).
struct RelayNotifiers {
    /// The front-end's kick eventfd (read) and the one the back-end was given (signalled).
    var frontKick: Int32 = -1, backKick: Int32 = -1
    /// The back-end's call eventfd (read) and the front-end's (signalled).
    var backCall: Int32 = -1, frontCall: Int32 = -1
    /// Counts that did not fit in a full counter, passed on later.
    var kicksOwed: UInt64 = 0, callsOwed: UInt64 = 0

    /// SET_VRING_KICK/CALL with `fd`: a fresh eventfd for the back-end, nil (pass the fd through)
    /// when the fd is not an eventfd or none can be made.
    mutating func replace(kick: Bool, frontFd fd: Int32) -> (Int32?, String?) {
        guard EventNotifier.isEventFd(fd) else {
            return (nil, "the \(kick ? "kick" : "call") fd is not an eventfd; passed through, not relayed")
        }
        guard let mine = EventNotifier.make() else { return (nil, "no eventfd: \(String(cString: strerror(errno)))") }
        let theirs = dup(fd)
        guard theirs >= 0 else { Glibc.close(mine); return (nil, "dup: \(String(cString: strerror(errno)))") }
        if kick {
            closeKick(); frontKick = theirs; backKick = mine
        } else {
            closeCall(); backCall = mine; frontCall = theirs
        }
        return (mine, nil)
    }

    /// Pending kicks from the front-end (and calls from the back-end) since the last take.
    func takeKick() -> Bool { frontKick >= 0 && (EventNotifier.take(frontKick) ?? 0) > 0 }
    func takeCall() -> Bool { backCall >= 0 && (EventNotifier.take(backCall) ?? 0) > 0 }

    mutating func kickBackend() { Self.signal(backKick, owed: &kicksOwed) }
    mutating func callFrontend() { Self.signal(frontCall, owed: &callsOwed) }
    mutating func retryOwed() {
        if kicksOwed > 0 { kicksOwed -= 1; kickBackend() }
        if callsOwed > 0 { callsOwed -= 1; callFrontend() }
    }

    private static func signal(_ fd: Int32, owed: inout UInt64) {
        guard fd >= 0 else { return }
        if EventNotifier.signal(fd) == .full { owed = 1 }
    }

    mutating func closeKick() {
        if frontKick >= 0 { Glibc.close(frontKick) }
        if backKick >= 0 { Glibc.close(backKick) }
        frontKick = -1; backKick = -1
    }
    mutating func closeCall() {
        if frontCall >= 0 { Glibc.close(frontCall) }
        if backCall >= 0 { Glibc.close(backCall) }
        frontCall = -1; backCall = -1
    }
    mutating func close() { closeKick(); closeCall() }
}
