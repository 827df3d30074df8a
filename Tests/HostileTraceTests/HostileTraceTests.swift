import Foundation
import Testing
import VirtioProtocol
import TraceFormat
import Checker
@testable import TraceTools
@testable import VirtqueueModel

/// Hostile traces: each case a trace (or a value in one) that once made a tool trap, hang or take
/// unbounded memory, and what it gets now. `Specs/security.md` "Hostile traces" lists them.
@Suite struct HostileTraceTests {
    static func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// A committed regression trace is exactly its text source, compiled.
    static func compiledSource(_ name: String) throws -> [UInt8] {
        let (h, ev) = try TextForm.parse(String(contentsOfFile: Regressions.trace(name + ".txt"), encoding: .utf8))
        return TraceBytes.encode(header: h, events: ev)
    }

    // MARK: values from a file are converted totally

    @Test("a control result of -32768 renders (negating Int16.min trapped check and dump)",
          arguments: [Int16.min, Int16.min + 1, -16, -1, 0, 1, Int16.max])
    func extremeResultsRender(_ r: Int16) throws {
        let e = TraceEvent.control(.setVringNum, vq: 0, value: 8, result: r)
        let text = TextForm.render(event: e)
        let (_, back) = try TextForm.parse("conformance-trace 1\nprofile vhost-user\nqueues 8\nevents\n" + text + "\n")
        #expect(back == [e], "\(text)")
    }

    @Test("result-int16-min.trace: check reports the finding whose context shows result=-32768; dump round-trips")
    func resultInt16MinTrace() throws {
        let path = Regressions.trace("result-int16-min.trace")
        #expect(try Self.bytes(path) == Self.compiledSource("result-int16-min.trace"))
        let check = try Tools.run("conformance", ["check", path])
        #expect(check.clean && check.status == 1)
        #expect(check.out.contains("[VHOST-OWNER-FIRST]") && check.out.contains("set_owner result=-32768"), "\(check.out)")
        for format in ["json", "junit"] {
            let r = try Tools.run("conformance", ["check", "--all", "--format", format, path])
            #expect(r.clean && r.status == 1 && r.out.contains("set_owner result=-32768"))
        }
        let dump = try Tools.run("conformance", ["dump", path])
        #expect(dump.clean && dump.status == 0 && dump.out.contains("set_owner result=-32768"))
        let (h, ev) = try TextForm.parse(dump.out)
        #expect(TraceBytes.encode(header: h, events: ev) == (try Self.bytes(path)))
    }

    @Test("compile: an integer beyond Int64 is a FILE:LINE error with exit 2, not a trap")
    func compileBeyondInt64() throws {
        let src = Regressions.trace("compile-result-beyond-int64.trace.txt")
        let r = try Tools.run("conformance", ["compile", src, "-o", Tools.temp("beyond.trace")])
        #expect(!r.signaled && r.status == 2)
        #expect(r.err.contains("compile-result-beyond-int64.trace.txt:9: result '-9223372036854775808'"), "\(r.err)")
    }

    @Test("text form: every out-of-range number names its line", arguments: [
        "set_owner result=-9223372036854775808", "set_owner result=-9223372036854775809", "set_owner result=-18446744073709551615",
        "set_owner result=-18446744073709551616", "set_owner result=99999999999999999999", "set_owner result=32768",
        "set_owner result=-32769", "set_owner result=--1", "set_owner result=-0x8001", "set_vring_num vq=0 num=18446744073709551616",
        "kick vq=0 t=18446744073709551616", "desc vq=0 idx=0 addr=0x10000000000000000", "desc vq=0 idx=0 len=4294967296",
        "avail_idx vq=0 idx=65536", "kick vq=18446744073709551615", "used_idx vq=0 worker=65535 idx=1",
    ])
    func outOfRangeNumbers(_ line: String) {
        let text = "conformance-trace 1\nprofile vhost-user\nqueues 8\nevents\n" + line + "\n"
        #expect(throws: TraceError.self) { try TextForm.parse(text) }
        do { _ = try TextForm.parse(text) } catch let e as TraceError { #expect(e.line == 5) } catch { Issue.record("\(error)") }
    }

    @Test("compile streams: every bundled text trace compiles to its committed binary, line by line")
    func compileStreamsTheCorpus() throws {
        let fm = FileManager.default
        var n = 0
        for d in ["good", "bad"] {
            let dir = Regressions.traces.appendingPathComponent(d)
            for name in try fm.contentsOfDirectory(atPath: dir.path).sorted() where name.hasSuffix(".trace.txt") {
                let src = dir.appendingPathComponent(name).path, out = Tools.temp("c-\(name).trace")
                try TextForm.compile(input: src, output: out)
                #expect(try Self.bytes(out) == Self.bytes(String(src.dropLast(4))), "\(name)")
                try? fm.removeItem(atPath: out)
                n += 1
            }
        }
        #expect(n >= 40)
    }

    @Test("compile: invalid UTF-8 and over-long lines name their line, and leave no output file", arguments: [
        ("invalid-utf8", Array("conformance-trace 1\nprofile vhost-user\nqueues 8\nevents\nkick vq=0\n".utf8) + [0xC3, 0x28, 0x0A], 6),
        ("long-line", Array("conformance-trace 1\nprofile vhost-user\nqueues 8\nevents\nkick vq=0\n# ".utf8) + Array(repeating: 0x41, count: (1 << 20) + 70_000), 6),
    ])
    func compileRefusesAndCleansUp(_ c: (String, [UInt8], Int)) throws {
        let src = Tools.temp("\(c.0).trace.txt"), out = Tools.temp("\(c.0).trace")
        try Data(c.1).write(to: URL(fileURLWithPath: src))
        defer { try? FileManager.default.removeItem(atPath: src) }
        let r = try Tools.run("conformance", ["compile", src, "-o", out])
        #expect(!r.signaled && r.status == 2 && r.err.contains("\(c.0).trace.txt:\(c.2): "), "\(r.err.prefix(300))")
        #expect(!FileManager.default.fileExists(atPath: out), "a half-written trace was left behind")
    }

    @Test("text form: CRLF line ends parse like LF ones (a CRLF file was one long line)")
    func crlf() throws {
        let src = try String(contentsOf: Regressions.traces.appendingPathComponent("good/indirect.trace.txt"), encoding: .utf8)
        let crlf = src.replacingOccurrences(of: "\n", with: "\r\n")
        let (a, ea) = try TextForm.parse(src), (b, eb) = try TextForm.parse(crlf)
        #expect(a == b && ea == eb)
    }

    @Test("stats: a huge rate (huge timestamps one nanosecond apart) is printed, not converted to a trapping integer")
    func statsHugeRate() throws {
        // 282,000 used.idx advances of 65535 buffers within 1 ns: 1.8e19 buffers per second, more than a UInt64.
        let h = TraceHeader(profile: .vhostUser, flags: [.preset], queueSizes: [256, 256])
        var events: [TraceEvent] = []
        var idx: UInt16 = 0
        for i in 0..<282_000 {
            idx = idx &+ 65535
            events.append(.usedIdx(vq: 0, idx: idx, t: i == 0 ? UInt64.max - 1 : UInt64.max))
        }
        let path = Tools.temp("huge-rate.trace")
        try Data(TraceBytes.encode(header: h, events: events)).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try Tools.run("conformance", ["stats", path])
        #expect(r.clean && r.status == 0, "\(r.err)")
        #expect(r.out.contains("total buffers used 18480870000, 1.84808") && r.out.contains("e+19 per second"), "\(r.out)")
        let j = try Tools.run("conformance", ["stats", "--format", "json", path])
        #expect(j.clean && (try? JSONSerialization.jsonObject(with: Data(j.out.utf8))) != nil)
    }

    @Test("stats: decimals and rates of any Double", arguments: [0, 1e-9, 1e15, 1e20, 1e300, Double.infinity, -Double.infinity, Double.nan])
    func totalFormatting(_ v: Double) {
        #expect(!String(format3: v).isEmpty)
        #expect(!String(wholeNumber: v).isEmpty)
    }

    @Test("stats: (worker, vq) lists stop at their budget and say so, instead of growing with the trace")
    func statsWorkerQueueBudget() {
        let q = 32748
        let header = TraceHeader(profile: .vhostUser, flags: [.preset], queueSizes: Array(repeating: 8, count: q))
        #expect(TraceStats(header: header).workerQueueBudget == TraceStats.workerQueueBudget)
        var s = TraceStats(header: header, workerQueueBudget: 50_000)
        let n = 50_100
        for i in 0..<n { s.add(TraceEvent(.serviceBegin, vq: UInt16(i % q), worker: UInt16(i / q))) }
        #expect(s.workerQueuePairs == 50_000 && s.queueListsTruncated)
        #expect(s.text().contains("vq lists truncated") && s.json().contains("\"queueListsTruncated\":true"))
        #expect(s.events == UInt64(n))
    }

    // MARK: memory budgets

    @Test("indirect-far-entries.trace: tables named by their far end cost what was described (1 GiB before), and are still judged")
    func indirectFarEntriesTrace() throws {
        let path = Regressions.trace("indirect-far-entries.trace")
        #expect(try Self.bytes(path) == Self.compiledSource("indirect-far-entries.trace"))
        // 400 MB of address space: enough for the checker, not for a MiB per event.
        let r = try Tools.shell("ulimit -v 400000; exec \"$0\" check \"$1\"", try Tools.path("conformance"), path)
        #expect(r.clean && r.status == 1, "\(r.status) \(r.err)")
        #expect(r.out.contains("[VQ-DRIVER-OWNERSHIP]") && r.out.contains("1024 finding(s)"), "\(r.out.suffix(500))")
        let (h, ev) = try TextForm.parse(String(contentsOfFile: Regressions.trace("indirect-far-entries.trace.txt"), encoding: .utf8))
        var c = Checker(header: h)
        for (i, e) in ev.enumerated() { _ = c.process(e, index: UInt64(i), offset: UInt64(40 * i)) }
        #expect(c.indirectHeldCost <= 1024 * (2 + Checker.indirectTableCost))
    }

    @Test("indirect tables: one out-of-order entry costs one entry, in-order entries stay dense, reads are unchanged")
    func indirectTableRepresentation() {
        var t = IndirectTable()
        t.set(65535, Descriptor(len: 7))
        #expect(t.cost == 2 && t.described == 1 && t[65535].len == 7 && t[0] == .zero && t[70000] == .zero)
        for j in (0..<20).reversed() { t.set(UInt16(j), Descriptor(len: UInt32(j))) }
        #expect(t.described == 21 && t.cost == 20 + 2 && (0..<20).allSatisfy { t[$0].len == UInt32($0) })
        var dense = IndirectTable()
        for j in 0..<100 { dense.set(UInt16(j), Descriptor(len: 1)) }
        #expect(dense.cost == 100 && dense.described == 100)
    }

    /// A hostile driver's single avail.idx store exposes a whole ring of looping chains at once.
    /// Two costs were quadratic here: joining each chain's findings by copying (a hostile
    /// interposed capture once took 20 minutes), and walking each looping chain's buffers to N
    /// steps (8.7 s for this event in a release build). The time limit is a hang guard, not a
    /// speed target: judged linearly the event takes a fraction of a second.
    @Test("one publication exposing 32768 looping chains reports every one, in linear time",
          .timeLimit(.minutes(1)))
    func onePublicationExposingAWholeRingOfBadChains() {
        let n = 32768
        let header = TraceHeader(profile: .vhostUser, flags: [.preset], features: 0, queueSizes: [UInt16(n), UInt16(n)])
        var c = Checker(header: header)
        var i: UInt64 = 0
        func feed(_ e: TraceEvent) -> [Finding] { defer { i += 1 }; return c.process(e, index: i, offset: 40 * i) }
        for h in 0..<n { _ = feed(.desc(vq: 1, index: UInt16(h), addr: 0x1000, len: 64, flags: .next, next: UInt16(h))) }
        for h in 0..<n { _ = feed(.availEntry(vq: 1, pos: UInt16(h), head: UInt16(h))) }
        let found = feed(.availIdx(vq: 1, idx: UInt16(n)))
        #expect(found.count == n && found.allSatisfy { $0.rule == .vqChainLoop },
                "\(found.count) findings, rules \(Set(found.map(\.rule.rawValue)).sorted())")
    }

    /// avail.idx jumping by 65535 on a ring of 64 (VQ-INFLIGHT): positions a queue size apart share
    /// a slot, so the publication exposes at most 64 chains and each is judged once. Judging every
    /// position made the same chain's findings come 1024 times, and a hostile relay capture of
    /// 44,500 events took 11.6 s to check (0.1 s now).
    @Test("a publication jumping past the queue size judges each of its N chains once")
    func jumpPastTheQueueSizeJudgesEachChainOnce() {
        let header = TraceHeader(profile: .vhostUser, flags: [.preset], features: 0, queueSizes: [64, 64])
        var c = Checker(header: header)
        var i: UInt64 = 0
        func feed(_ e: TraceEvent) -> [Finding] { defer { i += 1 }; return c.process(e, index: i, offset: 40 * i) }
        // Device-writable buffers on a transmit queue: one framing finding per chain exposed.
        for h in 0..<64 { _ = feed(.desc(vq: 1, index: UInt16(h), addr: 0x1000, len: 64, flags: .write)) }
        for h in 0..<64 { _ = feed(.availEntry(vq: 1, pos: UInt16(h), head: UInt16(h))) }
        let found = feed(.availIdx(vq: 1, idx: 65535))
        let perRule = Dictionary(grouping: found, by: \.rule).mapValues(\.count)
        #expect(perRule[.vqInflight] == 1, "\(perRule)")
        #expect(perRule.values.allSatisfy { $0 <= 64 } && found.count > 1, "\(perRule)")
    }

    @Test("tables the device owns past the budget over all rings are refused (exit 2 at that event), never half-judged")
    func indirectBudgetRefuses() {
        let header = TraceHeader(profile: .vhostUser, flags: [.preset], features: FeatureBit.indirectDesc.mask, queueSizes: [64, 64])
        var c = Checker(header: header, indirectBudget: 2000)
        var i: UInt64 = 0
        func feed(_ e: TraceEvent) { _ = c.process(e, index: i, offset: 40 * i); i += 1 }
        for h in 0..<64 { feed(.desc(vq: 0, index: UInt16(h), addr: 0x1000, len: 64 * 16, flags: .indirect)) }
        for h in 0..<64 { feed(.availEntry(vq: 0, pos: UInt16(h), head: UInt16(h))) }
        feed(.availIdx(vq: 0, idx: 64))
        var entries = 0
        outer: for parent in 0..<64 {
            for j in 0..<64 {
                feed(.indirectDesc(vq: 0, parent: UInt16(parent), index: UInt16(j), addr: 0x1000, len: 64))
                entries += 1
                if c.fatal != nil { break outer }
            }
        }
        #expect(c.fatal?.contains("budget of 1000") == true)
        // The first event that takes the sum past 2000 (entries plus 4 per table) is the one refused.
        let tables = (entries + 63) / 64
        #expect(entries + Checker.indirectTableCost * tables > 2000 && entries - 1 + Checker.indirectTableCost * tables <= 2000)
    }

    @Test("indirect tables the device does not own are forgotten over all rings, not refused, and memory stays within the budget")
    func idleIndirectTablesAreForgotten() {
        let rings = 24
        let header = TraceHeader(profile: .vhostUser, flags: [.preset], features: FeatureBit.indirectDesc.mask,
                                 queueSizes: Array(repeating: 64, count: rings))
        var c = Checker(header: header, indirectBudget: 10_000)
        var i: UInt64 = 0
        var peak = 0
        for q in 0..<rings {
            for parent in 0..<64 {
                for j in 0..<100 {
                    _ = c.process(.indirectDesc(vq: UInt16(q), parent: UInt16(parent), index: UInt16(j), addr: 0x1000, len: 64), index: i, offset: 40 * i)
                    i += 1
                    peak = max(peak, c.indirectHeldCost)
                }
            }
        }
        #expect(c.fatal == nil)
        #expect(peak <= 10_000 + 1 + Checker.indirectTableCost)
    }

    @Test("the checker's not-judged notes are bounded: a ring_gap on every ring of 32748, three reasons each, in linear time")
    func notJudgedIsBounded() {
        let q = TraceHeader.maxQueueCount
        var c = Checker(header: TraceHeader(profile: .vhostUser, flags: [.preset, .sampled], queueSizes: Array(repeating: 8, count: q)))
        let start = Date()
        var i: UInt64 = 0
        for reason in 1...3 {
            for v in 0..<q {
                _ = c.process(TraceEvent(.ringGap, vq: UInt16(v), p0: UInt64(reason)), index: i, offset: 40 * i)
                i += 1
            }
        }
        // A gap no poll follows is noted when the trace ends: once per ring.
        _ = c.finish()
        #expect(c.notJudged.count == Checker.notJudgedListed + 1)
        #expect(c.notJudged.last!.contains("and \(q - Checker.notJudgedListed) more"))
        #expect(Date().timeIntervalSince(start) < 30, "a linear search per note made this quadratic")
    }

    @Test("VHOST_NEW_WORKER beyond the live-worker budget refuses the trace instead of growing without end")
    func liveWorkerBudget() {
        var c = Checker(header: TraceHeader(profile: .linuxWorkers, flags: [.preset], queueSizes: [8, 8]))
        var id: UInt64 = 1
        while c.fatal == nil && id < UInt64(Checker.liveWorkerBudget) + 10 {
            _ = c.process(.control(.newWorker, value: id), index: id, offset: 40 * id)
            id += 1
        }
        #expect(c.fatal?.contains("budget") == true)
        #expect(id == UInt64(Checker.liveWorkerBudget) + 1, "the preset worker 0 and \(Checker.liveWorkerBudget - 1) more are allowed")
    }

    // MARK: work per event

    /// The indirect walk as it was: loop found only after `count` visits, every order violation kept.
    static func naiveIndirectRules(count: Int, entries: [Descriptor]) -> Set<RuleID> {
        var rules = Set<RuleID>()
        var j = 0, visited = 0, seenWritable = false
        while true {
            visited += 1
            if visited > count { rules.insert(.vqChainLoop); break }
            let d = j < entries.count ? entries[j] : .zero
            if d.flags.contains(.indirect) { rules.insert(.vqIndirectNested); break }
            if d.flags.contains(.write) { seenWritable = true } else if seenWritable { rules.insert(.vqChainOrder) }
            guard d.flags.contains(.next) else { break }
            guard Int(d.next) < count else { rules.insert(.vqDescIndex); break }
            j = Int(d.next)
        }
        return rules
    }

    @Test("indirect loop detection bounded by the described entries finds exactly what walking to the table's end finds")
    func boundedIndirectWalkAgrees() {
        var rng = Rng(seed: 42)
        for _ in 0..<3000 {
            let count = 1 + rng.below(12)
            let described = rng.below(count + 3)
            let entries = (0..<described).map { _ in
                Descriptor(len: 1, flags: SplitRing.DescFlags(rawValue: UInt16(rng.below(8))), next: UInt16(rng.below(count + 1)))
            }
            // A queue of 16 holds any of these chains (at most 12 buffers): VQ-CHAIN-LENGTH stays out of it.
            let t = [Descriptor(len: UInt32(count * 16), flags: .indirect)] + Array(repeating: Descriptor.zero, count: 15)
            var seen = [UInt32](repeating: 0, count: 16)
            let chain = ChainWalker.walk(head: 0, table: t, indirectAllowed: true, seen: &seen, stamp: 1) { _ in entries }
            #expect(Set(chain.violations.map(\.rule)) == Self.naiveIndirectRules(count: count, entries: entries), "\(entries)")
        }
    }

    @Test("a two-entry loop in a 65536-entry indirect table costs two steps per exposure, not 65536")
    func indirectLoopIsCheap() {
        var q = SplitVirtqueue(size: 4096, indirectAllowed: true)
        for h in 0..<4096 {
            _ = q.writeDescriptor(UInt16(h), Descriptor(len: 65536 * 16, flags: .indirect))
            _ = q.writeIndirectEntry(parent: UInt16(h), entry: 0, Descriptor(len: 1, flags: .next, next: 1))
            _ = q.writeIndirectEntry(parent: UInt16(h), entry: 1, Descriptor(len: 1, flags: .next, next: 0))
            _ = q.writeAvailEntry(pos: UInt16(h), head: UInt16(h))
        }
        let start = Date()
        let (v, exposed) = q.publishAvail(4096)
        #expect(exposed == 4096 && v.count == 4096 && v.allSatisfy { $0.rule == .vqChainLoop })
        #expect(Date().timeIntervalSince(start) < 10, "4096 walks of 65536 steps each")
    }

    @Test("one VQ-CHAIN-ORDER finding per chain, however many readable descriptors follow a writable one")
    func oneOrderFindingPerChain() {
        var t = (0..<64).map { i in Descriptor(len: 1, flags: i == 63 ? [] : .next, next: UInt16(i + 1)) }
        t[0].flags.insert(.write)
        var seen = [UInt32](repeating: 0, count: 64)
        let c = ChainWalker.walk(head: 0, table: t, indirectAllowed: false, seen: &seen, stamp: 1, indirectTables: { _ in nil })
        #expect(c.violations.map(\.rule) == [.vqChainOrder])
    }

    @Test("IN_ORDER: a chain never completed does not make the exposure list grow with the trace")
    func inOrderExposureListStaysFlat() {
        var q = SplitVirtqueue(size: 8, inOrder: true)
        for i in 0..<8 { _ = q.writeDescriptor(UInt16(i), Descriptor(len: 64, flags: .write)) }
        _ = q.writeAvailEntry(pos: 0, head: 0)
        _ = q.publishAvail(1)
        var avail: UInt16 = 1, used: UInt16 = 0
        var longest = 0
        for _ in 0..<20_000 {
            _ = q.writeAvailEntry(pos: avail, head: 1)
            avail &+= 1
            _ = q.publishAvail(avail)
            _ = q.writeUsed(pos: used, id: 1, len: 0)
            used &+= 1
            _ = q.publishUsed(used)
            longest = max(longest, q.exposureOrderLength)
        }
        #expect(q.chainsInFlight == 1)
        #expect(longest <= 2 * 2 + 64 + 1, "two chains in flight right after an exposure")
    }

    @Test("mutate: linear in the trace with many queues (double-completion scanned the trace once per vq, used-len-too-long once per used element)")
    func mutateIsLinear() throws {
        let q = 20_000
        let h = TraceHeader(profile: .vhostUser, flags: [.preset], queueSizes: Array(repeating: 8, count: q))
        // Every vq but the last re-exposes its completed head, so double-completion must look at all of them.
        var ev: [TraceEvent] = []
        for v in 0..<q {
            let vq = UInt16(v)
            ev += [.desc(vq: vq, index: 0, addr: 0x1000, len: 64, flags: .write), .availEntry(vq: vq, pos: 0, head: 0), .availIdx(vq: vq, idx: 1),
                   .usedEntry(vq: vq, pos: 0, id: 0, len: 64), .usedIdx(vq: vq, idx: 1)]
            if v < q - 1 { ev.append(.availEntry(vq: vq, pos: 1, head: 0)) }
        }
        var start = Date()
        let (out, change) = try Mutator.apply(.doubleCompletion, header: h, events: ev)
        #expect(out.count == ev.count + 2 && change.contains("vq \(q - 1)"))
        #expect(Date().timeIntervalSince(start) < 20)
        // No used element names an exposed head, so used-len-too-long searches the whole trace for one.
        let unexposed = ev.map { e -> TraceEvent in var e = e; if e.kind == .usedEntry { e.p1 = 1 }; return e }
        start = Date()
        #expect(throws: MutationError.self) { try Mutator.apply(.usedLenTooLong, header: h, events: unexposed) }
        #expect(Date().timeIntervalSince(start) < 20)
    }

    @Test("mutate refuses a trace longer than it holds in memory, naming the offset")
    func mutateEventCap() throws {
        let path = Regressions.trace("result-int16-min.trace")
        #expect(throws: TraceError.self) { try Mutator.apply(.headOutOfRange, input: path, output: Tools.temp("cap.trace"), maxEvents: 1) }
        do { _ = try Mutator.apply(.headOutOfRange, input: path, output: Tools.temp("cap.trace"), maxEvents: 1) }
        catch let e as TraceError { #expect(e.offset == 80 && e.message.contains("at most 1 events")) }
    }

    @Test("check --all as text streams every finding without keeping them all (memory flat); json keeps them")
    func allTextDoesNotRetain() throws {
        let h = TraceHeader(profile: .vhostUser, flags: [.preset], queueSizes: [8, 8])
        let ev = (0..<2000).map { _ in TraceEvent.usedEntry(vq: 0, pos: 0, id: 100, len: 0) }
        let path = Tools.temp("many-findings.trace")
        try Data(TraceBytes.encode(header: h, events: ev)).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        var streamed = 0
        let r = CheckRun.check(path: path, all: true, retainAll: false) { _ in streamed += 1 }
        #expect(streamed == 2000 && r.totalFindings == 2000 && r.findings.count == 1)
        let kept = CheckRun.check(path: path, all: true)
        #expect(kept.findings.count == 2000)
        let cli = try Tools.run("conformance", ["check", "--all", path])
        #expect(cli.status == 1 && cli.out.components(separatedBy: "[VQ-USED-ID]").count == 2001)
    }
}

/// SplitMix64, so these tests need nothing from the simulator.
struct Rng {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// The budgets `Specs/trace-format.md` ("Limits") and `Specs/security.md` state are the constants the
/// code uses.
@Suite struct BudgetDocsTests {
    static func doc(_ name: String) throws -> String {
        try String(contentsOf: Regressions.traces.deletingLastPathComponent().appendingPathComponent("Specs/\(name)"), encoding: .utf8)
    }
    static func pow2(_ v: Int) -> String { "2^\(v.trailingZeroBitCount)" }
    static func grouped(_ v: Int) -> String {
        var s = String(v), out = ""
        while s.count > 3 { out = "," + s.suffix(3) + out; s = String(s.dropLast(3)) }
        return s + out
    }

    @Test("the Limits table states every budget as the code defines it")
    func limitsTable() throws {
        let md = try Self.doc("trace-format.md")
        let limits = String(md[md.range(of: "## Limits")!.lowerBound...])
        let expected = [
            "\(Self.pow2(Checker.slotBudget)) slots over all rings",
            "| indirect tables of one ring | \(Self.pow2(SplitVirtqueue.indirectBudget)) units",
            "| indirect tables over all rings | \(Self.pow2(Checker.indirectBudget)) units (\((Checker.indirectBudget * 16) >> 20) MiB), \(Checker.indirectTableCost) units more per table",
            "more than \(Self.pow2(Checker.indirectBudget / 2)) units (\((Checker.indirectBudget / 2 * 16) >> 20) MiB)",
            "| workers alive at once (`VHOST_NEW_WORKER`) | \(Self.grouped(Checker.liveWorkerBudget))",
            "| \"not judged\" notes in a report | \(Checker.notJudgedListed) ",
            "| `stats` worker/vq lists | \(Self.pow2(TraceStats.workerQueueBudget)) (worker, vq) pairs",
            "| `mutate`, which edits the trace in memory | \(Self.pow2(Mutator.maxEvents)) events",
            "one line of at most \(TextForm.maxLineBytes >> 20) MiB",
        ]
        for e in expected { #expect(limits.contains(e), "Specs/trace-format.md Limits lacks: \(e)") }
    }
}
