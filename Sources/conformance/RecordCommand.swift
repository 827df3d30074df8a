import ArgumentParser
import Checker
import Foundation
import Recorder

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

        The capture ends when a peer disconnects, at --duration or --max-events, on SIGINT/SIGTERM, \
        or (with --check --stop-on-violation) at the first finding. Ending closes both connections. \
        The trace is valid whatever ends it.

        Exit status: 0 captured (and conformant, with --check), 1 --check found a broken rule, \
        2 usage error, sockets that could not be set up, or a malformed message that ended the capture.
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

    @Option(help: "Virtqueue count in the trace header (default: the vrings the front-end set up before traffic started). Giving it makes events stream, and --check judge them, from the first message.")
    var queues: Int?

    @Option(name: .customLong("poll-interval-us"), help: "Microseconds between polls of the rings.")
    var pollInterval: Int = 20

    @Option(name: .customLong("accept-timeout"), help: "Seconds to wait for the front-end to connect.")
    var acceptTimeout: Double = 60

    @Option(help: "Seconds between progress lines on stderr (0 for none).")
    var progress: Double = 1

    @Flag(help: "Check the events while recording; findings are printed as they happen.")
    var check = false

    @Flag(name: .customLong("stop-on-violation"), help: "With --check: end the capture at the first finding.")
    var stopOnViolation = false

    @Flag(help: "After a disconnect, wait (--accept-timeout) for the front-end to connect again and record the next session into the same trace; each disconnect is written as reset_owner.")
    var reconnect = false

    @Flag(name: .customLong("relay-notifications"), help: "Interpose on kick/call eventfds to record kick and interrupt events (the back-end then holds the recorder's eventfds; off by default).")
    var relayNotifications = false

    @Flag(help: "Log every relayed message on stderr.")
    var verbose = false

    func validate() throws {
        if stopOnViolation && !check { throw ValidationError("--stop-on-violation needs --check") }
        if let q = queues, q < 1 || q > 0xFFFE { throw ValidationError("--queues must be between 1 and 65534") }
        if pollInterval < 0 { throw ValidationError("--poll-interval-us must be 0 or more") }
    }

    func run() throws {
        var o = RecordOptions(listenPath: listen, connectPath: connect, outputPath: output)
        o.duration = duration
        o.maxEvents = maxEvents
        o.queues = queues
        o.pollIntervalMicros = pollInterval
        o.acceptTimeout = acceptTimeout
        o.progressInterval = progress
        o.check = check
        o.stopOnViolation = stopOnViolation
        o.verbose = verbose
        o.reconnect = reconnect
        o.relayNotifications = relayNotifications
        let status = Record.runLive(o)
        if status != 0 { throw ExitCode(status) }
    }

    /// Shared by `record` and `check --live`: runs the capture, prints findings and a summary,
    /// and returns the exit status.
    static func runLive(_ o: RecordOptions) -> Int32 {
        let r = Recorder.run(o, log: { FileHandleOut.stderr($0 + "\n") }, onFinding: { f in
            print(Reporting.text(f, path: o.outputPath), terminator: "")
        })
        if case .setupFailed(let why) = r.end {
            FileHandleOut.stderr("record: \(why)\n")
            return r.exitStatus
        }
        for p in r.ringProblems { FileHandleOut.stderr("record: warning: \(p)\n") }
        var line = "record: \(r.events) events on \(r.queueCount) virtqueue(s) in \(String(format: "%.1f", r.seconds)) s written to \(o.outputPath)"
        if o.check {
            line += r.totalFindings == 0 ? "; conformant" : "; \(r.totalFindings) finding(s)"
        }
        FileHandleOut.stderr(line + "\n")
        return r.exitStatus
    }
}
