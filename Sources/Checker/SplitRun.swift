import Dispatch
import VirtioProtocol
import PolledSemantics
import TraceFormat

/// Where a finding or a note falls in the order the serial run makes them: at which event (`.max`:
/// at the end of the trace), in which part of that event's processing, and where within it.
/// A split run's merge sorts by it, then by share and by the share's own order.
public struct OrderKey: Comparable, Sendable {
    enum Stage: UInt8 {
        /// The header's findings, reported at the first event (or at the end of an empty trace).
        case header
        /// The disabled-TX drain's deadline findings at an event, by the vq they judge.
        case drain
        /// What the event itself was found to break, or noted, in the order it was found.
        case event
        // `finish`, in its order:
        case gaps, unobserved, legacyAtEnd, interrupts, kicks
    }
    let index: UInt64
    let stage: Stage
    let sub: UInt32
    init(_ index: UInt64, _ stage: Stage, _ sub: UInt32) { self.index = index; self.stage = stage; self.sub = sub }
    public static func < (a: OrderKey, b: OrderKey) -> Bool {
        (a.index, a.stage.rawValue, a.sub) < (b.index, b.stage.rawValue, b.sub)
    }
}

extension Checker {
    /// The part of a trace one checker of a split run judges (Specs/performance.md, "Splitting one
    /// trace across cores by vq"). Every share replays every control-plane event and every event
    /// that names no vq, so the device, the memory table, the workers and each ring's lifecycle are
    /// the serial run's in each; it judges the data plane of its own vqs only.
    public struct Share: Sendable, Equatable {
        /// Per vq: whether this share judges its data plane and reports its findings.
        public let owns: [Bool]
        /// Whether this share reports what concerns no vq (the header, device-wide control events).
        public let deviceWide: Bool
        public init(owns: [Bool], deviceWide: Bool) { self.owns = owns; self.deviceWide = deviceWide }
    }
}

/// How a trace is split for a run on several cores, decided by a first pass over its events.
public struct SplitPlan: Sendable {
    public let shares: [Checker.Share]
    public init(shares: [Checker.Share]) { self.shares = shares }

    /// Why a trace is checked in one piece. Each names a state the rules share between vqs, which a
    /// share would see only part of.
    public enum Serial: Error, Equatable, CustomStringConvertible {
        case unreadable
        /// Fewer than two vqs carry data-plane events (or one core was asked for).
        case oneVq
        /// Dirty logging: VHOST-LOG-BEFORE-USED reads marks `log_dirty` made on any vq.
        case dirtyLog
        /// An old-style polled trace: every control event closes the polls of every ring.
        case legacyPolls
        /// Indirect tables could exceed `Checker.indirectBudget`, which is over all rings.
        case indirectBudget
        /// Ring slots could exceed `Checker.slotBudget`, which is over all rings.
        case slotBudget

        public var description: String {
            switch self {
            case .unreadable: return "the trace could not be read through"
            case .oneVq: return "fewer than two vqs carry data-plane events"
            case .dirtyLog: return "dirty logging couples the vqs"
            case .legacyPolls: return "old-style polls are closed by every control event"
            case .indirectBudget: return "indirect tables could reach the budget over all rings"
            case .slotBudget: return "ring slots could reach the budget over all rings"
            }
        }
    }

    /// Events the plan reads to weigh the vqs (a share finds the couplings further on).
    public static let sample = 1 << 16

    /// Reads the first `sample` events of `reader` (1 MiB of trace) to place the vqs on at most
    /// `jobs` shares by their data-plane event counts (largest first, onto the least loaded share;
    /// vqs idle in the sample after them, one share after another). Traces with fewer than two busy
    /// vqs there, or a coupling (`Coupling`) there, are checked in one piece; a share that meets a
    /// coupling later stops, and the trace is checked in one piece then.
    public static func make(_ reader: TraceReader, jobs: Int, sample: Int = SplitPlan.sample) -> Result<SplitPlan, Serial> {
        let n = reader.header.queueCount
        var load = [Int](repeating: 0, count: n)
        var coupling = Coupling(reader.header)
        var serial: Serial?
        var left = sample
        do {
            try reader.forEach { e, _, _ in
                if let why = coupling.see(e) { serial = why; return false }
                if e.vq != TraceEvent.none, Int(e.vq) < n, e.kind.plane != .control { load[Int(e.vq)] += 1 }
                left -= 1
                return left > 0
            }
        } catch { return .failure(.unreadable) }
        if let serial { return .failure(serial) }
        let busy = (0..<n).filter { load[$0] > 0 }.sorted { (load[$0], $1) > (load[$1], $0) }
        let k = min(jobs, busy.count)
        guard k >= 2 else { return .failure(.oneVq) }
        var owns = [[Bool]](repeating: [Bool](repeating: false, count: n), count: k)
        var weight = [Int](repeating: 0, count: k)
        for q in busy {
            let s = weight.indices.min { weight[$0] < weight[$1] }!
            owns[s][q] = true
            weight[s] += load[q]
        }
        for (i, q) in (0..<n).filter({ load[$0] == 0 }).enumerated() { owns[i % k][q] = true }
        return .success(SplitPlan(shares: owns.indices.map { Checker.Share(owns: owns[$0], deviceWide: $0 == 0) }))
    }
}

/// What makes the rules share state between vqs, so that no share sees all of it: found event by
/// event, by the plan in its sample and by every share in the whole trace (each reads every event).
/// One definition for both.
public struct Coupling: Sendable {
    /// What an indirect descriptor event can add to `Checker.indirectBudget` at most: an entry
    /// described out of order (2) and the table it opens (`Checker.indirectTableCost`).
    static let indirectCostBound = 2 + Checker.indirectTableCost
    private let queueCount: Int
    private var indirect = 0
    /// Per vq, the largest size it had: a ring holds at most that many slots, once exact and once polled.
    private var largest: [Int]
    private var slotBound: Int

    public init(_ header: TraceHeader) {
        queueCount = header.queueCount
        largest = header.queueSizes.map { Int($0) }
        slotBound = 2 * largest.reduce(0, +)
    }

    /// Whether `e` couples the vqs (from here on, the run's budgets over all rings could be reached).
    public mutating func see(_ e: TraceEvent) -> SplitPlan.Serial? {
        switch e.kind {
        case .setLogBase, .logDirty: return .dirtyLog
        case .availIdx, .usedIdx: return e.isSampled ? .legacyPolls : nil
        case .indirectDesc, .packedIndirectDesc:
            indirect += 1
            return indirect * Self.indirectCostBound > Checker.indirectBudget ? .indirectBudget : nil
        case .setVringNum:
            guard e.vq != TraceEvent.none, Int(e.vq) < queueCount else { return nil }
            let q = Int(e.vq), size = Int(min(UInt64(1 << 16), e.p0))
            guard size > largest[q] else { return nil }
            slotBound += 2 * (size - largest[q])
            largest[q] = size
            return slotBound > Checker.slotBudget ? .slotBudget : nil
        default: return nil
        }
    }
}

/// One trace checked on several cores, split by vq: the same report as the serial run
/// (`CheckRun.check`), merged from each share's findings and notes in the serial run's order.
/// Falls back to the serial run where the plan refuses the trace, and where the shares' results
/// cannot be merged exactly (notes beyond the listed ones, shares stopping at different places).
public enum SplitRun {
    /// What one share found.
    struct ShareResult {
        /// The findings it reported, with their places in the serial order (with `all` every one,
        /// else the share's first of each rule).
        var kept: [(OrderKey, Finding)] = []
        /// Findings it made, reported or only counted.
        var counted = 0
        var error: TraceError?
        var events: UInt64 = 0
        var notes: [(OrderKey, String)] = []
        var unlisted = 0
        var resync: [(OrderKey, String)] = []
        var coverage = PolledCoverage()
        /// The share met a coupling (`Coupling`) and stopped.
        var coupled = false
    }

    /// - Parameter open: opens the trace afresh (each share reads it on its own).
    public static func check(open: @escaping @Sendable () throws -> TraceReader, path: String, profile: Profile? = nil, all: Bool = false,
                             retainAll: Bool? = nil, jobs: Int, onFinding: (Finding) -> Void = { _ in }) -> CheckReport {
        let retain = retainAll ?? all
        func serial() -> CheckReport {
            do { return CheckRun.check(reader: try open(), path: path, profile: profile, all: all, retainAll: retain, onFinding: onFinding) }
            catch { return CheckRun.check(path: path, profile: profile, all: all, retainAll: retain, onFinding: onFinding) }
        }
        // Every finding of a streamed `--all` is handed out as it is made; a merge would hold them all.
        guard jobs > 1, !(all && !retain), let first = try? open() else { return serial() }
        if let p = profile, !p.allows(first.header.layout) { return serial() }
        guard case .success(let plan) = SplitPlan.make(first, jobs: jobs) else { return serial() }
        return check(open: open, path: path, profile: profile, all: all, retainAll: retain, plan: plan, onFinding: onFinding) ?? serial()
    }

    /// The shares of `plan` run side by side and merged; nil where their results cannot be merged
    /// exactly (the serial run then settles it).
    public static func check(open: @escaping @Sendable () throws -> TraceReader, path: String, profile: Profile? = nil, all: Bool = false,
                             retainAll: Bool? = nil, plan: SplitPlan, onFinding: (Finding) -> Void = { _ in }) -> CheckReport? {
        guard let header = try? open().header else { return nil }
        let results = Slots<ShareResult>(count: plan.shares.count)
        DispatchQueue.concurrentPerform(iterations: plan.shares.count) { i in
            results.put(i, run(plan.shares[i], open: open, profile: profile, all: all))
        }
        return merge(results.all, path: path, profile: profile ?? header.profile, all: all, retain: retainAll ?? all, onFinding: onFinding)
    }

    /// Runs one share to the end of the trace (or the event the run stops at).
    static func run(_ share: Checker.Share, open: @Sendable () throws -> TraceReader, profile: Profile?, all: Bool) -> ShareResult {
        var out = ShareResult()
        let reader: TraceReader
        do { reader = try open() } catch {
            out.error = (error as? TraceError) ?? TraceError(offset: 0, "\(error)")
            return out
        }
        var checker = Checker(header: reader.header, profile: profile)
        checker.share = share
        var seen = Set<RuleID>()
        // As `CheckRun.check` keeps them, within the share: a later finding of a rule the share has
        // reported cannot come first in the merge, so it is only counted.
        func keep(_ f: Finding, _ key: OrderKey) -> Bool {
            out.counted += 1
            let first = seen.insert(f.rule).inserted
            if all || first { out.kept.append((key, f)) }
            return !all && first
        }
        do {
            if let (f, off) = try checker.run(reader, ordered: { keep($0, $1!) }) { throw TraceError(offset: off, f) }
            let fs = checker.finish()
            for (f, k) in zip(fs, checker.orderKeys) { _ = keep(f, k) }
        } catch let e as TraceError {
            out.error = e
        } catch {
            out.error = TraceError(offset: reader.offset, "\(error)")
        }
        out.coupled = checker.coupled != nil
        out.events = reader.index
        out.counted += checker.suppressedCount
        (out.notes, out.unlisted, out.resync) = checker.sharedNotes
        out.coverage = checker.polledCoverage
        return out
    }

    /// The serial run's report from the shares' results; nil where they cannot be merged exactly.
    static func merge(_ runs: [ShareResult], path: String, profile: Profile, all: Bool, retain: Bool,
                      onFinding: (Finding) -> Void) -> CheckReport? {
        // Notes beyond the listed ones are counted, not kept: their union cannot be recounted.
        guard runs.allSatisfy({ $0.unlisted == 0 && !$0.coupled }), runs.allSatisfy({ $0.error == runs[0].error && $0.events == runs[0].events })
        else { return nil }
        var report = CheckReport(path: path, profile: profile)
        report.error = runs[0].error
        report.events = runs[0].events
        // A note several shares made (at a control event each replays) counts once, where it was first made.
        var firstNoted: [String: (OrderKey, Int, Int)] = [:]
        for (s, r) in runs.enumerated() {
            for (i, (k, note)) in r.notes.enumerated() where firstNoted[note].map({ (k, s, i) < $0 }) ?? true {
                firstNoted[note] = (k, s, i)
            }
        }
        guard firstNoted.count <= Checker.notJudgedListed else { return nil }
        report.notJudged = firstNoted.sorted { $0.value < $1.value }.map(\.key)
        report.resyncNotes = Array(inOrder(runs.map(\.resync)).prefix(Checker.maxNotes))
        var seen = Set<RuleID>()
        for f in inOrder(runs.map(\.kept)) {
            let first = seen.insert(f.rule).inserted
            guard all || first else { continue }
            if first || retain { report.findings.append(f) }
            onFinding(f)
        }
        report.totalFindings = runs.reduce(0) { $0 + $1.counted }
        let c = runs.reduce(into: PolledCoverage()) { $0 += $1.coverage }
        if c.exposures + c.completions > 0 { report.polled = c }
        return report
    }

    /// The values of every share's list, by key, then share, then the share's own order.
    static func inOrder<T>(_ lists: [[(OrderKey, T)]]) -> [T] {
        lists.enumerated()
            .flatMap { s, l in l.enumerated().map { (key: $0.element.0, s: s, i: $0.offset, value: $0.element.1) } }
            .sorted { ($0.key, $0.s, $0.i) < ($1.key, $1.s, $1.i) }
            .map(\.value)
    }
}

/// Results written by concurrent workers, each into a slot of its own (distinct elements of one
/// buffer, so no lock is needed; `concurrentPerform` returns after every write).
private final class Slots<T>: @unchecked Sendable {
    private let slots: UnsafeMutableBufferPointer<T?>
    init(count: Int) {
        slots = .allocate(capacity: count)
        slots.initialize(repeating: nil)
    }
    deinit { slots.deinitialize(); slots.deallocate() }
    func put(_ i: Int, _ v: T) { slots[i] = v }
    var all: [T] { slots.map { $0! } }
}
