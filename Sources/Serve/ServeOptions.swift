import VhostModel
import VirtioProtocol

/// Which worker serves which vring: the seed's designs and upstream's, each the profile's mapping
/// from `VhostModel.WorkerMapping` (the one definition), applied to the vhost-user vring index.
public enum ServeMapping: String, CaseIterable, Sendable, CustomStringConvertible {
    /// Seed rev2: vq q → worker q mod W, with W capped at 2 ("Restrict number of vhost threads to 2").
    case seedRFC2 = "seed-rfc2"
    /// Seed rev1: vq q → worker q mod W, W uncapped.
    case seedRFC1 = "seed-rfc1"
    /// Upstream vhost-net: one worker per RX/TX pair (vq q → worker q / 2).
    case perPair = "per-pair"

    public var description: String { rawValue }

    /// The profile whose mapping this is.
    public var profile: Profile {
        switch self {
        case .seedRFC2: return .seedRFC2
        case .seedRFC1: return .seedRFC1
        case .perPair: return .linuxUpstream
        }
    }

    /// Workers the back-end runs. vhost-user's SET_OWNER carries no argument, so the seed's
    /// SET_OWNER(W) is the command line's `--workers W`, with the profile's cap (rev2 clamps to 2,
    /// as `OwnerSemantics` models it); per-pair has one worker per pair whatever W says.
    public func workers(requested: Int, pairs: Int) -> Int {
        switch self {
        case .seedRFC2, .seedRFC1: return OwnerSemantics.workers(requested: max(1, requested), profile: profile)
        case .perPair: return max(1, pairs)
        }
    }

    /// The worker serving vring `vq`.
    public func worker(of vq: Int, workers: Int) -> Int {
        WorkerMapping.assigned(profile: profile, vq: vq, workers: workers)!
    }
}

/// What `serve` does with the frames the driver transmits.
public enum ServeData: String, CaseIterable, Sendable {
    /// TX[k] is delivered on RX[k] (as testpmd's io forwarding does).
    case loopback
    /// TX is read and dropped; RX gets nothing.
    case sink
}

public struct ServeOptions: Sendable {
    public var socketPath: String
    /// Queue pairs: the device has 2 × pairs vrings (RX[k] = 2k, TX[k] = 2k + 1).
    public var pairs: Int
    public var workers: Int
    public var mapping: ServeMapping
    public var data: ServeData = .loopback
    public var tracePath: String?
    public var check = false
    public var stopOnViolation = false
    /// Seconds the back-end runs (nil: until SIGINT/SIGTERM or `sessions`).
    public var duration: Double?
    /// Ends after this many front-end sessions (0: no limit).
    public var sessions = 0
    /// Seconds a front-end may stall mid-message or leave a reply unread.
    public var stallTimeout = 5.0
    /// Microseconds a worker keeps polling its rings after the last work before it sleeps.
    public var spinMicros = 50
    /// Microseconds between polls of a ring whose front-end gave no kick fd.
    public var pollMicros = 50
    /// Largest ring size accepted (SET_VRING_NUM).
    public var maxQueueSize: UInt32 = SplitRing.maxQueueSize
    public var handleSignals = true
    public var verbose = false

    public init(socketPath: String, pairs: Int, workers: Int, mapping: ServeMapping) {
        self.socketPath = socketPath; self.pairs = pairs; self.workers = workers; self.mapping = mapping
    }

    /// Workers actually run (the mapping's cap applied).
    public var effectiveWorkers: Int { mapping.workers(requested: workers, pairs: pairs) }
    public var vrings: Int { 2 * pairs }
    public var tracing: Bool { tracePath != nil || check }
}
