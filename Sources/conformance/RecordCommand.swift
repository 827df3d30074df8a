import ArgumentParser
import Checker
import Foundation
import LiveCheck
import Recorder
import TraceFormat
import VirtioProtocol

struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Record a trace from a live vhost-user front-end/back-end pair (a transparent proxy).",
        discussion: """
        The recorder listens on --listen for the front-end (point its socket path there, e.g. \
        DPDK virtio-user path=A.sock) and connects to the back-end's socket --connect (e.g. DPDK \
        net_vhost iface=B.sock). Every message, payload, reply and file descriptor is forwarded \
        unchanged. The control plane is recorded exactly; the data plane is recorded by polling the \
        rings in the shared memory (mapped read-only), so data-plane events are sampled and the \
        trace header says so. See Specs/recorder.md.

        The trace header is written at once and the file flushed at least once a second. The capture \
        ends when a peer disconnects, at --duration or --max-events, on SIGINT/SIGTERM, or (with \
        --check --stop-on-violation) at the first finding; a peer that stalls mid-message or stops \
        reading ends it after --stall-timeout. Ending closes both connections. The trace is valid \
        whatever ends it.

        Exit status: 0 a valid trace with every ring followed (and conformant, with --check); 1 --check \
        found a broken rule; 2 usage error, output or sockets that could not be set up, a peer that \
        broke the framing or stalled; 3 nothing else wrong, but a ring was not followed or had a gap \
        (ring_gap in the trace) or a message could not be recorded (a vring beyond --queues).
        """
    )

    @Option(name: .long, help: "Socket path to create for the front-end.")
    var listen: String

    @Option(name: .long, help: "Socket path of the back-end (already listening).")
    var connect: String

    @Option(name: [.short, .customLong("output")], help: "Trace file to write (binary, .trace).")
    var output: String

    @Option(help: "Stop after this many seconds.")
    var duration: Double?

    @Option(name: .customLong("max-events"), help: "Stop after this many events.")
    var maxEvents: UInt64?

    @Option(help: "Virtqueue count in the trace header, written at once (default 256: every vring SET_VRING_KICK can address). A vring message beyond it is reported as the front-end's error.")
    var queues: Int = VhostUser.maxKickableVrings

    @Option(name: .customLong("poll-interval-us"), help: "Microseconds between polls of the rings.")
    var pollInterval: Int = 20

    @Flag(name: .customLong("busy-poll"), help: "Never sleep between polls: spin on the rings, looking at the sockets once a poll interval. Reacts faster to busy rings and uses a whole core even when they are quiet (give the recorder a core of its own).")
    var busyPoll = false

    @Option(name: .customLong("write-ahead"), help: "Entries a driver or device may write beyond the index it published (the lap guard's W; Linux 1, DPDK at most 32).")
    var writeAhead: Int = 32

    @Option(name: .customLong("driver-write-ahead"), help: "Packed rings: positions beyond its published one whose bodies the driver may write before their flags (the lap guard on used descriptors; default: --write-ahead). A driver that writes each single-descriptor list's body just before its flags: 1.")
    var driverWriteAhead: Int?

    @Option(name: .customLong("accept-timeout"), help: "Seconds to wait for the front-end to connect.")
    var acceptTimeout: Double = 60

    @Option(name: .customLong("stall-timeout"), help: "Seconds a peer may stall mid-message or leave a message unread before the session ends.")
    var stallTimeout: Double = 5

    @Option(name: .customLong("backend-retry"), help: "Seconds to keep trying to reach the back-end when (re)connecting (testpmd needs ~2.4 s to listen again).")
    var backendRetry: Double = 10

    @Option(help: "Seconds between progress lines on stderr (0 for none).")
    var progress: Double = 1

    @Flag(help: "Check the events while recording; findings are printed as they happen.")
    var check = false

    @Flag(name: .customLong("stop-on-violation"), help: "With --check: end the capture at the first finding.")
    var stopOnViolation = false

    @Flag(help: "After a session ends (a disconnect, or a message that cannot be relayed), wait (--accept-timeout) for the front-end to connect again, reach the back-end again (--backend-retry) and record the next session into the same trace; each end of a session is written as reset_owner.")
    var reconnect = false

    @Flag(name: .customLong("relay-notifications"), help: "Interpose on kick/call eventfds to record kick and interrupt events (the back-end then holds the recorder's eventfds; off by default).")
    var relayNotifications = false

    @Flag(help: "Relay the rings too (Specs/recorder.md \"Interposing\"): the back-end gets shadow rings in a memory region of the recorder's, every exposure and completion is copied by the recorder and recorded exactly (no sampled flag). Features it cannot relay are negotiated away and listed at the start.")
    var interpose = false

    @Flag(help: "Log every relayed message on stderr.")
    var verbose = false

    func validate() throws {
        if stopOnViolation && !check { throw ValidationError("--stop-on-violation needs --check") }
        if queues < 1 || queues > TraceHeader.maxQueueCount { throw ValidationError("--queues must be between 1 and \(TraceHeader.maxQueueCount)") }
        if interpose && relayNotifications { throw ValidationError("--interpose relays the notifications already; drop --relay-notifications") }
        if pollInterval < 0 { throw ValidationError("--poll-interval-us must be 0 or more") }
        if writeAhead < 0 || writeAhead > 32768 { throw ValidationError("--write-ahead must be between 0 and 32768") }
        if let d = driverWriteAhead, d < 0 || d > 32768 { throw ValidationError("--driver-write-ahead must be between 0 and 32768") }
        if stallTimeout <= 0 || backendRetry < 0 || acceptTimeout < 0 { throw ValidationError("--stall-timeout must be positive, --backend-retry and --accept-timeout 0 or more") }
    }

    func run() throws {
        var o = RecordOptions(listenPath: listen, connectPath: connect, outputPath: output)
        o.duration = duration
        o.maxEvents = maxEvents
        o.queues = queues
        o.pollIntervalMicros = pollInterval
        o.busyPoll = busyPoll
        o.writeAhead = writeAhead
        o.driverWriteAhead = driverWriteAhead
        o.acceptTimeout = acceptTimeout
        o.stallTimeout = stallTimeout
        o.backendRetry = backendRetry
        o.progressInterval = progress
        o.verbose = verbose
        o.reconnect = reconnect
        o.relayNotifications = relayNotifications
        o.interpose = interpose
        let status = Record.runLive(o, check: check, stopOnViolation: stopOnViolation)
        if status != 0 { throw ExitCode(status) }
    }

    /// Shared by `record` and `check --live`: runs the capture, prints findings and a summary,
    /// and returns the exit status.
    static func runLive(_ o: RecordOptions, check: Bool, stopOnViolation: Bool) -> Int32 {
        let r = LiveRecord.run(o, check: check, stopOnViolation: stopOnViolation, log: { FileHandleOut.stderr($0 + "\n") }, onFinding: { f in
            print(Reporting.text(f, path: o.outputPath), terminator: "")
        })
        let rec = r.record
        if case .setupFailed(let why) = rec.end {
            FileHandleOut.stderr("record: \(why)\n")
            return r.exitStatus
        }
        if let f = rec.traceFailure { FileHandleOut.stderr("record: error: \(f); the trace on disk is cut short\n") }
        if let f = r.checkerFailure { FileHandleOut.stderr("record: error: the checker refused the trace: \(f)\n") }
        for f in rec.sessionFailures { FileHandleOut.stderr("record: error: \(f)\n") }
        for p in rec.peerErrors { FileHandleOut.stderr("record: error: \(p)\n") }
        for p in rec.ringProblems { FileHandleOut.stderr("record: not followed: \(p)\n") }
        var line = "record: \(rec.events) events on \(rec.queueCount) virtqueue(s) in \(String(format: "%.1f", rec.seconds)) s written to \(o.outputPath)"
        if check {
            line += r.totalFindings > 0 ? "; \(r.totalFindings) finding(s)" : r.notJudged.isEmpty && !rec.incomplete ? "; conformant" : "; no rule broken, but not everything was judged (incomplete)"
        } else if rec.incomplete {
            line += "; incomplete: not every ring was followed throughout"
        }
        FileHandleOut.stderr(line + "\n")
        return r.exitStatus
    }
}
