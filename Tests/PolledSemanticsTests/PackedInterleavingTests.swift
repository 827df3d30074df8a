import PolledSemantics
import Testing
import VirtioProtocol
import VirtqueueModel

/// The polled semantics of packed rings, checked against its definition on every small case, as
/// `InterleavingTests` does for split rings.
///
/// A tiny driver and device run every sequence of steps up to a length on packed rings of 1 to 4
/// descriptors (3: not a power of two): the driver makes lists of one or two descriptors available
/// (the first one's flags last), the device writes a used descriptor's id and len at its position
/// and, as a separate step, stores its flags (so a poll can read a body the device has begun to
/// overwrite), out of order or with IN_ORDER batches. Each run is observed by every placement of
/// up to two polls, each poll following the recorder contract (`Specs/model.md`, "Polled packed
/// rings"): the flags of the descriptors from the recorder's avail position at one moment, their
/// bodies at that moment or later, then the used descriptors at the device's position at a later
/// moment (matched to what it listed by buffer id, never trusting an id it may have read after the
/// device began to overwrite it where that changes where the next used descriptor goes; a used
/// descriptor it cannot match makes it read the avail side again, and if that does not help, or the
/// exposure at its avail position was overwritten before it read it, it writes a ring_gap). Then:
/// - every observation of a legal run gets no finding (soundness);
/// - every gap-free observation of a run with one illegal step that no legal run produces gets a
///   finding (the samples decide it, so the checker must), comparing what the contract lets a poll
///   know: a body read within the device's reach (`PackedSnapshotGuard.bodyCertain`) may be the
///   device's, so its id and len are left out of the comparison. Legal runs may use one buffer id
///   more than illegal ones, as a real driver has 2^16 (an uncertain id always has a legal reading).
@Suite struct PackedInterleavingTests {
    @Test("every legal packed run, polled at every set of points, gets no finding; every illegal run whose polls no legal run explains gets one",
          arguments: [
              PConfig(size: 1, steps: 6, polls: 2, inOrder: false, ids: [0, 1], values: [.plain, .writable], lists: false),
              PConfig(size: 2, steps: 5, polls: 2, inOrder: false, ids: [0, 1], values: [.plain, .writable], lists: true),
              PConfig(size: 3, steps: 5, polls: 2, inOrder: false, ids: [0, 1], values: [.plain], lists: true),
              PConfig(size: 3, steps: 5, polls: 2, inOrder: true, ids: [0, 1], values: [.plain], lists: true),
              PConfig(size: 4, steps: 5, polls: 2, inOrder: false, ids: [0, 1, 2], values: [.plain], lists: false),
              PConfig(size: 3, steps: 5, polls: 3, inOrder: false, ids: [0, 1], values: [.plain], lists: false),
              PConfig(size: 4, steps: 5, polls: 2, inOrder: false, ids: [0, 1], values: [.plain], lists: true),
              PConfig(size: 4, steps: 5, polls: 2, inOrder: true, ids: [0, 1], values: [.plain, .writable], lists: false),
          ])
    func polledPackedVerdictsMatchTheDefinition(_ config: PConfig) {
        let legal = PEnumeration(config, illegal: false)
        let illegal = PEnumeration(config, illegal: true, maxSteps: config.steps - 1)
        let explainable = Set(legal.observations.map(\.known))
        var flaggedLegal: [PObserved] = []
        for o in legal.observations where !judge(o, config).isEmpty { flaggedLegal.append(o) }
        for o in flaggedLegal.prefix(3) { print("FLAGGED LEGAL \(config): \(o) -> \(judge(o, config).joined(separator: "; ")) RUN \(legal.witness[o] ?? "?")") }
        #expect(flaggedLegal.isEmpty, "\(flaggedLegal.count) explainable observations were flagged, e.g. \(flaggedLegal.first.map { "\($0) -> " + judge($0, config).joined(separator: "; ") } ?? "")")

        var decided = 0, caught = 0
        var missed: [PObserved] = []
        var rules: [String: Int] = [:]
        for o in illegal.observations where !o.gap && !explainable.contains(o.known) {
            decided += 1
            let found = judge(o, config)
            if found.isEmpty { missed.append(o) } else { caught += 1 }
            if let first = found.first { rules[String(first.prefix { $0 != ":" }), default: 0] += 1 }
        }
        for o in missed.prefix(3) { print("MISSED \(config): \(o) RUN \(illegal.witness[o] ?? "?")") }
        #expect(missed.isEmpty, "\(missed.count) of \(decided) decided illegal observations were not flagged, e.g. \(missed.first.map(\.description) ?? "")")
        // The enumeration must exercise what it claims: decided illegal runs, laps, torn reads.
        // On a ring of one descriptor every body a poll reads is within the device's reach: the polls
        // decide nothing there, and the case checks soundness alone.
        #expect(decided > 0 || config.size == 1)
        // (A ring reuses a slot within the run only if the run has the steps for it.)
        #expect(legal.lapped > 0 || 2 * config.size > config.steps)
        #expect(legal.torn > 0 || config.size == 1)
        print("polled packed \(config): \(legal.observations.count) explainable observations (poll placements reading a body the device had begun to overwrite: \(legal.torn); after a slot was reused: \(legal.lapped)), \(illegal.observations.count) of runs with one illegal step, \(decided) decided, \(caught) caught (first finding: \(rules.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))")
    }

    func judge(_ o: PObserved, _ c: PConfig) -> [String] {
        var r = PolledPackedRing(size: UInt32(c.size), base: .start, features: RingFeatures(inOrder: c.inOrder), deviceWriteAhead: 0)
        var out: [String] = []
        var ref: UInt64 = 0
        for p in o.polls {
            for rd in p.reads {
                if let b = rd.body {
                    _ = r.observe(.packedDescriptor(slot: UInt16(rd.slot), PackedDescriptor(addr: 0x1000, len: UInt32(b.len), id: UInt16(b.id))), ref: ref)
                }
                _ = r.observe(.packedFlags(slot: UInt16(rd.slot), PackedRing.Flags(rawValue: rd.flags)), ref: ref)
                ref += 1
            }
            for u in p.completions {
                _ = r.observe(.packedUsed(slot: UInt16(u.slot), id: UInt16(u.id), len: UInt32(u.len)), ref: ref)
                _ = r.observe(.packedUsedFlags(slot: UInt16(u.slot), PackedRing.Flags(rawValue: u.flags)), ref: ref)
                ref += 1
            }
            let outcome = r.observe(.poll(avail: p.availPos, used: p.usedPos), ref: ref)!
            ref += 1
            out += outcome.violations.map { "\($0.violation)" }
            if let a = outcome.anomaly { out.append("anomaly: \(a)") }
        }
        if o.gap { r.gap() }
        r.finish()
        return out
    }
}

// MARK: the tiny packed ring

struct PConfig: CustomStringConvertible, Sendable {
    var size: Int
    var steps: Int
    var polls: Int
    var inOrder: Bool
    /// Buffer ids the driver may use.
    var ids: [Int]
    /// Descriptor contents.
    var values: [PVal]
    /// Whether lists of two descriptors are made available too.
    var lists: Bool
    var description: String { "N=\(size) steps<=\(steps) polls<=\(polls) \(inOrder ? "IN_ORDER" : "any order") ids \(ids) values \(values)\(lists ? " with lists of 2" : "")" }
}

enum PVal: Int, Hashable, Sendable, CustomStringConvertible {
    case plain       // device-readable, 16 bytes
    case writable    // device-writable, 16 bytes
    case bigWritable // device-writable, 4096 bytes (legal runs only: a length a body read may hide)
    var description: String { ["plain", "writable", "bigWritable"][rawValue] }
    var len: Int { self == .bigWritable ? 4096 : 16 }
    var write: Bool { self != .plain }
}

let pAvail: UInt16 = 0x80, pUsed: UInt16 = 0x8000, pNext: UInt16 = 1, pWrite: UInt16 = 2

/// One descriptor slot: the flags and what the body's id and len fields hold.
struct PSlot: Hashable { var flags: UInt16 = 0; var id = 0; var len = 0 }
struct PBuf: Hashable { var start: Int; var count: Int; var id: Int; var writable: Int }

struct PMini: Hashable {
    var slots: [PSlot]
    /// The driver's and the device's positions.
    var a = 0, u = 0
    var inFlight: [PBuf] = []
    /// The device has written id and len at its position and not yet stored the flags.
    var begunId: Int?
    var begunLen = 0
    /// A list whose first descriptor was made available before its second (at this position).
    var pendingTail: Int?
    var pendingTailFlags: UInt16 = 0
    var pendingBuf: PBuf?

    init(size: Int) { slots = Array(repeating: PSlot(), count: size) }
    var n: Int { slots.count }
    func slot(_ p: Int) -> Int { p % n }
    func wrap(_ p: Int) -> Bool { (p / n) % 2 == 0 }
    func availFlags(_ p: Int) -> UInt16 { wrap(p) ? pAvail : pUsed }
    func usedFlags(_ p: Int) -> UInt16 { wrap(p) ? pAvail | pUsed : 0 }
    func isAvail(_ f: UInt16, _ p: Int) -> Bool { (f & pAvail != 0) == wrap(p) && (f & pUsed != 0) != wrap(p) }
    func isUsed(_ f: UInt16, _ p: Int) -> Bool { (f & pAvail != 0) == wrap(p) && (f & pUsed != 0) == wrap(p) }
}

enum PStep { case expose(id: Int, vals: [PVal]), headFirst(id: Int, vals: [PVal]), storeTail, begin(id: Int, len: Int), finish }

struct PEnumeration {
    var observations = Set<PObserved>()
    var witness: [PObserved: String] = [:]
    var trail: [String] = []
    /// Runs observed past a point where a slot had been reused (a lap), and observations with a body
    /// read after the device had begun to write a used descriptor there.
    var lapped = 0
    var torn = 0
    let config: PConfig

    /// Buffer ids and contents the driver uses: legal runs one id more, and long writable buffers
    /// where writable ones are used (see the suite's comment).
    let ids: [Int]
    let values: [PVal]

    init(_ config: PConfig, illegal: Bool, maxSteps: Int? = nil) {
        self.config = config
        ids = illegal ? config.ids : config.ids + [(config.ids.max() ?? 0) + 1]
        values = illegal || !config.values.contains(.writable) ? config.values : config.values + [.bigWritable]
        var states = [PMini(size: config.size)]
        run(&states, illegalLeft: illegal ? 1 : 0, maxSteps: maxSteps ?? config.steps)
    }

    mutating func run(_ states: inout [PMini], illegalLeft: Int, maxSteps: Int) {
        if illegalLeft == 0 { observe(states) }
        guard states.count - 1 < maxSteps else { return }
        let s = states.last!
        for (step, legal) in steps(s) {
            if !legal && illegalLeft == 0 { continue }
            states.append(apply(step, to: s))
            trail.append("\(step)")
            run(&states, illegalLeft: legal ? illegalLeft : 0, maxSteps: maxSteps)
            trail.removeLast()
            states.removeLast()
        }
    }

    func writable(_ vals: [PVal]) -> Int { vals.filter(\.write).reduce(0) { $0 + $1.len } }

    func steps(_ s: PMini) -> [(PStep, Bool)] {
        var out: [(PStep, Bool)] = []
        if s.pendingTail != nil {
            out.append((.storeTail, true))
        } else {
            var shapes: [[PVal]] = values.map { [$0] }
            if config.lists { for x in values { for y in values { shapes.append([x, y]) } } }
            for id in ids {
                for vals in shapes where s.a + vals.count <= s.u + s.n {
                    let idFree = !s.inFlight.contains { $0.id == id }
                    let ordered = !(vals.count == 2 && vals[0].write && !vals[1].write)
                    out.append((.expose(id: id, vals: vals), idFree && ordered))
                    if vals.count == 2 && idFree && ordered { out.append((.headFirst(id: id, vals: vals), false)) }
                }
            }
        }
        if s.begunId == nil && s.u < s.a {
            for id in ids {
                if let b = s.inFlight.first(where: { $0.id == id }) {
                    // Any length up to the writable bytes is legal (including those the illegal runs
                    // use one byte past a short buffer); one more is not.
                    for len in Set([0, 16, 17, 32, 33, b.writable]) where len <= b.writable { out.append((.begin(id: id, len: len), true)) }
                    if b.writable > 0 && b.writable < 4096 { out.append((.begin(id: id, len: b.writable + 1), false)) }
                } else {
                    out.append((.begin(id: id, len: 0), false))
                }
            }
        }
        if s.begunId != nil { out.append((.finish, true)) }
        return out
    }

    func apply(_ step: PStep, to s0: PMini) -> PMini {
        var s = s0
        switch step {
        case .expose(let id, let vals), .headFirst(let id, let vals):
            let head = s.a
            var headFirst = false
            if case .headFirst = step { headFirst = true }
            for (i, v) in vals.enumerated() {
                let p = head + i
                var f = s.availFlags(p)
                if i < vals.count - 1 { f |= pNext }
                if v.write { f |= pWrite }
                s.slots[s.slot(p)].id = id
                s.slots[s.slot(p)].len = v.len
                if headFirst && i == 1 { s.pendingTailFlags = f } else { s.slots[s.slot(p)].flags = f }
            }
            let b = PBuf(start: head, count: vals.count, id: id, writable: writable(vals))
            if headFirst {
                s.pendingTail = head + 1
                s.pendingBuf = b
            } else {
                s.a += vals.count
                s.inFlight.append(b)
            }
        case .storeTail:
            s.slots[s.slot(s.pendingTail!)].flags = s.pendingTailFlags
            s.a += 2
            s.inFlight.append(s.pendingBuf!)
            s.pendingTail = nil; s.pendingBuf = nil; s.pendingTailFlags = 0
        case .begin(let id, let len):
            s.slots[s.slot(s.u)].id = id
            s.slots[s.slot(s.u)].len = len
            s.begunId = id
            s.begunLen = len
        case .finish:
            let id = s.begunId!
            var f = s.usedFlags(s.u)
            if s.begunLen > 0 { f |= pWrite }
            s.slots[s.slot(s.u)].flags = f
            var span = 0
            if config.inOrder {
                if let k = s.inFlight.firstIndex(where: { $0.id == id }) {
                    span = s.inFlight[0...k].reduce(0) { $0 + $1.count }
                    s.inFlight.removeFirst(k + 1)
                }
            } else if let k = s.inFlight.firstIndex(where: { $0.id == id }) {
                span = s.inFlight[k].count
                s.inFlight.remove(at: k)
            }
            s.u += max(span, 1)
            if s.u > s.a { s.u = s.a }
            s.begunId = nil
        }
        return s
    }

    // MARK: observation by the recorder contract

    mutating func observe(_ states: [PMini]) {
        let m = states.count - 1
        var points: [Int] = []
        for polls in 1...config.polls { place(polls, from: 0, states, m, &points) }
    }

    mutating func place(_ left: Int, from: Int, _ states: [PMini], _ m: Int, _ points: inout [Int]) {
        if left == 0 {
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

    struct Rec {
        var a = 0, u = 0
        /// What it listed and has not seen used; `maybeTorn`: the id was read where the device may
        /// already have written (every list of the current poll, until the poll's used position is known).
        var inFlight: [(start: Int, count: Int, readId: Int, maybeTorn: Bool)] = []

        /// Which listed buffers a used descriptor naming `id` retires (nil: it cannot tell), and
        /// whether the answer rests on an id it may have read torn.
        func match(_ id: Int, inOrder: Bool) -> (index: Int, torn: Bool)? {
            guard let i = matchIndex(id, inOrder: inOrder) else { return nil }
            return (i, inFlight[i].maybeTorn)
        }
        func matchIndex(_ id: Int, inOrder: Bool) -> Int? {
            let cands = inFlight.indices.filter { inFlight[$0].readId == id }
            if inOrder {
                // The batch ends at the first buffer with that id; a possibly torn id there is
                // skipped when a certain one follows, and undecidable when another possibly torn one does.
                for (k, i) in cands.enumerated() {
                    if !inFlight[i].maybeTorn { return i }
                    let later = cands[(k + 1)...]
                    if later.contains(where: { !inFlight[$0].maybeTorn }) { continue }
                    return later.isEmpty ? i : nil
                }
                return nil
            }
            let certain = cands.filter { !inFlight[$0].maybeTorn }
            if certain.count == 1 { return certain[0] }
            if !certain.isEmpty || cands.count != 1 { return nil }
            // A possibly torn id: trusted only where the choice cannot move the used position.
            let torn = inFlight.filter(\.maybeTorn)
            return torn.allSatisfy({ $0.count == inFlight[cands[0]].count }) ? cands[0] : nil
        }
    }

    mutating func emit(_ states: [PMini], _ points: [Int]) {
        var rec = Rec()
        var polls: [PObserved.Poll] = []
        var gap = false
        var sawTorn = false, sawLap = false, excluded = false
        let n = config.size
        func enc(_ p: Int) -> UInt16 { UInt16(p % n) | ((p / n) % 2 == 0 ? 0x8000 : 0) }
        for k in stride(from: 0, to: points.count, by: 3) {
            let (b1, r, b2) = (points[k], points[k + 1], points[k + 2])
            var reads: [PObserved.Read] = [], used: [PObserved.Used] = []
            // The avail side: flags at t1, bodies at tr.
            func scanAvail(_ t1: Int, _ tr: Int) -> Bool {
                let s1 = states[t1], sr = states[tr]
                while rec.a < rec.u + n {
                    let pos = rec.a
                    let f = s1.slots[s1.slot(pos)].flags
                    if s1.isUsed(f, pos) { return false }   // overwritten by a used descriptor before it was read
                    guard s1.isAvail(f, pos) else {
                        // The recorder's lap assumption: the driver has not made p + N available before
                        // the recorder read p (a lapped slot looks like one not yet made available).
                        if s1.a > pos + n { excluded = true }
                        return true
                    }
                    var p = pos
                    var list: [PObserved.Read] = []
                    while true {
                        if p >= rec.u + n { return true }   // runs past what the recorder may read
                        let fl = s1.slots[s1.slot(p)].flags
                        if !s1.isAvail(fl, p) {
                            if s1.isUsed(fl, p) { return false }
                            if s1.a > p + n { excluded = true }
                            reads += list + [PObserved.Read(pos: p, slot: s1.slot(p), body: nil, flags: fl)]
                            return true
                        }
                        let body = sr.slots[sr.slot(p)]
                        if sr.begunId != nil && sr.slot(sr.u) == sr.slot(p) && body != s1.slots[s1.slot(p)] { sawTorn = true }
                        list.append(PObserved.Read(pos: p, slot: s1.slot(p), body: PObserved.Body(id: body.id, len: body.len), flags: fl))
                        p += 1
                        if fl & pNext == 0 { break }
                    }
                    reads += list
                    rec.inFlight.append((pos, p - pos, list.last!.body!.id, true))
                    rec.a = p
                }
                return true
            }
            if !scanAvail(b1, r) { gap = true; break }
            // The used side at t2.
            let s2 = states[b2]
            var rescanned = false
            while !rec.inFlight.isEmpty {
                let q = rec.u
                let sl = s2.slots[s2.slot(q)]
                if s2.isUsed(sl.flags, q) {
                    var span: Int?
                    var m = rec.match(sl.id, inOrder: config.inOrder)
                    if let mm = m, mm.torn, !rescanned {
                        // Before trusting an id it may have read torn: the buffer the device used may
                        // have been made available after the avail side was read.
                        rescanned = true
                        if !scanAvail(b2, b2) { gap = true; break }
                        m = rec.match(sl.id, inOrder: config.inOrder)
                    }
                    if let (i, _) = m {
                        if config.inOrder {
                            span = rec.inFlight[0...i].reduce(0) { $0 + $1.count }
                            rec.inFlight.removeFirst(i + 1)
                        } else {
                            span = rec.inFlight[i].count
                            rec.inFlight.remove(at: i)
                        }
                    }
                    guard let sp = span else {
                        if !rescanned {
                            rescanned = true
                            if !scanAvail(b2, b2) { gap = true; break }
                            continue
                        }
                        gap = true; break
                    }
                    rescanned = false
                    // The recorder's lap guard on the used side (`PackedSnapshotGuard.usedAtRisk`): if
                    // the driver may have written a body as far as q + N (the rest of a list goes
                    // before its first descriptor's flags), the body read may be the driver's next
                    // lap. Here the guard knows how far the driver wrote; a recorder assumes a bound.
                    let written = s2.pendingTail != nil ? s2.a + 1 : s2.a - 1
                    if written >= q + n { gap = true; break }
                    used.append(PObserved.Used(slot: s2.slot(q), id: sl.id, len: sl.len, flags: sl.flags))
                    rec.u += sp
                } else if (sl.flags & pAvail != 0) != s2.wrap(q) {
                    sawLap = true
                    gap = true; break   // the slot was used and reused before the recorder read it
                } else {
                    break
                }
            }
            if gap { break }
            // Now the poll's used position bounds where the device could have written: ids read
            // below it plus one may be the device's.
            for k in rec.inFlight.indices where rec.inFlight[k].maybeTorn {
                rec.inFlight[k].maybeTorn = rec.inFlight[k].start + rec.inFlight[k].count - 1 < rec.u + 1
            }
            polls.append(PObserved.Poll(reads: reads, completions: used, availPos: enc(rec.a), usedPos: enc(rec.u), usedAt: rec.u))
        }
        if excluded { return }
        if states.contains(where: { $0.u >= n }) { sawLap = true }
        if sawLap { lapped += 1 }
        if sawTorn { torn += 1 }
        let o = PObserved(polls: polls, gap: gap)
        if observations.insert(o).inserted { witness[o] = trail.joined(separator: ", ") + " @ \(points)" }
    }
}

/// What the polls of one packed run read.
struct PObserved: Hashable, CustomStringConvertible {
    struct Body: Hashable { var id: Int; var len: Int }
    struct Read: Hashable { var pos: Int; var slot: Int; var body: Body?; var flags: UInt16 }
    struct Used: Hashable { var slot: Int; var id: Int; var len: Int; var flags: UInt16 }
    struct Poll: Hashable { var reads: [Read]; var completions: [Used]; var availPos: UInt16; var usedPos: UInt16; var usedAt: Int }
    var polls: [Poll]
    var gap: Bool

    /// What the recorder contract lets a poll know: bodies read within the device's reach (the
    /// used position the poll found, plus one) are left out.
    var known: PObserved {
        var o = self
        for k in o.polls.indices {
            for j in o.polls[k].reads.indices where o.polls[k].reads[j].body != nil && o.polls[k].reads[j].pos < o.polls[k].usedAt + 1 {
                o.polls[k].reads[j].body = Body(id: -1, len: -1)
            }
        }
        return o
    }

    var description: String {
        var out: [String] = []
        for p in polls {
            var reads: [String] = []
            for r in p.reads {
                var t = "[s\(r.slot) \(PackedRing.Flags(rawValue: r.flags))"
                if let b = r.body { t += " id\(b.id) len\(b.len)" }
                reads.append(t + "]")
            }
            var done: [String] = []
            for u in p.completions { done.append("(s\(u.slot) id\(u.id) len\(u.len) \(PackedRing.Flags(rawValue: u.flags)))") }
            let head = "poll(avail " + String(p.availPos, radix: 16) + " used " + String(p.usedPos, radix: 16) + ": "
            out.append(head + reads.joined(separator: " ") + " | " + done.joined(separator: " ") + ")")
        }
        return out.joined(separator: " ") + (gap ? " GAP" : "")
    }
}
