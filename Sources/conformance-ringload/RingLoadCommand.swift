import ArgumentParser
import Foundation
import RingLoad

/// The recorder-rate benchmark's synthetic front-end (and control-plane back-end); see
/// `scripts/bench-record.sh`, which starts `conformance record` between its two sockets.
@main
struct RingLoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformance-ringload",
        abstract: "Fill split rings in a memfd at a set rate, through a vhost-user proxy (the recorder-rate benchmark).",
        discussion: """
        Listens on --backend as a back-end that answers the control plane only, then connects to \
        --frontend as the front-end (start `conformance record --listen FRONTEND --connect BACKEND` \
        once the back-end socket exists). Negotiates VERSION_1, MQ and REPLY_ACK, starts vq 0 ..< \
        --rings of --pairs queue pairs, and for --seconds exposes and completes --batch buffers at a \
        time on every ring so that each ring moves --rate buffers per second (the device's writes \
        are this program's too). Then stops each ring with GET_VRING_BASE and disconnects. Prints \
        one line: rings, the rate asked, the rate made per ring, buffers, and the backlog the \
        generator itself had (a rate it could not make is not a measure of the recorder).
        """
    )

    @Option(help: "Socket to connect to as the front-end (the recorder's --listen).")
    var frontend: String
    @Option(help: "Socket to listen on as the back-end (the recorder's --connect).")
    var backend: String
    @Option(help: "Queue pairs the device offers (GET_QUEUE_NUM).")
    var pairs = 1
    @Option(help: "Rings filled: vq 0 ..< RINGS (at most 2 × pairs).")
    var rings = 1
    @Option(name: .customLong("queue-size"), help: "Split ring size.")
    var queueSize = 256
    @Option(help: "Buffers per second on each ring.")
    var rate: Double = 1_000_000
    @Option(help: "Buffers exposed and used at once.")
    var batch = 32
    @Option(help: "Seconds of load.")
    var seconds: Double = 2

    func run() throws {
        var o = LoadOptions(frontendSocket: frontend, backendSocket: backend)
        o.pairs = pairs; o.rings = rings; o.queueSize = queueSize; o.rate = rate; o.batch = batch; o.seconds = seconds
        do {
            let r = try LoadRun.run(o)
            print(String(format: "ringload rings=%d rate=%.0f made=%.0f buffers=%llu seconds=%.3f behind=%llu",
                         r.rings, rate, r.ratePerRing, r.totalBuffers, r.seconds, r.maxBehind))
        } catch {
            FileHandle.standardError.write("conformance-ringload: \(error)\n".data(using: .utf8)!)
            throw ExitCode(2)
        }
    }
}
