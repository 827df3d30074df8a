import Glibc
import TraceFormat
import VhostUser

/// `--relay-notifications`: the back-end gets an eventfd of the recorder's for each kick and call
/// fd, and the recorder passes every notification on. Counts that do not fit in the target's
/// counter (a peer that never drains it) are kept and retried, never waited on.
struct NotificationRelay {
    let vq: UInt16
    let kick: Bool
    /// The fd the recorder reads (the front-end's kick fd, or its own eventfd the back-end signals).
    let readFd: Int32
    /// The fd it signals (its own eventfd the back-end reads, or the front-end's call fd).
    let writeFd: Int32
    /// Notifications taken but not yet passed on (the target's counter was full).
    var pending: UInt64 = 0

    /// Builds the relay for SET_VRING_KICK/CALL carrying `peerFd`; nil (pass the fd through
    /// untouched) when it is not an eventfd or no eventfd can be made, with the reason.
    static func make(vq: UInt16, kick: Bool, peerFd: Int32) -> (NotificationRelay?, String?) {
        guard EventNotifier.isEventFd(peerFd) else {
            return (nil, "the \(kick ? "kick" : "call") fd of vq \(vq) is not an eventfd; passed through, its notifications are not recorded")
        }
        guard let mine = EventNotifier.make() else {
            return (nil, "cannot relay notifications of vq \(vq): \(String(cString: strerror(errno))); passing the fd through")
        }
        let theirs = dup(peerFd)
        guard theirs >= 0 else {
            Glibc.close(mine)
            return (nil, "cannot relay notifications of vq \(vq): \(String(cString: strerror(errno))); passing the fd through")
        }
        // Kick: the front-end writes theirs, the recorder reads it and signals mine (the back-end's).
        // Call: the back-end signals mine, the recorder reads it and signals theirs.
        return (kick ? NotificationRelay(vq: vq, kick: true, readFd: theirs, writeFd: mine)
                     : NotificationRelay(vq: vq, kick: false, readFd: mine, writeFd: theirs), nil)
    }

    /// The fd the back-end must receive instead of the front-end's.
    var backendFd: Int32 { kick ? writeFd : readFd }

    /// Takes what is pending on `readFd` and passes it on. Returns how many notifications arrived
    /// now (0: none).
    mutating func service() -> UInt64 {
        let got = EventNotifier.take(readFd) ?? 0
        let (sum, over) = pending.addingReportingOverflow(got)
        pending = over ? UInt64.max - 1 : sum
        if pending > 0 {
            // An eventfd counter holds at most 2^64 - 2.
            switch EventNotifier.signal(writeFd, count: min(pending, UInt64.max - 1)) {
            case .signalled: pending = 0
            case .full, .failed: break
            }
        }
        return got
    }

    func close() { Glibc.close(readFd); Glibc.close(writeFd) }
}
