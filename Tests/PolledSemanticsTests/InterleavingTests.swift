import PolledSemantics
import Testing
import VirtioProtocol
import VirtqueueModel

/// The polled semantics, checked against its definition on every small case.
///
/// A tiny driver and device run every sequence of steps up to a length on rings of 1, 2 and 4
/// entries (heads reused as often as the length allows, IN_ORDER on and off, with batches whose
/// only element is the last one), each run observed by every placement of up to three polls, each
/// poll reading avail.idx, then slots and chains (at any moment until it reads used.idx), then
/// used.idx and the new elements. The observations of all legal runs form the set of explainable
/// observations. Then:
/// - every explainable observation gets no finding (soundness);
/// - every observation of a run with one illegal step that no legal run explains gets a finding
///   (the samples decide it, so the checker must).
/// This is the definition `PolledRing` implements with a greedy search; here it is enumerated.
@Suite struct InterleavingTests {
    @Test("every legal run, polled at every set of points, gets no finding; every illegal run whose polls no legal run explains gets one",
          arguments: [
              Config(size: 1, steps: 7, polls: 2, inOrder: false, values: [.plain, .loop]),
              Config(size: 2, steps: 6, polls: 2, inOrder: false, values: [.plain, .loop]),
              Config(size: 2, steps: 5, polls: 3, inOrder: false, values: [.plain, .loop]),
              Config(size: 2, steps: 5, polls: 2, inOrder: false, values: [.plain, .toOther, .writable, .bigWritable]),
              Config(size: 2, steps: 6, polls: 2, inOrder: true, values: [.plain, .loop]),
              Config(size: 4, steps: 5, polls: 2, inOrder: false, values: [.plain, .loop]),
              Config(size: 4, steps: 5, polls: 2, inOrder: true, values: [.plain]),
              // Observation beginning in the middle of a run: buffers already in flight, heads unknown.
              // Without IN_ORDER, which head each of those buffers has is a matching problem the
              // checker does not solve: a head the driver reuses while one of them may still hold it
              // is caught only when the descriptor count alone rules it out (Specs/model.md).
              Config(size: 2, steps: 6, polls: 2, inOrder: false, values: [.plain, .loop], startMidRun: true, completeWithUnknownHeads: false),
              Config(size: 2, steps: 6, polls: 2, inOrder: true, values: [.plain], startMidRun: true),
          ])
    func polledVerdictsMatchTheDefinition(_ config: Config) {
        let legal = Enumeration(config, illegal: false)
        // A legal explanation may need a few more steps than the illegal run (descriptor writes
        // that make a read show what it showed): legal runs are enumerated two steps longer.
        let illegal = Enumeration(config, illegal: true, maxSteps: config.steps - 2)
        var flaggedLegal: [Observed] = []
        for o in legal.observations where judge(o, config).isEmpty == false { flaggedLegal.append(o) }
        for o in flaggedLegal.prefix(3) { print("FLAGGED LEGAL \(config): \(describe(o)) -> \(judge(o, config).joined(separator: "; "))") }
        #expect(flaggedLegal.count == 0, "\(flaggedLegal.count) explainable observations were flagged, e.g. \(flaggedLegal.first.map { describe($0) + " -> " + judge($0, config).joined(separator: "; ") } ?? "")")

        var decided = 0, caught = 0
        var missed: [Observed] = []
        for o in illegal.observations where !legal.observations.contains(o) && (config.completeWithUnknownHeads || o.unknownAtStart == 0) {
            decided += 1
            if judge(o, config).isEmpty { missed.append(o) } else { caught += 1 }
        }
        for o in missed.prefix(3) { print("MISSED \(config): \(describe(o))") }
        #expect(missed.count == 0, "\(missed.count) of \(decided) decided illegal observations were not flagged, e.g. \(missed.first.map(describe) ?? "")")
        // The enumeration must exercise what it claims: illegal runs the samples decide, and
        // heads exposed more than once between two polls.
        #expect(decided > 0)
        #expect(legal.reusedWithinAPoll > 0 || config.size == 1)
        print("polled \(config): \(legal.observations.count) explainable observations, \(illegal.observations.count) of runs with one illegal step, \(decided) decided, \(caught) caught")
    }

    func judge(_ o: Observed, _ c: Config) -> [String] {
        var r = PolledRing(size: UInt32(c.size), base: 0, indirectAllowed: false, eventIdx: false, inOrder: c.inOrder)
        var out: [String] = []
        var ref: UInt64 = 0
        // The recorder reads the used ring once as it starts following it.
        for (slot, e) in o.initialSlots.enumerated() { _ = r.observe(.usedSlot(slot: UInt16(slot), id: UInt32(e.id), len: UInt32(e.len)), ref: 0) }
        for p in o.polls {
            for e in p.exposures {
                for rd in e.reads { _ = r.observe(.descriptor(DescriptorRead(.table(UInt16(rd.index)), rd.value.descriptor(at: rd.index, size: c.size))), ref: ref) }
                _ = r.observe(.availEntry(pos: UInt16(e.pos), head: UInt16(e.head)), ref: ref)
                ref += 1
            }
            for (q, el) in p.elements.enumerated() {
                _ = r.observe(.usedEntry(pos: UInt16(p.prevUsed + q), id: UInt32(el.id), len: UInt32(el.len)), ref: ref)
                ref += 1
            }
            let outcome = r.observe(.poll(avail: UInt16(p.avail), used: UInt16(p.used)), ref: ref)!
            ref += 1
            out += outcome.violations.map { "\($0.violation)" }
            if let a = outcome.anomaly { out.append("anomaly: \(a)") }
        }
        r.finish()
        return out
    }

    func describe(_ o: Observed) -> String {
        o.polls.map { p in
            "poll(avail \(p.avail) used \(p.used): " + p.exposures.map { "pos\($0.pos)=h\($0.head)\($0.reads.map { "[\($0.index)=\($0.value)]" }.joined())" }.joined(separator: " ")
                + " | " + p.elements.map { "(\($0.id),\($0.len))" }.joined(separator: " ") + ")"
        }.joined(separator: " ")
    }
}

// MARK: the tiny ring

struct Config: CustomStringConvertible, Sendable {
    var size: Int
    var steps: Int
    var polls: Int
    var inOrder: Bool
    var values: [DVal]
    /// The first poll is a starting observation in the middle of the run (used.idx, then avail.idx,
    /// no entries), as a recorder makes when it starts following a busy ring.
    var startMidRun = false
    /// Whether every decided observation must be caught even when observation began with buffers in
    /// flight (their heads unknown); if not, only those that began with none.
    var completeWithUnknownHeads = true
    var description: String { "N=\(size) steps<=\(steps) polls<=\(polls) \(inOrder ? "IN_ORDER" : "any order") values \(values)\(startMidRun ? " from mid-run" : "")" }
}

/// A descriptor's content, from a small alphabet.
enum DVal: Int, Hashable, Sendable, CustomStringConvertible {
    case plain       // device-readable, 16 bytes, ends the chain
    case writable    // device-writable, 16 bytes, ends the chain
    case loop        // NEXT to itself: a chain that never ends
    case toOther     // device-readable, NEXT to the following descriptor
    case bigWritable // device-writable, 4096 bytes: any short used length has a legal explanation

    var description: String { ["plain", "writable", "loop", "toOther", "bigWritable"][rawValue] }

    func descriptor(at i: Int, size: Int) -> Descriptor {
        switch self {
        case .plain: return Descriptor(addr: 0x1000, len: 16)
        case .writable: return Descriptor(addr: 0x1000, len: 16, flags: .write)
        case .loop: return Descriptor(addr: 0x1000, len: 16, flags: .next, next: UInt16(i))
        case .toOther: return Descriptor(addr: 0x1000, len: 16, flags: .next, next: UInt16((i + 1) % size))
        case .bigWritable: return Descriptor(addr: 0x1000, len: 4096, flags: .write)
        }
    }
    func next(_ i: Int, size: Int) -> Int? {
        switch self { case .loop: return i; case .toOther: return (i + 1) % size; default: return nil }
    }
}

/// The state of the tiny ring between two steps.
struct Mini: Hashable {
    var table: [DVal]
    var avail = 0, used = 0
    /// Head exposed at each avail position.
    var heads: [Int] = []
    /// Chains the device owns, oldest first: head, descriptors, writable bytes.
    var inFlight: [Chain] = []
    /// Used ring slot contents (id, len); zero at the start.
    var usedSlots: [Element]
    /// The element written for each used position (nil where an IN_ORDER batch wrote none).
    var written: [Element?] = []
    struct Chain: Hashable { var head: Int; var descs: [Int]; var writable: Int }
    struct Element: Hashable { var id: Int; var len: Int }

    init(size: Int) {
        table = Array(repeating: .plain, count: size)
        usedSlots = Array(repeating: Element(id: 0, len: 0), count: size)
    }

    var owned: Set<Int> { Set(inFlight.flatMap(\.descs)) }

    /// What a read of used position `q` shows: its element, or what the slot held from an earlier lap.
    func element(at q: Int) -> Element {
        var p = q
        while p >= 0 {
            if p < written.count, let e = written[p] { return e }
            p -= usedSlots.count
        }
        return Element(id: 0, len: 0)
    }

    /// The chain from `h` as the table holds it now; nil when it loops.
    func chain(_ h: Int) -> Chain? {
        var descs: [Int] = [], i = h, writable = 0
        while true {
            if descs.contains(i) { return nil }
            descs.append(i)
            if table[i] == .writable { writable += 16 }
            if table[i] == .bigWritable { writable += 4096 }
            guard let n = table[i].next(i, size: table.count) else { return Chain(head: h, descs: descs, writable: writable) }
            i = n
        }
    }

    /// What a poll reads walking the chain from `h` now: (index, value) until the end or a revisit.
    func walk(_ h: Int) -> [(Int, DVal)] {
        var out: [(Int, DVal)] = [], i = h
        while !out.contains(where: { $0.0 == i }) {
            out.append((i, table[i]))
            guard let n = table[i].next(i, size: table.count) else { break }
            i = n
        }
        return out
    }
}

enum Step { case write(Int, DVal), expose(Int), complete(Int, len: Int), completeBatch }

/// Every run up to the configured length (legal only, or with exactly one illegal step), and every
/// observation of it.
struct Enumeration {
    var observations = Set<Observed>()
    var reusedWithinAPoll = 0
    let config: Config

    init(_ config: Config, illegal: Bool, maxSteps: Int? = nil) {
        self.config = config
        var states = [Mini(size: config.size)]
        run(&states, illegalLeft: illegal ? 1 : 0, illegalUsed: false, maxSteps: maxSteps ?? config.steps)
    }

    mutating func run(_ states: inout [Mini], illegalLeft: Int, illegalUsed: Bool, maxSteps: Int) {
        // Legal enumeration: every run; illegal one: every run once its illegal step is taken.
        if illegalLeft == 0 { observe(states) }
        guard states.count - 1 < maxSteps else { return }
        let s = states.last!
        for (step, legal) in steps(s) {
            if !legal && illegalLeft == 0 { continue }
            states.append(apply(step, to: s))
            run(&states, illegalLeft: legal ? illegalLeft : 0, illegalUsed: illegalUsed || !legal, maxSteps: maxSteps)
            states.removeLast()
        }
    }

    /// The steps possible in `s`, each with whether it is legal.
    func steps(_ s: Mini) -> [(Step, Bool)] {
        var out: [(Step, Bool)] = []
        let n = config.size
        let owned = s.owned
        for i in 0..<n {
            for v in config.values where v != s.table[i] { out.append((.write(i, v), !owned.contains(i))) }
        }
        for h in 0..<n {
            let c = s.chain(h)
            let free = c.map { Set($0.descs).isDisjoint(with: owned) } ?? !owned.contains(h)
            out.append((.expose(h), c != nil && free && s.avail - s.used < n))
        }
        if config.inOrder {
            if let oldest = s.inFlight.first { out.append((.complete(oldest.head, len: 0), true)) }
            if s.inFlight.count >= 2 { out.append((.completeBatch, true)) }
            // Illegal: completing a chain other than the oldest, or one not in flight at all.
            for h in 0..<n where h != s.inFlight.first?.head { out.append((.complete(h, len: 0), false)) }
        } else {
            for h in 0..<n {
                if let c = s.inFlight.first(where: { $0.head == h }) {
                    // Any length up to the writable bytes is legal; one more is not.
                    // (Lengths of illegal runs included, so that each has its legal look-alike.)
                    for len in Set([0, 1, 16, 17, c.writable]) where len <= c.writable { out.append((.complete(h, len: len), true)) }
                    // One byte too many, where some content of the tiny ring could hold it.
                    if config.values.contains(.writable) && c.writable < 4096 { out.append((.complete(h, len: c.writable + 1), false)) }
                } else {
                    out.append((.complete(h, len: 0), false))
                }
            }
        }
        return out
    }

    func apply(_ step: Step, to s0: Mini) -> Mini {
        var s = s0
        switch step {
        case .write(let i, let v):
            s.table[i] = v
        case .expose(let h):
            // An illegal exposure still hands the device what was there (a looping chain, busy
            // descriptors): the run goes on from it.
            let c = s.chain(h) ?? Mini.Chain(head: h, descs: s.walk(h).map(\.0), writable: 0)
            s.heads.append(h)
            s.avail += 1
            s.inFlight.append(c)
        case .complete(let h, let len):
            if let k = s.inFlight.firstIndex(where: { $0.head == h }) { s.inFlight.remove(at: k) }
            s.usedSlots[s.used % config.size] = Mini.Element(id: h, len: len)
            s.written.append(Mini.Element(id: h, len: len))
            s.used += 1
        case .completeBatch:
            // IN_ORDER: two buffers used, only the last one's element written.
            let last = s.inFlight[1].head
            s.inFlight.removeFirst(2)
            s.usedSlots[(s.used + 1) % config.size] = Mini.Element(id: last, len: 0)
            s.written += [nil, Mini.Element(id: last, len: 0)]
            s.used += 2
        }
        return s
    }

    /// Every placement of polls over the run (the last one ending at its end: later steps are
    /// invisible), each poll reading its chains at one moment between its two index reads.
    mutating func observe(_ states: [Mini]) {
        let m = states.count - 1
        var points: [Int] = []
        if config.startMidRun {
            // The start reads used.idx (and the used ring) at b0, avail.idx at b0' >= b0, and used.idx
            // again at b0'' >= b0', keeping the observation only if both used.idx reads agree.
            for b0 in 0...m { for b0a in b0...m { for b0c in b0a...m where states[b0c].used == states[b0].used {
                startAt = (b0, b0a)
                for polls in 1...config.polls { place(polls, from: b0c, states, m, &points) }
            } } }
            startAt = nil
        } else {
            for polls in 1...config.polls { place(polls, from: 0, states, m, &points) }
        }
    }
    var startAt: (Int, Int)?

    mutating func place(_ left: Int, from: Int, _ states: [Mini], _ m: Int, _ points: inout [Int]) {
        if left == 0 {
            // points: b1, r, b2 per poll; the last b2 must be m.
            guard points.last == m else { return }
            emit(states, points)
            return
        }
        for b1 in from...m {
            for r in b1...m {
                for b2 in r...m {
                    points += [b1, r, b2]
                    place(left - 1, from: b2, states, m, &points)
                    points.removeLast(3)
                }
            }
        }
    }

    mutating func emit(_ states: [Mini], _ points: [Int]) {
        var polls: [Observed.Poll] = []
        var prevA = 0, prevU = 0
        var slots = Array(repeating: Observed.Element(id: 0, len: 0), count: config.size)
        if let (b0, b0a) = startAt {
            prevU = states[b0].used; prevA = states[b0a].avail
            slots = states[b0].usedSlots.map { Observed.Element(id: $0.id, len: $0.len) }
            polls.append(Observed.Poll(avail: prevA, used: prevU, prevUsed: prevU, exposures: [], elements: []))
        }
        let unknown = prevA - prevU
        for k in stride(from: 0, to: points.count, by: 3) {
            let (b1, r, b2) = (points[k], points[k + 1], points[k + 2])
            let a = states[b1].avail, u = states[b2].used
            // Each entry read is the value of its position (the recorder's lap guard makes sure of
            // that, see SnapshotGuard): the head exposed there, the element written there, or, where
            // none was (an IN_ORDER batch), what an earlier lap left in the slot.
            var exposures: [Observed.Exposure] = []
            var heads: [Int: Int] = [:]
            for p in prevA..<a {
                let h = states[b1].heads[p]
                heads[h, default: 0] += 1
                exposures.append(Observed.Exposure(pos: p, head: h, reads: states[r].walk(h).map { Observed.Read(index: $0.0, value: $0.1) }))
            }
            if heads.values.contains(where: { $0 > 1 }) { reusedWithinAPoll += 1 }
            let elements = (prevU..<u).map { states[b2].element(at: $0) }
            polls.append(Observed.Poll(avail: a, used: u, prevUsed: prevU, exposures: exposures, elements: elements.map { Observed.Element(id: $0.id, len: $0.len) }))
            prevA = a; prevU = u
        }
        observations.insert(Observed(initialSlots: slots, polls: polls, unknownAtStart: unknown))
    }
}

/// What the polls of one run read.
struct Observed: Hashable {
    struct Read: Hashable { var index: Int; var value: DVal }
    struct Exposure: Hashable {
        var pos: Int; var head: Int; var reads: [Read]
    }
    struct Element: Hashable { var id: Int; var len: Int }
    struct Poll: Hashable {
        var avail: Int; var used: Int; var prevUsed: Int
        var exposures: [Exposure]; var elements: [Element]
    }
    var initialSlots: [Element]
    var polls: [Poll]
    /// Buffers in flight when observation began (their heads unknown to the checker).
    var unknownAtStart = 0
}
