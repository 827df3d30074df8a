import Foundation
import Testing
import Checker
import Simulator
import TraceFormat
import TraceTools
import VirtioProtocol

/// Every packed `mutate` class, planted in packed traces (generated exact schedules of several
/// shapes, and the bundled polled packed traces for the class polls decide), is reported with
/// exactly its rule; the unmutated traces are clean.
@Suite struct PackedMutationTests {
    static func findings(_ h: TraceHeader, _ ev: [TraceEvent]) -> [Finding] {
        var c = Checker(header: h)
        var out: [Finding] = []
        for (i, e) in ev.enumerated() { out += c.process(e, index: UInt64(i), offset: UInt64(h.encodedSize + i * TraceEvent.size)) }
        return out + c.finish()
    }

    /// Exact packed traces: out of order and IN_ORDER, sizes that are and are not powers of two.
    static let generated: [(String, TraceHeader, [TraceEvent])] = {
        var out: [(String, TraceHeader, [TraceEvent])] = []
        for (n, inOrder, indirect, seed) in [(5, false, false, 1), (3, true, true, 2), (256, false, true, 3), (7, true, false, 4)] as [(UInt32, Bool, Bool, UInt64)] {
            let c = ScheduleConfig(profile: .vhostUser, pairs: 1, queueSize: n, indirect: indirect, eventIdx: seed % 2 == 0, startIndex: UInt16(seed), seed: seed, packed: true, inOrder: inOrder)
            var ev: [TraceEvent] = []
            var g = ScheduleGenerator(config: c) { ev.append($0) }
            g.run(events: 6_000)
            out.append(("\(c)", g.header, ev))
        }
        return out
    }()

    static let polled: [(String, TraceHeader, [TraceEvent])] = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Traces/good")
        return ["packed-polled-out-of-order", "packed-polled-in-order-batch"].compactMap { name in
            guard let text = try? String(contentsOf: root.appendingPathComponent(name + ".trace.txt"), encoding: .utf8),
                  let (h, ev) = try? TextForm.parse(text) else { return nil }
            return (name, h, ev)
        }
    }()

    static let packedClasses = BugClass.allCases.filter(\.packed)

    @Test("the packed traces mutated here are clean before")
    func unmutatedTracesAreClean() {
        #expect(Self.generated.count == 4 && Self.polled.count == 2)
        for (name, h, ev) in Self.generated + Self.polled {
            let f = Self.findings(h, ev)
            #expect(f.isEmpty, "\(name): \(f.prefix(2).map(\.message))")
        }
    }

    @Test("each packed mutate class is caught with exactly its rule", arguments: packedClasses)
    func packedClassIsCaughtWithItsRule(_ fault: BugClass) throws {
        var planted = 0
        for (name, h, ev) in Self.generated + Self.polled {
            let bad: [TraceEvent], change: String
            do { (bad, change) = try Mutator.apply(fault, header: h, events: ev) } catch let e as MutationError {
                // A class finds no place only where the trace lacks what it needs (reads, lists, polls).
                #expect(Mutator.needs(fault) != nil, "\(fault.name) on \(name): \(e)")
                continue
            }
            planted += 1
            let rules = Set(Self.findings(h, bad).map(\.rule))
            #expect(rules == [fault.expectedRule(inOrder: Mutator.negotiated(.inOrder, header: h, events: ev), packed: true)],
                    "\(fault.name) on \(name): \(change); checker said \(rules.map(\.rawValue).sorted())")
        }
        // Every class is planted in at least two of the six traces.
        #expect(planted >= 2, "\(fault.name) planted in \(planted) trace(s)")
    }

    /// A size a packed ring cannot have (the shared class, judged by the packed size rule); the
    /// ring is then not set up, so its traffic is reported as such too.
    @Test("bad-queue-size on a packed trace breaks PACKED-SIZE")
    func badQueueSizeOnPackedTrace() throws {
        for (name, h, ev) in Self.generated {
            let (bad, change) = try Mutator.apply(.badQueueSize, header: h, events: ev)
            let rules = Set(Self.findings(h, bad).map(\.rule))
            #expect(BugClass.badQueueSize.expectedRule(packed: true) == .packedSize)
            #expect(rules.contains(.packedSize) && !rules.contains(.vqSize), "\(name): \(change); \(rules)")
        }
    }

    @Test("packed classes refuse traces without VIRTIO_F_RING_PACKED")
    func packedClassesNeedPackedRings() {
        let h = TraceHeader(profile: .vhostUser, flags: .preset, features: FeatureBit.version1.mask, queueSizes: [8, 8])
        for f in BugClass.allCases where f.packed {
            #expect(throws: MutationError.self) { try Mutator.apply(f, header: h, events: [.simple(.kick, vq: 1)]) }
        }
    }
}
