import Foundation
import Testing
import TraceFormat
import VirtioProtocol
import Simulator

typealias Rng = SplitMix64

/// A valid event of `kind` with random values in every field it has.
func randomEvent(_ kind: EventKind, _ r: inout Rng, queues: Int) -> TraceEvent {
    var e = TraceEvent(kind, timestamp: r.next() >> 1)
    if kind.vqUse == .required || (kind.vqUse == .optional && r.below(2) == 0) { e.vq = UInt16(r.below(queues)) }
    if kind.hasWorker && r.below(3) != 0 { e.worker = UInt16(r.below(0xFFFF)) }
    for f in kind.fields {
        switch f.slot {
        case .aux, .resultAux: e.aux = UInt16(truncatingIfNeeded: r.next())
        case .p0: e.p0 = r.next() & f.mask
        case .p1: e.p1 = r.next() & f.mask
        case .p2: e.p2 = r.next() & f.mask
        case .descLen: e.p1 |= r.next() & 0xFFFF_FFFF
        case .descFlags: e.p1 |= (r.next() & 0xFFFF) << 32
        case .descNext: e.p1 |= (r.next() & 0xFFFF) << 48
        }
    }
    // Control events are exact: the reader refuses the sampled flag on them.
    if kind.plane != .control && r.below(4) == 0 { e.flags = .sampled }
    return e
}

@Suite struct RoundTripTests {
    @Test("every event kind survives binary -> text -> binary", arguments: EventKind.allCases)
    func everyKindRoundTrips(_ kind: EventKind) throws {
        var r = Rng(seed: UInt64(kind.rawValue))
        let h = TraceHeader(profile: .linuxWorkers, flags: [.preset, .sampled], features: r.next(), workers: 3, queueSizes: [8, 0, 32768])
        let events = (0..<200).map { _ in randomEvent(kind, &r, queues: 3) }
        let bytes = TraceBytes.encode(header: h, events: events)
        let (h1, decoded) = try TraceBytes.decode(bytes)
        #expect(h1 == h && decoded.map(\.event) == events)
        let text = TextForm.render(header: h1, events: events)
        let (h2, parsed) = try TextForm.parse(text)
        #expect(TraceBytes.encode(header: h2, events: parsed) == bytes)
        #expect(TextForm.render(header: h2, events: parsed) == text, "text -> binary -> text is stable too")
    }

    @Test("the streaming reader agrees with the in-memory decoder across buffer refills")
    func streamingReaderAgrees() throws {
        var r = Rng(seed: 9)
        let h = TraceHeader(profile: .vhostUser, queueSizes: [256, 256, 256, 256])
        let events = (0..<5000).map { _ in randomEvent(EventKind.allCases[r.below(EventKind.allCases.count)], &r, queues: 4) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("stream-\(getpid()).trace").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let w = try TraceWriter(path: path, header: h)
        events.forEach(w.write)
        w.close()
        let reader = try TraceReader(path: path)
        var got: [TraceEvent] = []
        var offsets: [UInt64] = []
        while let (e, o) = try reader.next() { got.append(e); offsets.append(o) }
        #expect(reader.header == h && got == events)
        #expect(offsets.first == UInt64(h.encodedSize) && offsets.last == UInt64(h.encodedSize + 40 * 4999))
    }
}

@Suite struct MalformedTraceTests {
    static let header = TraceHeader(profile: .linuxUpstream, queueSizes: [8, 8])
    static let good = TraceBytes.encode(header: header, events: [.availIdx(vq: 1, idx: 1), .usedIdx(vq: 1, idx: 1)])

    static func error(_ bytes: [UInt8]) -> TraceError? {
        do { _ = try TraceBytes.decode(bytes); return nil } catch let e as TraceError { return e } catch { return nil }
    }

    static func patched(_ at: Int, _ v: UInt8) -> [UInt8] { var b = good; b[at] = v; return b }

    @Test("each malformation is reported at its byte offset", arguments: [
        ("bad magic", patched(0, 0x41), 0),
        ("unknown version", patched(8, 2), 8),
        ("header size not matching the queue count", patched(10, 48), 10),
        ("unknown profile", patched(12, 9), 12),
        ("unknown layout", patched(13, 7), 13),
        ("unknown header flags", patched(14, 0x80), 14),
        ("reserved header bytes", patched(29, 1), 28),
        ("non-zero header padding", patched(37, 1), 37),
        ("unknown event kind", patched(40, 0x7F), 40),
        ("unknown event flags", patched(41, 0x40), 41),
        ("vq out of range", patched(42, 5), 42),
        ("worker on a driver event", patched(44, 0), 44),
        ("unused aux bits", patched(46, 1), 46),
        ("high bits of a 16-bit index", patched(58, 1), 56),
        ("unused p1 bits", patched(64, 1), 64),
        ("unused p2 bits", patched(72, 1), 72),
        ("truncated header", Array(good.prefix(20)), 20),
        ("truncated event", Array(good.prefix(good.count - 3)), 80),
    ] as [(String, [UInt8], UInt64)])
    func malformationAtOffset(_ c: (String, [UInt8], UInt64)) {
        let e = Self.error(c.1)
        #expect(e != nil, "\(c.0): accepted")
        #expect(e?.offset == c.2, "\(c.0): \(e.map(String.init(describing:)) ?? "")")
    }

    @Test("a queue count of zero is refused")
    func zeroQueues() {
        var b = Self.good
        b[24] = 0
        b[10] = 32
        #expect(Self.error(Array(b.prefix(32)))?.offset == 24)
    }

    @Test("randomly corrupted traces are decoded or refused, never a trap", arguments: 0..<8)
    func corruptedBytesNeverTrap(_ seed: Int) {
        var r = Rng(seed: UInt64(seed) + 100)
        let h = TraceHeader(profile: .seedRFC2, queueSizes: [16, 16, 16])
        let events = (0..<300).map { _ in randomEvent(EventKind.allCases[r.below(EventKind.allCases.count)], &r, queues: 3) }
        let base = TraceBytes.encode(header: h, events: events)
        var accepted = 0, refused = 0
        for _ in 0..<2000 {
            var b = base
            for _ in 0..<(1 + r.below(4)) { b[r.below(b.count)] = UInt8(truncatingIfNeeded: r.next()) }
            if r.below(5) == 0 { b = Array(b.prefix(r.below(b.count + 1))) }
            if Self.error(b) == nil { accepted += 1 } else { refused += 1 }
        }
        #expect(accepted + refused == 2000 && refused > 0)
    }

    @Test("text errors name the line")
    func textErrorsNameTheLine() {
        let text = "conformance-trace 1\nprofile vhost-user\nqueues 8\nevents\navail_idx vq=1 idx=1\n"
        #expect(throws: TraceError(line: 5, "vq '1' out of range (trace has 1 queues)")) { try TextForm.parse(text) }
        #expect((try? TextForm.parse("conformance-trace 1\nprofile nope\n")) == nil)
    }
}
