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

/// `record --interpose` between a test front-end (the test writes the driver's ring in its
/// `GuestMemory`) and a test back-end that maps the table it is sent and serves the shadow ring
/// the relay gave it, as a device does. Specs/recorder.md "Interposing".
@Suite(.serialized) struct InterposeTests {
    static let features = FeatureBit.version1.mask | FeatureBit.protocolFeatures.mask | FeatureBit.indirectDesc.mask

    /// The back-end's side: the table it received (the front-end's regions plus the relay's), and
    /// the ring SET_VRING_ADDR gave it.
    final class Device {
        let memory = MemoryTable(writable: true)
        var ring: SplitRingView?
        var regions: [MemoryRegionDescription] = []
        var kick: Int32 = -1, call: Int32 = -1

        func map(_ m: Message) throws {
            let t = try #require(m.decode(MemoryTablePayload.self))
            regions = t.regions
            try memory.replace(with: t.regions, fds: m.fds)
            m.closeFds()
        }
        func address(_ m: Message, size: UInt32) throws {
            let a = try #require(m.decode(VringAddress.self))
            ring = SplitRingView(memory: memory, size: size, desc: a.desc, avail: a.avail, used: a.used)
        }
        /// Waits (bounded) until the device's avail.idx reads `idx`.
        func waitAvail(_ idx: UInt16, within s: Double = 3) -> Bool {
            let end = Date().addingTimeInterval(s)
            while Date() < end { if ring?.availIdx() == idx { return true }; usleep(1000) }
            return false
        }
        /// A receive device writes each packet's virtio-net header at the start of the chain's first
        /// writable buffer: num_buffers 1 (one buffer per packet without MRG_RXBUF), the rest 0.
        func writeHeader(head: UInt32) {
            guard let r = ring, var d = r.descriptor(UInt16(truncatingIfNeeded: head)) else { return }
            var table: GuestRange?
            if d.isIndirect {
                table = memory.guest(d.addr, length: UInt64(d.len))
                guard let t = table, let e = SplitRingView.descriptor(in: t, at: 0) else { return }
                d = e
            }
            var k = 0
            while d.flags & SplitRing.DescFlags.write.rawValue == 0 && d.flags & SplitRing.DescFlags.next.rawValue != 0 && k < 16 {
                k += 1
                guard let n = table.flatMap({ SplitRingView.descriptor(in: $0, at: 16 * Int(d.next)) }) ?? r.descriptor(d.next) else { return }
                d = n
            }
            guard d.flags & SplitRing.DescFlags.write.rawValue != 0, d.len >= 12, let g = memory.guest(d.addr, length: 12) else { return }
            _ = g.store(UInt16(1), at: NetHeader.numBuffersOffset)
        }
        func complete(_ elems: [(id: UInt32, len: UInt32)], from pos: UInt16) {
            for e in elems { writeHeader(head: e.id) }
            for (k, e) in elems.enumerated() {
                _ = ring!.used.store(UInt64(e.id) | UInt64(e.len) << 32, at: 4 + 8 * Int((pos &+ UInt16(k)) & ring!.mask))
            }
            _ = ring!.used.store16Release(pos &+ UInt16(elems.count), at: 2)
            if call >= 0 { _ = EventNotifier.signal(call) }
        }
    }

    /// Handshake and ring 0 set up through the relay; returns the device and the front-end's kick
    /// and call eventfds.
    static func setUp(_ cap: Capture, _ ring: SplitRingWriter, features: UInt64 = features) throws -> (Device, kick: Int32, call: Int32) {
        let dev = Device()
        cap.forward(Message(.setOwner))
        cap.forward(Message(.setFeatures, payload: U64Payload(features)))
        try dev.map(try #require(cap.forward(Message(.setMemTable, payload: MemoryTablePayload(regions: [ring.memory.region()]), fds: [ring.memory.fd]), keepFds: true)))
        cap.forward(Message(.setVringNum, payload: VringState(index: 0, num: UInt32(ring.size))))
        try dev.address(try #require(cap.forward(Message(.setVringAddr, payload: VringAddress(index: 0, desc: ring.descAddr, used: ring.usedAddr, avail: ring.availAddr)))), size: UInt32(ring.size))
        cap.forward(Message(.setVringBase, payload: VringState(index: 0, num: 0)))
        cap.forward(Message(.setVringEnable, payload: VringState(index: 0, num: 1)))
        let call = cs_eventfd(), kick = cs_eventfd()
        dev.call = try #require(cap.forward(Message(.setVringCall, payload: VringFile(index: 0), fds: [call]), keepFds: true)?.fds.first)
        dev.kick = try #require(cap.forward(Message(.setVringKick, payload: VringFile(index: 0), fds: [kick]), keepFds: true)?.fds.first)
        return (dev, kick, call)
    }

    static func stop(_ cap: Capture, base: UInt32) {
        _ = cap.fe.send(Message(.getVringBase, payload: VringState(index: 0, num: 0)))
        cap.be.receiveMessage()?.closeFds()
        cap.reply(Message(.getVringBase, flags: [.version1, .reply], payload: VringState(index: 0, num: base)))
        cap.fe.close()
    }

    static func waitUsed(_ ring: SplitRingWriter, _ idx: UInt16, within s: Double = 3) -> Bool {
        let end = Date().addingTimeInterval(s)
        while Date() < end { if ring.memory.get(UInt16.self, at: ring.usedOffset + 2) == idx { return true }; usleep(1000) }
        return false
    }

    @Test(.timeLimit(.minutes(1)))
    func relayedSessionIsAnExactTraceThatChecksClean() throws {
        let cap = try Capture(check: true) { $0.interpose = true }
        defer { cap.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: 8, at: 0)

        // What the relay cannot carry is taken out of the back-end's offer; the rest goes as it is.
        _ = cap.fe.send(Message(.getFeatures))
        cap.be.receiveMessage()?.closeFds()
        let offer = Self.features | FeatureBit.eventIdx.mask | FeatureBit.ringPacked.mask | FeatureBit.inOrder.mask | FeatureBit.logAll.mask
        let seen = cap.reply(Message(.getFeatures, flags: [.version1, .reply], payload: U64Payload(offer)))?.decode(U64Payload.self)?.value
        #expect(seen == Self.features | FeatureBit.eventIdx.mask | FeatureBit.ringPacked.mask | FeatureBit.inOrder.mask)

        let (dev, kick, call) = try Self.setUp(cap, ring)
        defer { close(kick); close(call); close(dev.kick); close(dev.call) }
        // The back-end got the front-end's region and the relay's, and rings inside the relay's.
        #expect(dev.regions.count == 2)
        #expect(dev.ring != nil && dev.ring!.desc.base != mem.base)

        // Three receive buffers (vq 0 is RX[0]: device-writable): a simple one, a chain of two, an
        // indirect table of two entries.
        ring.simpleBuffer(0, bufferOffset: 0x8000, len: 64, write: true)
        ring.desc(1, addr: mem.guest(0x9000), len: 32, flags: [.next, .write], next: 2)
        ring.desc(2, addr: mem.guest(0x9100), len: 32, flags: .write)
        for (k, (off, len, flags)) in [(0xA100, UInt32(16), UInt16(3)), (0xA200, UInt32(48), UInt16(2))].enumerated() {
            mem.put(mem.guest(off), at: 0xA000 + 16 * k); mem.put(len, at: 0xA008 + 16 * k)
            mem.put(flags, at: 0xA00C + 16 * k); mem.put(UInt16(1), at: 0xA00E + 16 * k)
        }
        ring.desc(3, addr: mem.guest(0xA000), len: 32, flags: .indirect)
        ring.availSlot(pos: 0, head: 0); ring.availSlot(pos: 1, head: 1); ring.availSlot(pos: 2, head: 3)
        ring.availIdx(3)
        _ = EventNotifier.signal(kick)

        // The device sees the chains as recorded: descriptors copied, the indirect table in the
        // relay's arena with the same entries.
        #expect(dev.waitAvail(3))
        #expect(dev.ring!.descriptor(0) == RawDescriptor(addr: mem.guest(0x8000), len: 64, flags: 2, next: 0))
        #expect(dev.ring!.descriptor(1)?.next == 2)
        let ind = try #require(dev.ring!.descriptor(3))
        #expect(ind.addr != mem.guest(0xA000) && ind.len == 32 && ind.isIndirect)
        let table = try #require(dev.memory.guest(ind.addr, length: 32))
        #expect(SplitRingView.descriptor(in: table, at: 16)?.len == 48)
        #expect((EventNotifier.take(dev.kick) ?? 0) > 0, "the kick was passed on")

        dev.complete([(0, 64), (1, 32), (3, 48)], from: 0)
        #expect(Self.waitUsed(ring, 3))
        #expect(mem.get(UInt32.self, at: ring.usedOffset + 4 + 16) == 3)
        var gotCall = false
        for _ in 0..<300 where !gotCall { gotCall = (EventNotifier.take(call) ?? 0) > 0; if !gotCall { usleep(10_000) } }
        #expect(gotCall, "the device's interrupt reached the front-end")

        Self.stop(cap, base: 3)
        let r = try #require(cap.finish())
        #expect(r.record.ringProblems.isEmpty, "\(r.record.ringProblems)")
        #expect(r.totalFindings == 0, "\(r.findings.map { "\($0.rule): \($0.message)" })")
        #expect(r.exitStatus == 0, "\(cap.log)")

        // Exact: no sampled flag anywhere; exposures before the index that shows them, the
        // completions before the used index, the kick and the interrupt after them.
        let reader = try TraceReader(path: cap.tracePath)
        #expect(!reader.header.flags.contains(.sampled))
        let ev = try cap.events(vq: 0)
        #expect(!ev.contains { $0.isSampled })
        let kinds = ev.map(\.kind)
        let availIdx = try #require(kinds.firstIndex(of: .availIdx)), usedIdx = try #require(kinds.firstIndex(of: .usedIdx))
        #expect(kinds.filter { $0 == .desc }.count == 4 && kinds.filter { $0 == .indirectDesc }.count == 2)
        #expect(kinds.lastIndex(of: .availEntry)! < availIdx && availIdx < kinds.firstIndex(of: .usedEntry)!)
        #expect(kinds.lastIndex(of: .usedEntry)! < usedIdx)
        #expect(kinds.firstIndex(of: .kick).map { $0 > availIdx } == true)
        #expect(kinds.firstIndex(of: .interrupt).map { $0 > usedIdx } == true)
        let report = CheckRun.check(path: cap.tracePath)
        #expect(report.conformant, "\(report.findings.map(\.message)) \(report.notJudged)")
    }

    /// The driver rewrites a descriptor after the kick, while the device owns it: the device never
    /// sees the new content (it has the relay's copy), and the trace has the driver's write before
    /// the completion, so the checker names VQ-DRIVER-OWNERSHIP.
    @Test(.timeLimit(.minutes(1)))
    func descriptorRewrittenAfterTheKickIsVQDriverOwnership() throws {
        let cap = try Capture(check: true) { $0.interpose = true }
        defer { cap.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: 8, at: 0)
        let (dev, kick, call) = try Self.setUp(cap, ring)
        defer { close(kick); close(call); close(dev.kick); close(dev.call) }
        ring.simpleBuffer(0, bufferOffset: 0x8000, len: 64, write: true)
        ring.expose(head: 0, at: 0)
        _ = EventNotifier.signal(kick)
        #expect(dev.waitAvail(1))
        ring.simpleBuffer(0, bufferOffset: 0x8000, len: 4096, write: true)   // after the kick
        usleep(20_000)
        #expect(dev.ring!.descriptor(0)?.len == 64, "the device keeps the content that was recorded")
        dev.complete([(0, 64)], from: 0)
        #expect(Self.waitUsed(ring, 1))
        Self.stop(cap, base: 1)
        let r = try #require(cap.finish())
        #expect(r.findings.map(\.rule) == [.vqDriverOwnership], "\(r.findings.map { "\($0.rule): \($0.message)" })")
        #expect(r.exitStatus == 1)
    }

    /// A chain that breaks a rule and that the device completes at once, after which the driver
    /// puts the descriptors right again: a poller may never see the bad chain; the relay records
    /// it before the device can see it, so the checker names the rule (VQ-CHAIN-ORDER; on a
    /// receive queue the device-readable buffer is NET-RX-FRAMING as well).
    @Test(.timeLimit(.minutes(1)))
    func chainTheDeviceCompletesAtOnceIsJudged() throws {
        let cap = try Capture(check: true) { $0.interpose = true }
        defer { cap.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: 8, at: 0)
        let (dev, kick, call) = try Self.setUp(cap, ring)
        defer { close(kick); close(call); close(dev.kick); close(dev.call) }
        // Device-writable, then device-readable: out of order.
        ring.desc(0, addr: mem.guest(0x8000), len: 64, flags: [.write, .next], next: 1)
        ring.desc(1, addr: mem.guest(0x8100), len: 64, flags: [])
        ring.expose(head: 0, at: 0)
        _ = EventNotifier.signal(kick)
        #expect(dev.waitAvail(1))
        dev.complete([(0, 16)], from: 0)
        #expect(Self.waitUsed(ring, 1))
        ring.desc(1, addr: mem.guest(0x8100), len: 64, flags: .write)   // put right once it is back
        Self.stop(cap, base: 1)
        let r = try #require(cap.finish())
        #expect(Set(r.findings.map(\.rule)) == [.vqChainOrder, .netRxFraming], "\(r.findings.map { "\($0.rule): \($0.message)" })")
        #expect(r.exitStatus == 1)
    }

    /// GET_VRING_BASE stops a ring whose device had read only the first of two exposed buffers;
    /// started again from that base on the same ring, the relay resumes where it had published
    /// (the shadow still holds the second entry, the trace has it already): the device completes
    /// it and the trace checks clean, with no second exposure of it.
    @Test(.timeLimit(.minutes(1)))
    func ringStoppedAndStartedAgainResumesWithoutExposingTwice() throws {
        let cap = try Capture(check: true) { $0.interpose = true }
        defer { cap.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: 8, at: 0)
        let (dev, kick, call) = try Self.setUp(cap, ring)
        defer { close(kick); close(call); close(dev.kick); close(dev.call) }
        ring.simpleBuffer(0, bufferOffset: 0x8000, len: 64, write: true)
        ring.simpleBuffer(1, bufferOffset: 0x8100, len: 64, write: true)
        ring.availSlot(pos: 0, head: 0); ring.availSlot(pos: 1, head: 1); ring.availIdx(2)
        #expect(dev.waitAvail(2))
        dev.complete([(0, 16)], from: 0)
        #expect(Self.waitUsed(ring, 1))
        _ = cap.fe.send(Message(.getVringBase, payload: VringState(index: 0, num: 0)))
        cap.be.receiveMessage()?.closeFds()
        cap.reply(Message(.getVringBase, flags: [.version1, .reply], payload: VringState(index: 0, num: 1)))
        // Started again from base 1, same ring.
        cap.forward(Message(.setVringNum, payload: VringState(index: 0, num: UInt32(ring.size))))
        try dev.address(try #require(cap.forward(Message(.setVringAddr, payload: VringAddress(index: 0, desc: ring.descAddr, used: ring.usedAddr, avail: ring.availAddr)))), size: UInt32(ring.size))
        cap.forward(Message(.setVringBase, payload: VringState(index: 0, num: 1)))
        let kick2 = cs_eventfd()
        let k2 = try #require(cap.forward(Message(.setVringKick, payload: VringFile(index: 0), fds: [kick2]), keepFds: true)?.fds.first)
        defer { close(kick2); close(k2) }
        #expect(dev.ring!.availIdx() == 2, "the shadow still shows both entries")
        dev.complete([(1, 16)], from: 1)
        #expect(Self.waitUsed(ring, 2), "\(cap.log) \((try? cap.events(vq: 0))?.map { TextForm.render(event: $0) } ?? [])")
        Self.stop(cap, base: 2)
        let r = try #require(cap.finish())
        #expect(r.totalFindings == 0, "\(r.findings.map { "\($0.rule): \($0.message)" })")
        #expect(r.exitStatus == 0)
        #expect(try cap.events(vq: 0).filter { $0.kind == .availEntry }.count == 2)
    }

    /// Receive rings: the relay reads each packet's header as the device returns it (before the
    /// front-end can see the element) and writes `rx_header` after the element that starts the
    /// packet. With MRG_RXBUF a packet of two buffers has one header, the next packet its own.
    @Test(.timeLimit(.minutes(1)))
    func receivedPacketHeadersAreRecordedWhereTheyStart() throws {
        let cap = try Capture(check: true) { $0.interpose = true }
        defer { cap.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: 8, at: 0)
        let (dev, kick, call) = try Self.setUp(cap, ring, features: Self.features | FeatureBit.netMrgRxbuf.mask)
        defer { close(kick); close(call); close(dev.kick); close(dev.call) }
        for h in 0..<3 { ring.simpleBuffer(h, bufferOffset: 0x8000 + 0x100 * h, len: 64, write: true); ring.availSlot(pos: UInt16(h), head: UInt16(h)) }
        ring.availIdx(3)
        #expect(dev.waitAvail(3))
        // Packet A in buffers 0 and 1 (num_buffers 2, the first used fully), packet B in buffer 2.
        mem.put(UInt16(2), at: 0x8000 + NetHeader.numBuffersOffset)
        mem.put(UInt16(0x7777), at: 0x8100 + NetHeader.numBuffersOffset)   // payload, not a header
        mem.put(UInt16(1), at: 0x8200 + NetHeader.numBuffersOffset)
        for (k, e) in [(UInt32(0), UInt32(64)), (1, 20), (2, 40)].enumerated() {
            _ = dev.ring!.used.store(UInt64(e.0) | UInt64(e.1) << 32, at: 4 + 8 * k)
        }
        _ = dev.ring!.used.store16Release(3, at: 2)
        #expect(Self.waitUsed(ring, 3))
        Self.stop(cap, base: 3)
        let r = try #require(cap.finish())
        #expect(r.totalFindings == 0, "\(r.findings.map { "\($0.rule): \($0.message)" })")
        let headers = try cap.events(vq: 0).filter { $0.kind == .rxHeader }
        #expect(headers.map(\.p0) == [0, 2] && headers.map(\.p1) == [2, 1], "\(headers.map { TextForm.render(event: $0) })")
    }

    /// NET-RX-NUM-BUFFERS on a relayed ring: without MRG_RXBUF a device that writes num_buffers 2.
    @Test(.timeLimit(.minutes(1)))
    func headerWithAWrongNumBuffersIsNetRxNumBuffers() throws {
        let cap = try Capture(check: true) { $0.interpose = true }
        defer { cap.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: 8, at: 0)
        let (dev, kick, call) = try Self.setUp(cap, ring)
        defer { close(kick); close(call); close(dev.kick); close(dev.call) }
        ring.simpleBuffer(0, bufferOffset: 0x8000, len: 64, write: true)
        ring.availSlot(pos: 0, head: 0); ring.availIdx(1)
        #expect(dev.waitAvail(1))
        mem.put(UInt16(2), at: 0x8000 + NetHeader.numBuffersOffset)
        _ = dev.ring!.used.store(UInt64(0) | UInt64(40) << 32, at: 4)
        _ = dev.ring!.used.store16Release(1, at: 2)
        #expect(Self.waitUsed(ring, 1))
        Self.stop(cap, base: 1)
        let r = try #require(cap.finish())
        #expect(r.findings.map(\.rule) == [.netRxNumBuffers], "\(r.findings.map { "\($0.rule): \($0.message)" })")
        #expect(r.exitStatus == 1)
    }

    /// IN_ORDER: the device completes a batch of three buffers by writing only the last one's
    /// element and moving used.idx by three. The relay tells the two elements it did not write (its
    /// mark is still in them), records and copies only the written one, and the trace checks clean
    /// (the checker retires the batch's older buffers at the unwritten positions).
    @Test(.timeLimit(.minutes(1)))
    func inOrderBatchWithUnwrittenElementsIsRelayedAsWritten() throws {
        let cap = try Capture(check: true) { $0.interpose = true }
        defer { cap.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = SplitRingWriter(memory: mem, size: 8, at: 0)
        let (dev, kick, call) = try Self.setUp(cap, ring, features: Self.features | FeatureBit.inOrder.mask)
        defer { close(kick); close(call); close(dev.kick); close(dev.call) }
        for h in 0..<3 { ring.simpleBuffer(h, bufferOffset: 0x8000 + 0x100 * h, len: 64, write: true); ring.availSlot(pos: UInt16(h), head: UInt16(h)) }
        ring.availIdx(3)
        #expect(dev.waitAvail(3))
        // Only the batch's last element, at its own position; positions 0 and 1 left as they were.
        for h in 0..<3 { dev.writeHeader(head: UInt32(h)) }
        _ = dev.ring!.used.store(UInt64(2) | UInt64(64) << 32, at: 4 + 8 * 2)
        _ = dev.ring!.used.store16Release(3, at: 2)
        _ = EventNotifier.signal(dev.call)
        #expect(Self.waitUsed(ring, 3))
        var gotCall = false
        for _ in 0..<300 where !gotCall { gotCall = (EventNotifier.take(call) ?? 0) > 0; if !gotCall { usleep(10_000) } }
        #expect(gotCall)
        #expect(mem.get(UInt32.self, at: ring.usedOffset + 4 + 16) == 2)
        Self.stop(cap, base: 3)
        let r = try #require(cap.finish())
        #expect(r.record.ringProblems.isEmpty, "\(r.record.ringProblems)")
        #expect(r.totalFindings == 0, "\(r.findings.map { "\($0.rule): \($0.message)" })")
        #expect(r.exitStatus == 0)
        let used = try cap.events(vq: 0).filter { $0.kind == .usedEntry }
        #expect(used.map(\.p0) == [2] && used.map(\.p1) == [2])
    }

    /// A table with every slot taken leaves no room for the relay's region: the session ends with
    /// the reason, the trace stays valid.
    @Test(.timeLimit(.minutes(1)))
    func fullMemoryTableEndsTheSessionWithTheReason() throws {
        let cap = try Capture { $0.interpose = true }
        defer { cap.cleanup() }
        let mems: [GuestMemory] = try (0..<8).map { try GuestMemory(size: 1 << 16, guestAddr: UInt64($0 + 1) << 32, userAddr: 0x7f00_0000_0000 + (UInt64($0) << 32), sealed: false) }
        cap.forward(Message(.setOwner))
        _ = cap.fe.send(Message(.setMemTable, payload: MemoryTablePayload(regions: mems.map { $0.region() }), fds: mems.map(\.fd)))
        let r = try #require(cap.finish())
        guard case .failed(let why) = r.record.end else { Issue.record("ended with \(r.record.end)"); return }
        #expect(why.contains("no slot is left"))
        #expect(r.exitStatus == 2)
    }
}
