import VirtioProtocol

/// What `conformance record` (and `check --live`) should do.
public struct RecordOptions: Sendable {
    /// Socket the front-end connects to (created by the recorder).
    public var listenPath: String
    /// The back-end's socket (it must be listening).
    public var connectPath: String
    /// Trace output (binary, `.trace`).
    public var outputPath: String
    /// Stop after this many seconds of capture (nil: until a peer disconnects or SIGINT/SIGTERM).
    public var duration: Double?
    /// Stop once this many events are written (a snapshot is written whole or not at all).
    public var maxEvents: UInt64?
    /// Virtqueue count in the header, written at once. Default 256: every vring SET_VRING_KICK can
    /// address. A vring message beyond it is the front-end's error (reported, not recorded).
    public var queues: Int = VhostUser.maxKickableVrings
    /// Pause between two polls of the rings. Shorter polls see more intermediate states and
    /// cost more CPU; the peers never wait for the recorder either way.
    public var pollIntervalMicros: Int = 20
    /// `--busy-poll`: never sleep between polls; the recorder spins on its core, polling the rings
    /// back to back and looking at the sockets once a poll interval. For a core of its own: it
    /// reacts within one pass instead of one wake-up (a sleep of 20 µs often lasts several times
    /// that), and uses the whole core even when the rings are quiet.
    public var busyPoll = false
    /// W of the lap guard: entries a driver or device may have written beyond the index it
    /// published (Linux writes 1 ahead, DPDK at most a burst of 32).
    public var writeAhead: Int = 32
    /// The driver's part of W for packed rings (the lap guard on used descriptors): positions beyond
    /// its published one whose bodies a driver may write before their flags (a list's later
    /// descriptors before its first one's flags). nil: `writeAhead`.
    public var driverWriteAhead: Int?
    /// Seconds to wait for the front-end to connect.
    public var acceptTimeout: Double = 60
    /// Seconds a peer may stall in the middle of a message, or leave a message unread, before the
    /// session ends (bounded by `duration` and by SIGINT/SIGTERM too).
    public var stallTimeout: Double = 5
    /// Seconds to keep trying to reach the back-end when (re)connecting (testpmd takes ~2.4 s to
    /// listen again after a restart).
    public var backendRetry: Double = 10
    /// Seconds between progress lines on stderr (0: none).
    public var progressInterval: Double = 1
    /// Log every relayed message on stderr.
    public var verbose = false
    /// After a session ends (a peer disconnects, or sends something that cannot be relayed), wait
    /// for the front-end to connect again (up to `acceptTimeout`), reconnect to the back-end and go
    /// on in the same trace; the end of a session is written as `reset_owner`, since a vhost-user
    /// back-end resets the device when its front-end leaves.
    public var reconnect = false
    /// Interpose on the kick and call eventfds to record `kick` and `interrupt` events: the back-end
    /// gets the recorder's eventfds, and each notification is passed on as it arrives. The peers
    /// then hold different fds than without the recorder (same semantics, a little latency), so
    /// this is off by default.
    public var relayNotifications = false
    /// `--interpose`: the recorder is the back-end's front-end for the rings too (shadow rings in a
    /// region of its own, every exposure and completion relayed and recorded exactly; the trace has
    /// no `sampled` flag). Implies relaying the notifications (`relayNotifications` is not used).
    public var interpose = false
    /// SIGINT/SIGTERM end the capture cleanly (the CLI wants this; a library caller may not).
    public var handleSignals = true

    public init(listenPath: String, connectPath: String, outputPath: String) {
        self.listenPath = listenPath; self.connectPath = connectPath; self.outputPath = outputPath
    }
}
