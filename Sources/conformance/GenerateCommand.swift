import ArgumentParser
import Foundation
import Simulator
import TraceFormat
import VirtioProtocol

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a seeded schedule of a conformant driver and device (or one with a named fault) as a trace.",
        discussion: "Streams to the file: memory stays flat for any --events. The same seed gives the same bytes."
    )

    @Option(help: "Events to generate before the schedule drains (a fault ends it earlier).")
    var events: UInt64 = 100_000

    @Option(help: "Profile: \(Profile.allCases.map(\.description).joined(separator: ", ")).")
    var profile: ProfileOption = ProfileOption(argument: "linux-upstream")!

    @Option(help: "Queue pairs (mq layouts) or TX queues (seed layouts).")
    var pairs: Int = 2

    @Option(help: "Queue size (split: a power of two up to 32768; packed: any size up to 32768).")
    var queueSize: UInt32 = 256

    @Option(help: "First free-running index of every ring (e.g. 65530 to wrap early).")
    var start: UInt16 = 0

    @Flag(help: "Negotiate VIRTIO_F_INDIRECT_DESC and use indirect tables.")
    var indirect = false

    @Flag(help: "Negotiate VIRTIO_F_EVENT_IDX.")
    var eventIdx = false

    @Flag(help: "Negotiate VIRTIO_F_RING_PACKED: every ring is a packed ring.")
    var packed = false

    @Flag(help: "Negotiate VIRTIO_F_IN_ORDER (with --packed: used descriptors retire batches).")
    var inOrder = false

    @Option(help: "Seed of the schedule.")
    var seed: UInt64 = 1

    @Option(help: "Inject one bug of this class (a rule ID): \(Fault.allCases.map(\.rawValue).joined(separator: ", ")).")
    var fault: String?

    @Option(name: .shortAndLong, help: "Output trace file.")
    var output: String

    func validate() throws {
        let format: RingFormat = packed || (fault.flatMap(Fault.init(rawValue:))?.packed ?? false) ? .packed : .split
        guard format.isValidQueueSize(queueSize) else { throw ValidationError("--queue-size: \(format.sizeRequirement)") }
        if inOrder && !packed { throw ValidationError("--in-order needs --packed (split schedules use the ring in any order)") }
        guard (1...4096).contains(pairs) else { throw ValidationError("--pairs must be in 1...4096") }
        if let f = fault, Fault(rawValue: f) == nil { throw ValidationError("unknown fault '\(f)'; known: \(Fault.allCases.map(\.rawValue).joined(separator: ", "))") }
    }

    func run() throws {
        var config = ScheduleConfig(profile: profile.value, pairs: pairs, queueSize: queueSize, indirect: indirect,
                                    eventIdx: eventIdx, startIndex: start, seed: seed, packed: packed, inOrder: inOrder)
        if let f = fault.flatMap(Fault.init(rawValue:)) { config = f.adapt(config) }
        let header = ScheduleGenerator(config: config) { _ in }.header
        let writer: TraceWriter
        do { writer = try TraceWriter(path: output, header: header) } catch let e as TraceError { fail("\(output): \(e)") }
        var gen = ScheduleGenerator(config: config) { writer.write($0) }
        gen.run(events: events)
        writer.close()
        FileHandle.standardError.write(Data("\(output): \(gen.emitted) events (\(config))\n".utf8))
    }
}
