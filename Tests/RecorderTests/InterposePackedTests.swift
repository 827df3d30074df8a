import CSupport
import Checker
import Foundation
import Glibc
import HostilePeers
import LiveCheck
@testable import Recorder
import Testing
import TraceFormat
import VhostUser
import VirtioProtocol

/// `record --interpose` with packed rings (VIRTIO_F_RING_PACKED): the test front-end writes the
/// driver's packed ring in its `GuestMemory` (`PackedRingWriter`), the test back-end maps the
/// table it is sent and serves the shadow packed ring the relay gave it, as a device does.
/// Specs/recorder.md "Interposing".
@Suite(.serialized) struct InterposePackedTests {
    static let features = FeatureBit.version1.mask | FeatureBit.protocolFeatures.mask | FeatureBit.indirectDesc.mask | FeatureBit.ringPacked.mask

    /// The back-end's side: the table it received and the shadow packed ring SET_VRING_ADDR gave it.
    final class Device {
        let memory = MemoryTable(writable: true)
        var ring: GuestRange?
        var driverEvent: GuestRange?, deviceEvent: GuestRange?
        var size = 0
        var kick: Int32 = -1, call: Int32 = -1

        func map(_ m: Message) throws {
            let t = try #require(m.decode(MemoryTablePayload.self))
            try memory.replace(with: t.regions, fds: m.fds)
            m.closeFds()
        }
        func address(_ m: Message, size n: Int) throws {
            let a = try #require(m.decode(VringAddress.self))
            size = n
            ring = memory.user(a.desc, length: UInt64(16 * n))
            driverEvent = memory.user(a.avail, length: 4)
            deviceEvent = memory.user(a.used, length: 4)
        }
        func slot(_ p: Int) -> Int { p % size }
        func wrap(_ p: Int) -> Bool { (p / size) % 2 == 0 }
        func flags(_ p: Int) -> PackedRing.Flags { PackedRing.Flags(rawValue: ring!.load16Acquire(at: 16 * slot(p) + 14) ?? 0) }
        func desc(_ p: Int) -> (addr: UInt64, len: UInt32, id: UInt16) {
            let o = 16 * slot(p)
            return (ring!.load(UInt64.self, at: o)!, ring!.load(UInt32.self, at: o + 8)!, ring!.load(UInt16.self, at: o + 12)!)
        }
        /// Waits (bounded) until the descriptor at position `p` is available to the device.
        func waitAvailable(_ p: Int, within s: Double = 3) -> Bool {
            let end = Date().addingTimeInterval(s)
            while Date() < end { if flags(p).isAvailable(wrap: wrap(p)) { return true }; usleep(1000) }
            return false
        }
        /// Marks a used descriptor at position `q`: id and len, then flags (release).
        func use(at q: Int, id: UInt16, len: UInt32, flags extra: PackedRing.Flags = .write) {
            let o = 16 * slot(q)
            _ = ring!.store(len, at: o + 8); _ = ring!.store(id, at: o + 12)
            _ = ring!.store16Release(PackedRing.Flags.usedMark(wrap: wrap(q)).union(extra).rawValue, at: o + 14)
            if call >= 0 { _ = EventNotifier.signal(call) }
        }
    }

    /// Handshake and packed ring 0 set up through the relay (DPDK virtio-user's order: num,
    /// base 0x8000 = slot 0 wrap 1, addresses, call, kick).
    static func setUp(_ cap: Capture, _ ring: PackedRingWriter, features: UInt64 = features, base: UInt32 = 0x8000) throws -> (Device, kick: Int32, call: Int32) {
        let dev = Device()
        cap.forward(Message(.setOwner))
        cap.forward(Message(.setFeatures, payload: U64Payload(features)))
        try dev.map(try #require(cap.forward(Message(.setMemTable, payload: MemoryTablePayload(regions: [ring.memory.region()]), fds: [ring.memory.fd]), keepFds: true)))
        cap.forward(Message(.setVringNum, payload: VringState(index: 0, num: UInt32(ring.size))))
        cap.forward(Message(.setVringBase, payload: VringState(index: 0, num: base)))
        try dev.address(try #require(cap.forward(Message(.setVringAddr, payload: VringAddress(index: 0, desc: ring.descAddr, used: ring.deviceEventAddr, avail: ring.driverEventAddr)))), size: ring.size)
        cap.forward(Message(.setVringEnable, payload: VringState(index: 0, num: 1)))
        let call = cs_eventfd(), kick = cs_eventfd()
        dev.call = try #require(cap.forward(Message(.setVringCall, payload: VringFile(index: 0), fds: [call]), keepFds: true)?.fds.first)
        dev.kick = try #require(cap.forward(Message(.setVringKick, payload: VringFile(index: 0), fds: [kick]), keepFds: true)?.fds.first)
        return (dev, kick, call)
    }

    /// GET_VRING_BASE with the device's position (slot, wrap counter in bit 15), then the front-end leaves.
    static func stop(_ cap: Capture, position p: Int, size: Int) {
        _ = cap.fe.send(Message(.getVringBase, payload: VringState(index: 0, num: 0)))
        cap.be.receiveMessage()?.closeFds()
        let base = UInt32(p % size) | ((p / size) % 2 == 0 ? 0x8000 : 0)
        cap.reply(Message(.getVringBase, flags: [.version1, .reply], payload: VringState(index: 0, num: base)))
        cap.fe.close()
    }

    /// Waits until the front-end's descriptor at position `q` is marked used.
    static func waitUsed(_ ring: PackedRingWriter, _ q: Int, within s: Double = 3) -> Bool {
        let end = Date().addingTimeInterval(s)
        while Date() < end {
            let f = PackedRing.Flags(rawValue: ring.memory.get(UInt16.self, at: ring.descOffset + 16 * ring.slot(q) + 14) ?? 0)
            if f.isUsed(wrap: ring.wrap(q)) { return true }
            usleep(1000)
        }
        return false
    }

    static func describe(_ r: LiveResult) -> String { "\(r.findings.map { "\($0.rule): \($0.message)" }) \(r.record.ringProblems)" }

    /// Two laps of a ring of 6 (not a power of two): a simple buffer, a list of two, an indirect
    /// table, then buffers across the wrap; the device sees the copies, the front-end the used
    /// descriptors, and the trace is exact (first descriptor's flags after the rest of its list,
    /// each used descriptor before anything after it) and checks clean.
    @Test(.timeLimit(.minutes(1)))
    func relayedPackedSessionIsAnExactTraceThatChecksClean() throws {
        let cap = try Capture(check: true) { $0.interpose = true }
        defer { cap.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = PackedRingWriter(memory: mem, size: 6, at: 0)
        let (dev, kick, call) = try Self.setUp(cap, ring)
        defer { close(kick); close(call); close(dev.kick); close(dev.call) }

        ring.expose(at: 0, id: 0, write: true)
        ring.expose(at: 1, count: 2, id: 1, write: true)
        // An indirect table of two device-writable entries (a packed table entry: addr, len, id, flags).
        for (k, len) in [UInt32(16), UInt32(48)].enumerated() {
            mem.put(mem.guest(0xA100 + 0x100 * k), at: 0xA000 + 16 * k); mem.put(len, at: 0xA008 + 16 * k)
            mem.put(UInt16(0), at: 0xA00C + 16 * k); mem.put(PackedRing.Flags.write.rawValue, at: 0xA00E + 16 * k)
        }
        ring.body(3, addr: mem.guest(0xA000), len: 32, id: 2)
        ring.storeFlags(3, [.avail, .indirect])
        _ = EventNotifier.signal(kick)

        #expect(dev.waitAvailable(0) && dev.waitAvailable(1) && dev.waitAvailable(2) && dev.waitAvailable(3))
        #expect(dev.desc(0).len == 64 && dev.desc(0).id == 0)
        #expect(dev.flags(1).contains(.next) && dev.desc(2).id == 1)
        let ind = dev.desc(3)
        #expect(ind.addr != mem.guest(0xA000) && ind.len == 32 && dev.flags(3).contains(.indirect), "the table is the relay's copy")
        let table = try #require(dev.memory.guest(ind.addr, length: 32))
        #expect(table.load(UInt32.self, at: 24) == 48)
        #expect((EventNotifier.take(dev.kick) ?? 0) > 0, "the kick was passed on")

        dev.use(at: 0, id: 0, len: 64)
        dev.use(at: 1, id: 1, len: 32)   // skips the list's two descriptors
        dev.use(at: 3, id: 2, len: 48)
        #expect(Self.waitUsed(ring, 3))
        #expect(mem.get(UInt16.self, at: 16 * 1 + 12) == 1 && mem.get(UInt32.self, at: 16 * 3 + 8) == 48)
        var gotCall = false
        for _ in 0..<300 where !gotCall { gotCall = (EventNotifier.take(call) ?? 0) > 0; if !gotCall { usleep(10_000) } }
        #expect(gotCall, "the device's interrupt reached the front-end")

        // Across the end of the ring: positions 4, 5 (wrap 1), 6, 7 (slots 0, 1, wrap 0).
        ring.expose(at: 4, count: 3, id: 3, write: true)
        ring.expose(at: 7, id: 0, write: true)
        #expect(dev.waitAvailable(4) && dev.waitAvailable(6) && dev.waitAvailable(7))
        dev.use(at: 4, id: 3, len: 10)
        dev.use(at: 7, id: 0, len: 10)
        #expect(Self.waitUsed(ring, 7))

        Self.stop(cap, position: 8, size: 6)
        let r = try #require(cap.finish())
        #expect(r.record.ringProblems.isEmpty, "\(r.record.ringProblems)")
        #expect(r.totalFindings == 0, "\(Self.describe(r))")
        #expect(r.exitStatus == 0, "\(cap.log)")

        let reader = try TraceReader(path: cap.tracePath)
        #expect(!reader.header.flags.contains(.sampled))
        let ev = try cap.events(vq: 0)
        #expect(!ev.contains { $0.isSampled })
        let data = ev.filter { [.packedDesc, .packedFlags, .packedIndirectDesc, .packedUsed, .packedUsedFlags].contains($0.kind) }
        #expect(data.filter { $0.kind == .packedDesc }.count == 8 && data.filter { $0.kind == .packedIndirectDesc }.count == 2)
        #expect(data.filter { $0.kind == .packedUsed }.map(\.aux) == [0, 1, 3, 4, 1])
        // The list at 1: descriptor 2's flags, then descriptor 1's (the store that exposes it).
        let flagsOrder = data.filter { $0.kind == .packedFlags }.map(\.aux)
        #expect(flagsOrder.prefix(4) == [0, 2, 1, 3], "\(flagsOrder)")
        #expect(flagsOrder.suffix(4) == [5, 0, 4, 1], "\(flagsOrder)")
        let report = CheckRun.check(path: cap.tracePath)
        #expect(report.conformant, "\(report.findings.map(\.message)) \(report.notJudged)")
    }

    /// IN_ORDER: the device writes one used descriptor for a batch of three buffers, at the
    /// batch's first position with the last buffer's id; the relay copies it as written and moves
    /// past the batch, and the trace checks clean.
    @Test(.timeLimit(.minutes(1)))
    func inOrderBatchIsRelayedAsTheDeviceWroteIt() throws {
        let cap = try Capture(check: true) { $0.interpose = true }
        defer { cap.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = PackedRingWriter(memory: mem, size: 8, at: 0)
        let (dev, kick, call) = try Self.setUp(cap, ring, features: Self.features | FeatureBit.inOrder.mask)
        defer { close(kick); close(call); close(dev.kick); close(dev.call) }
        ring.expose(at: 0, id: 0, write: true)
        ring.expose(at: 1, count: 2, id: 1, write: true)
        ring.expose(at: 3, id: 2, write: true)
        #expect(dev.waitAvailable(3))
        dev.use(at: 0, id: 2, len: 64)
        #expect(Self.waitUsed(ring, 0))
        ring.expose(at: 4, id: 3, write: true)
        #expect(dev.waitAvailable(4))
        dev.use(at: 4, id: 3, len: 64)
        #expect(Self.waitUsed(ring, 4))
        Self.stop(cap, position: 5, size: 8)
        let r = try #require(cap.finish())
        #expect(r.record.ringProblems.isEmpty && r.totalFindings == 0 && r.exitStatus == 0, "\(Self.describe(r))")
        #expect(try cap.events(vq: 0).filter { $0.kind == .packedUsed }.map(\.aux) == [0, 4])
    }

    /// The driver rewrites a descriptor's length after making it available: the device keeps the
    /// recorded copy, and the trace has the driver's write before the used descriptor that ends
    /// the device's ownership, so the checker names PACKED-FLAGS-LAST.
    @Test(.timeLimit(.minutes(1)))
    func descriptorRewrittenWhileTheDeviceOwnsItIsPackedFlagsLast() throws {
        let cap = try Capture(check: true) { $0.interpose = true }
        defer { cap.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = PackedRingWriter(memory: mem, size: 8, at: 0)
        let (dev, kick, call) = try Self.setUp(cap, ring)
        defer { close(kick); close(call); close(dev.kick); close(dev.call) }
        ring.expose(at: 0, id: 0, write: true)
        #expect(dev.waitAvailable(0))
        mem.put(UInt32(4096), at: 8)
        usleep(20_000)
        #expect(dev.desc(0).len == 64, "the device keeps the content that was recorded")
        dev.use(at: 0, id: 0, len: 64)
        #expect(Self.waitUsed(ring, 0))
        Self.stop(cap, position: 1, size: 8)
        let r = try #require(cap.finish())
        #expect(r.findings.map(\.rule) == [.packedFlagsLast], "\(Self.describe(r))")
        #expect(r.exitStatus == 1)
    }

    /// A list whose first descriptor is made available before its second: recorded as it
    /// happened (PACKED-CHAIN-HEAD-LAST), shown to the device only once complete.
    @Test(.timeLimit(.minutes(1)))
    func listHeadMadeAvailableFirstIsRecordedAndShownOnlyWhenComplete() throws {
        let cap = try Capture(check: true) { $0.interpose = true }
        defer { cap.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = PackedRingWriter(memory: mem, size: 8, at: 0)
        let (dev, kick, call) = try Self.setUp(cap, ring)
        defer { close(kick); close(call); close(dev.kick); close(dev.call) }
        ring.expose(at: 0, count: 2, id: 0, write: true, headFirst: true, flagsStored: 1)
        #expect(cap.waitForEvents { $0.contains { $0.kind == .packedFlags } })
        #expect(!dev.flags(0).isAvailable(wrap: true), "not shown to the device while incomplete")
        ring.storeFlags(1, [.avail, .write])
        #expect(dev.waitAvailable(0) && dev.waitAvailable(1))
        dev.use(at: 0, id: 0, len: 64)
        #expect(Self.waitUsed(ring, 0))
        Self.stop(cap, position: 2, size: 8)
        let r = try #require(cap.finish())
        #expect(r.findings.map(\.rule) == [.packedChainHeadLast], "\(Self.describe(r))")
        #expect(r.record.ringProblems.isEmpty)
    }

    /// QEMU's packed base carries its used position in bits 16-31: the same as the avail position
    /// (a start with nothing in flight, 0x80008000 at the first) is relayed; another one (buffers in
    /// flight across a restart, which the trace's one-position set_vring_base cannot say) gets a
    /// ring_gap with the reason instead of a relay that would wait at the wrong position.
    @Test(.timeLimit(.minutes(1)), arguments: [UInt32(0x8000_8000), 0x8003_8005])
    func packedBaseWithAUsedPositionIsRelayedOnlyWhenBothPositionsAgree(base: UInt32) throws {
        let cap = try Capture(check: true) { $0.interpose = true }
        defer { cap.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = PackedRingWriter(memory: mem, size: 8, at: 0)
        let (dev, kick, call) = try Self.setUp(cap, ring, base: base)
        defer { close(kick); close(call); close(dev.kick); close(dev.call) }
        let agree = base >> 16 == base & 0xffff
        if agree {
            ring.expose(at: 0, id: 0, write: true)
            #expect(dev.waitAvailable(0))
            dev.use(at: 0, id: 0, len: 8)
            #expect(Self.waitUsed(ring, 0))
        }
        Self.stop(cap, position: agree ? 1 : 5, size: 8)
        let r = try #require(cap.finish())
        #expect(r.totalFindings == 0, "\(Self.describe(r))")
        if agree {
            #expect(r.record.ringProblems.isEmpty && r.exitStatus == 0, "\(Self.describe(r))")
        } else {
            #expect(r.record.ringProblems.count == 1 && r.record.ringProblems[0].contains("buffers in flight"), "\(r.record.ringProblems)")
            #expect(r.exitStatus == 3)
        }
    }

    /// GET_VRING_BASE stops a ring whose device had used the first of two lists; started again
    /// from a base between the relay's used and avail positions on the same ring, the relay resumes
    /// with the second list in flight (the shadow still shows it, the trace has it already): the
    /// device uses it, the trace checks clean, and it is exposed once.
    @Test(.timeLimit(.minutes(1)))
    func packedRingStoppedAndStartedAgainResumesWithoutExposingTwice() throws {
        let cap = try Capture(check: true) { $0.interpose = true }
        defer { cap.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = PackedRingWriter(memory: mem, size: 8, at: 0)
        let (dev, kick, call) = try Self.setUp(cap, ring)
        defer { close(kick); close(call); close(dev.kick); close(dev.call) }
        ring.expose(at: 0, id: 0, write: true)
        ring.expose(at: 1, id: 1, write: true)
        #expect(dev.waitAvailable(1))
        dev.use(at: 0, id: 0, len: 16)
        #expect(Self.waitUsed(ring, 0))
        _ = cap.fe.send(Message(.getVringBase, payload: VringState(index: 0, num: 0)))
        cap.be.receiveMessage()?.closeFds()
        cap.reply(Message(.getVringBase, flags: [.version1, .reply], payload: VringState(index: 0, num: 0x8001)))
        cap.forward(Message(.setVringNum, payload: VringState(index: 0, num: UInt32(ring.size))))
        cap.forward(Message(.setVringBase, payload: VringState(index: 0, num: 0x8001)))
        try dev.address(try #require(cap.forward(Message(.setVringAddr, payload: VringAddress(index: 0, desc: ring.descAddr, used: ring.deviceEventAddr, avail: ring.driverEventAddr)))), size: ring.size)
        let kick2 = cs_eventfd()
        let k2 = try #require(cap.forward(Message(.setVringKick, payload: VringFile(index: 0), fds: [kick2]), keepFds: true)?.fds.first)
        defer { close(kick2); close(k2) }
        #expect(dev.flags(1).isAvailable(wrap: true), "the shadow still shows the second list")
        dev.use(at: 1, id: 1, len: 16)
        #expect(Self.waitUsed(ring, 1))
        Self.stop(cap, position: 2, size: 8)
        let r = try #require(cap.finish())
        #expect(r.record.ringProblems.isEmpty && r.totalFindings == 0 && r.exitStatus == 0, "\(Self.describe(r))")
        #expect(try cap.events(vq: 0).filter { $0.kind == .packedDesc }.count == 2)
    }

    /// Both sides writing anything at all into their rings (random flags, ids, lengths, indirect
    /// tables anywhere, event suppression words), step after step: every relay pass returns within
    /// its work bound, writes a bounded number of events, and a pass that gives up does so with a
    /// reason; the relay never traps. Seeded, so a failure replays.
    @Test(arguments: [UInt64(1), 2, 3, 4])
    func randomRingContentsOnBothSidesNeitherCrashNorSpinTheRelay(seed: UInt64) throws {
        let mem = GuestMemory(size: 1 << 16)
        let table = MemoryTable(writable: true)
        try table.replace(with: [mem.region()], fds: [mem.fd])
        let (region, why) = ShadowRegion.make(vrings: 1, above: [mem.region()])
        let r = try #require(region, "\(why ?? "")")
        var rng = seed &* 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 { rng &+= 0x9E37_79B9_7F4A_7C15; var z = rng; z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9; z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB; return z ^ (z >> 31) }
        let n = [1, 3, 8, 13][Int(seed % 4)]
        let shadow = try #require(r.ring(vq: 0, size: UInt32(n), format: .packed))
        let cfg = RingConfig(size: UInt32(n), desc: mem.user(0), avail: mem.user(16 * n), used: mem.user(16 * n + 4), addrSet: true, base: 0x8000)
        func fresh() -> PackedRingRelay? {
            PackedRingRelay.initShadow(shadow, start: 0)
            return PackedRingRelay(vq: 0, config: cfg, memory: table, shadow: shadow, eventIdx: next() & 1 == 0, inOrder: next() & 1 == 0, start: (0, 0))
        }
        var relay = try #require(fresh())
        var gaveUp = 0, events = 0
        for _ in 0..<3000 {
            // A few random stores on either side.
            for _ in 0..<Int(next() % 4) {
                let slot = Int(next() % UInt64(n)), o = 16 * slot
                switch next() % 6 {
                case 0: mem.put(UInt16(truncatingIfNeeded: next()), at: o + 14)   // driver flags, any bits
                case 1: mem.put([PackedRing.Flags.avail, .used, [.avail, .next], [.used, .next], [.avail, .indirect]][Int(next() % 5)].rawValue, at: o + 14)
                case 2: mem.put(mem.guest(Int(next() % 0x10000)), at: o); mem.put(UInt32(truncatingIfNeeded: next() % 0x400), at: o + 8)
                        mem.put(UInt16(truncatingIfNeeded: next() % UInt64(n + 2)), at: o + 12)
                case 3: _ = shadow.desc.store(UInt16(truncatingIfNeeded: next() % UInt64(n + 2)), at: o + 12)   // device id
                        _ = shadow.desc.store16Release([PackedRing.Flags([.avail, .used]), [], .write][Int(next() % 3)].rawValue, at: o + 14)
                case 4: mem.put(UInt32(truncatingIfNeeded: next()), at: 16 * n)   // driver event suppression
                default: _ = shadow.used.store(UInt32(truncatingIfNeeded: next()), at: 0)   // device event suppression
                }
            }
            var out: [TraceEvent] = []
            do {
                _ = try relay.step(memory: table, t: 0, kicked: false, called: false, out: &out)
            } catch {
                gaveUp += 1
                relay = try #require(fresh())
            }
            // A pass writes at most what its work bound lets it read, a few events per read.
            #expect(out.count <= 4 * relay.workBound + 8)
            events += out.count
        }
        print("seed \(seed), ring of \(n): \(events) events, \(gaveUp) passes gave up (ring_gap)")
    }

    /// Hostile drivers: a list with NEXT on every descriptor of the ring (it never ends), and a
    /// descriptor with INDIRECT and NEXT both set. Each is recorded and judged, the relay neither
    /// crashes nor spins, and the session ends normally.
    @Test(.timeLimit(.minutes(1)), arguments: ["endless-list", "indirect-with-next"])
    func hostileDriverListIsRecordedAndJudged(attack: String) throws {
        let cap = try Capture(check: true) { $0.interpose = true }
        defer { cap.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = PackedRingWriter(memory: mem, size: 4, at: 0)
        let (dev, kick, call) = try Self.setUp(cap, ring)
        defer { close(kick); close(call); close(dev.kick); close(dev.call) }
        let expected: Set<RuleID>
        if attack == "endless-list" {
            for k in 0..<4 { ring.body(k, addr: mem.guest(0x8000), len: 64, id: 0) }
            for k in [1, 2, 3, 0] { ring.storeFlags(k, [.avail, .next, .write]) }
            expected = [.vqChainLoop]
            #expect(cap.waitForEvents { $0.filter { $0.kind == .packedFlags }.count == 4 })
            #expect(!dev.flags(0).isAvailable(wrap: true), "an endless list is never shown to the device")
        } else {
            ring.body(0, addr: mem.guest(0xA000), len: 32, id: 0)
            ring.body(1, addr: mem.guest(0x8000), len: 64, id: 0)
            ring.storeFlags(1, [.avail, .write])
            ring.storeFlags(0, [.avail, .indirect, .next])
            expected = [.vqIndirectNext]
            #expect(dev.waitAvailable(0))
            dev.use(at: 0, id: 0, len: 0, flags: [])
            #expect(Self.waitUsed(ring, 0))
        }
        Self.stop(cap, position: 0, size: 4)
        let r = try #require(cap.finish())
        #expect(Set(r.findings.map(\.rule)).isSuperset(of: expected), "\(Self.describe(r))")
        #expect(r.exitStatus == 1)
    }

    /// Hostile devices: a used descriptor naming a buffer id that is not in flight, and one written
    /// at a slot with nothing made available. Each is recorded (the checker names it), the ring
    /// stops being relayed with a ring_gap saying why, and the session ends normally.
    @Test(.timeLimit(.minutes(1)), arguments: ["unknown-id", "nothing-available"])
    func hostileDeviceUsedDescriptorIsRecordedThenTheRingGaps(attack: String) throws {
        let cap = try Capture(check: true) { $0.interpose = true }
        defer { cap.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = PackedRingWriter(memory: mem, size: 8, at: 0)
        let (dev, kick, call) = try Self.setUp(cap, ring)
        defer { close(kick); close(call); close(dev.kick); close(dev.call) }
        let expected: RuleID
        if attack == "unknown-id" {
            ring.expose(at: 0, id: 0, write: true)
            #expect(dev.waitAvailable(0))
            dev.use(at: 0, id: 7, len: 8)
            expected = .packedUsedId
            #expect(Self.waitUsed(ring, 0), "the device's slot: relayed as written")
        } else {
            dev.use(at: 0, id: 0, len: 8)
            expected = .packedDeviceOwnership
            #expect(cap.waitForEvents { $0.contains { $0.kind == .ringGap } })
            #expect(!Self.waitUsed(ring, 0, within: 0.05), "the driver's slot is not written")
        }
        Self.stop(cap, position: 1, size: 8)
        let r = try #require(cap.finish())
        #expect(r.findings.map(\.rule).contains(expected), "\(Self.describe(r))")
        #expect(r.record.ringProblems.count == 1 && r.record.ringProblems[0].contains("reason=3"), "\(r.record.ringProblems)")
        #expect(r.exitStatus == 1)
    }
}
