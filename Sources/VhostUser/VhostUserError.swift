/// Why a vhost-user operation did not complete. Every case has a sentence a user can act on.
public enum VhostUserError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The peer closed (or reset) the connection at a message boundary.
    case closed
    /// The deadline passed with the operation incomplete (a peer stalled mid-message, or stopped reading).
    case timedOut(String)
    /// The stop condition turned true (SIGINT/SIGTERM) while waiting.
    case stopped
    /// A system call failed.
    case io(String)
    /// The bytes or fds on the socket do not form a vhost-user message this layer accepts.
    case malformed(String)

    public var description: String {
        switch self {
        case .closed: return "peer closed the connection"
        case .timedOut(let s): return s
        case .stopped: return "stopped"
        case .io(let s): return s
        case .malformed(let s): return "malformed message: \(s)"
        }
    }
}
