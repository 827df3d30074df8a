import ArgumentParser
import Checker
import Foundation
import Serve

struct ServeCmd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the reference vhost-user net back-end, tracing (and checking) exactly what it sees.",
        discussion: """
        serve listens on --socket; a front-end (DPDK virtio-user path=S.sock, QEMU -chardev \
        socket,path=S.sock -netdev vhost-user,queues=N) connects. It negotiates split rings with \
        EVENT_IDX, indirect descriptors, mergeable RX buffers and MQ, maps the memory table \
        read-write and serves the 2N vrings with W worker threads: --mapping seed-rfc2 (vq q on \
        worker q mod W, W at most 2), seed-rfc1 (W uncapped) or per-pair (one worker per queue \
        pair). vhost-user's SET_OWNER has no argument: W comes from --workers.

        --data loopback delivers what TX[k] sends on RX[k]; sink reads it and drops it. Bad driver \
        input (loops, out-of-range indices, addresses outside the memory table, indirect misuse) \
        makes the device stop using that ring and say why; serve goes on.

        --trace writes the exact trace of what the device saw (every avail index, descriptor, used \
        element and interrupt, with the worker and its service passes); --check judges it while it \
        runs: the front-end against the driver rules, serve against the device and worker rules. See \
        Specs/serve.md.

        Exit status: 0 served and (with --check) conformant; 1 --check found a broken rule; 2 usage \
        error, socket or trace that could not be set up, no front-end connected, a front-end that \
        broke the framing or stalled; 3 nothing else wrong, but something was not judged (a vring \
        beyond the device, a ring refused for input no rule names).
        """
    )

    @Option(help: "Socket path to listen on.")
    var socket: String

    @Option(help: "Queue pairs (RX/TX): the device has 2N vrings, RX[k] = vq 2k, TX[k] = vq 2k+1.")
    var queues: Int = 1

    @Option(help: "Worker threads (the seed's SET_OWNER argument). seed-rfc2 caps it at 2; per-pair ignores it.")
    var workers: Int = 1

    @Option(help: "Queue-to-worker mapping: seed-rfc2, seed-rfc1 or per-pair.")
    var mapping: String = "seed-rfc2"

    @Option(help: "loopback (TX[k] delivered on RX[k]) or sink (TX dropped).")
    var data: String = "loopback"

    @Option(help: "Write the exact trace here.")
    var trace: String?

    @Flag(help: "Judge the trace in-process as it is made; findings are printed as they happen.")
    var check = false

    @Flag(name: .customLong("stop-on-violation"), help: "With --check: end at the first finding.")
    var stopOnViolation = false

    @Option(help: "Stop after this many seconds.")
    var duration: Double?

    @Option(help: "Stop after this many front-end sessions (0: no limit).")
    var sessions: Int = 0

    @Option(name: .customLong("stall-timeout"), help: "Seconds a front-end may stall mid-message or leave a reply unread.")
    var stallTimeout: Double = 5

    @Option(name: .customLong("spin-us"), help: "Microseconds a worker keeps polling after its last work before it sleeps on the kick fds.")
    var spin: Int = 50

    @Option(name: .customLong("poll-us"), help: "Microseconds between polls of a ring whose front-end gave no kick fd.")
    var poll: Int = 50

    @Option(name: .customLong("summary-json"), help: "Also write the end-of-run counts as JSON here.")
    var summaryJSON: String?

    @Flag(help: "Log every message on stderr.")
    var verbose = false

    func validate() throws {
        if queues < 1 || queues > 128 { throw ValidationError("--queues must be between 1 and 128 queue pairs") }
        if workers < 1 || workers > 64 { throw ValidationError("--workers must be between 1 and 64") }
        if ServeMapping(rawValue: mapping) == nil { throw ValidationError("--mapping must be one of \(ServeMapping.allCases.map(\.rawValue).joined(separator: ", "))") }
        if ServeData(rawValue: data) == nil { throw ValidationError("--data must be loopback or sink") }
        if stopOnViolation && !check { throw ValidationError("--stop-on-violation needs --check") }
        if sessions < 0 || spin < 0 || poll < 0 || stallTimeout <= 0 { throw ValidationError("--sessions, --spin-us and --poll-us must be 0 or more, --stall-timeout positive") }
    }

    func run() throws {
        var o = ServeOptions(socketPath: socket, pairs: queues, workers: workers, mapping: ServeMapping(rawValue: mapping)!)
        o.data = ServeData(rawValue: data)!
        o.tracePath = trace
        o.check = check
        o.stopOnViolation = stopOnViolation
        o.duration = duration
        o.sessions = sessions
        o.stallTimeout = stallTimeout
        o.spinMicros = spin
        o.pollMicros = poll
        o.verbose = verbose
        if o.mapping == .seedRFC2 && workers > 2 {
            FileHandleOut.stderr("serve: seed-rfc2 restricts the workers to 2 (seed @1400): running 2, not \(workers)\n")
        }
        let label = trace ?? "serve"
        let r = Server(options: o, log: { FileHandleOut.stderr($0 + "\n") }, onFinding: { f in
            print(Reporting.text(f, path: label), terminator: "")
        }).run()
        FileHandleOut.stderr(r.summary + "\n")
        if let p = summaryJSON {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            struct Out: Codable { var exitStatus: Int32; var sessions: Int; var seconds: Double; var events: UInt64; var totalFindings: Int; var rules: [String]; var vqs: [ServeResult.VQ]; var workers: [ServeResult.WorkerStats] }
            let out = Out(exitStatus: r.exitStatus, sessions: r.sessions, seconds: r.seconds, events: r.events, totalFindings: r.totalFindings,
                          rules: Set(r.findings.map(\.rule.rawValue)).sorted(), vqs: r.vqs, workers: r.workers)
            if let d = try? enc.encode(out) { _ = FileManager.default.createFile(atPath: p, contents: d) }
        }
        if r.exitStatus != 0 { throw ExitCode(r.exitStatus) }
    }
}
