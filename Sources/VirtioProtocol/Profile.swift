/// Named queue-to-worker mapping profiles: one model, several generations of the idea.
/// Source for each is in `Specs/profiles.md`.
public enum Profile: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Seed RFC rev2: SET_OWNER(W) with W capped at 2, vq q served by worker q mod W.
    case seedRFC2 = 0
    /// Seed RFC rev1: SET_OWNER(W) with unrestricted W, vq q served by worker q mod W.
    case seedRFC1 = 1
    /// Upstream Linux vhost-net: one device (and so one worker) per RX/TX queue pair.
    case linuxUpstream = 2
    /// Linux 6.5+: explicit workers (NEW_WORKER / ATTACH_VRING_WORKER / FREE_WORKER).
    case linuxWorkers = 3
    /// vhost-user: the back-end picks its threads; only single-consumer per vq is checked.
    case vhostUser = 4

    public var description: String {
        switch self {
        case .seedRFC2: return "seed-rfc2"
        case .seedRFC1: return "seed-rfc1"
        case .linuxUpstream: return "linux-upstream"
        case .linuxWorkers: return "linux-workers"
        case .vhostUser: return "vhost-user"
        }
    }

    public init?(name: String) {
        guard let p = Profile.allCases.first(where: { $0.description == name }) else { return nil }
        self = p
    }

    /// rev2 "Restrict number of vhost threads to 2".
    public static let seedRFC2MaxWorkers = 2

    /// Whether a trace may pair this profile with `layout`: vhost-net (one device per RX/TX pair) and
    /// vhost-user-net number their queues as pairs, so the seed layout means nothing for them.
    public func allows(_ layout: QueueLayout) -> Bool {
        switch self {
        case .linuxUpstream, .vhostUser: return layout == .mq
        case .seedRFC1, .seedRFC2, .linuxWorkers: return true
        }
    }

    /// The queue layout a profile uses unless a trace says otherwise.
    public var defaultLayout: QueueLayout {
        switch self {
        case .seedRFC1, .seedRFC2: return .seed
        default: return .mq
        }
    }
}
