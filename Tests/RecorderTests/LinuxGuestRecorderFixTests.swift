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

/// Issue 15, "Recorder fixes seen with the Linux guest".
@Suite struct LinuxGuestRecorderFixTests {
    static let packedFeatures = FeatureBit.version1.mask | FeatureBit.protocolFeatures.mask | FeatureBit.ringPacked.mask

    @Test func heldDisableIsNeverOvertakenByALaterEnableOfTheSameVring() throws {
        let h = try Capture()
        defer { h.cleanup() }
        h.forward(Message(.setOwner))
        // Disable, then enable, with no reply in between: the back-end processes them in this order.
        h.forward(Message(.setVringEnable, payload: VringState(index: 3, num: 0)))
        h.forward(Message(.setVringEnable, payload: VringState(index: 3, num: 1)))
        h.forward(Message(.setVringEnable, payload: VringState(index: 5, num: 0)))
        h.fe.close()
        _ = h.finish()
        let en = try h.events().filter { $0.kind == .setVringEnable }.map { "\($0.vq):\($0.p0)" }
        #expect(en == ["3:0", "3:1", "5:0"])
    }

    @Test func heldDisableIsWrittenWhenTheBackEndRepliesToALaterRequest() throws {
        let h = try Capture()
        defer { h.cleanup() }
        h.forward(Message(.setOwner))
        h.forward(Message(.setVringEnable, payload: VringState(index: 0, num: 0)))
        h.forward(Message(.getFeatures))
        usleep(700_000)   // longer than the recorder's flush period
        #expect(try h.events().filter { $0.kind == .setVringEnable }.isEmpty, "held until the back-end answers")
        h.reply(Message(.getFeatures, flags: [.version1, .reply], payload: U64Payload(0)))
        #expect(h.waitForEvent { $0.kind == .setVringEnable }, "the reply proves the disable was processed")
        h.fe.close()
        _ = h.finish()
    }

    /// A ring of a negotiated packed format holds bytes that would read as a busy split ring.
    static func splitLookingRing(_ mem: GuestMemory) -> SplitRingWriter {
        let ring = SplitRingWriter(memory: mem, size: 8, at: 0)
        for k in 0..<8 { ring.simpleBuffer(k, bufferOffset: 0x8000) }
        for k in 0..<3 { ring.availSlot(pos: UInt16(k), head: UInt16(k)) }
        ring.availIdx(3)
        ring.complete(id: 0, at: 0)
        return ring
    }

    static func splitEvents(_ ev: [TraceEvent]) -> [TraceEvent] {
        ev.filter { [.desc, .indirectDesc, .availEntry, .usedEntry, .usedSlot, .availIdx, .usedIdx].contains($0.kind) }
    }

    /// A packed ring is followed as packed (its own follower: flags, positions with wrap counters),
    /// never read as a split ring, on every path that polls.
    @Test func packedRingIsNeverPolledAsSplitOnAnyPath() throws {
        let h = try Capture { $0.reconnect = true; $0.acceptTimeout = 3 }
        defer { h.cleanup() }
        let mem = GuestMemory(size: 1 << 16)
        let ring = Self.splitLookingRing(mem)
        // Base 32768 (index 0, wrap counter 1) is what QEMU and DPDK send for a fresh packed ring.
        h.startRing(ring: ring, features: Self.packedFeatures, base: 32768)
        #expect(h.waitForEvent { $0.kind == .poll })
        usleep(50_000)
        // The held-disable path: a disable, flushed by a reply.
        h.forward(Message(.setVringEnable, payload: VringState(index: 0, num: 0)))
        h.forward(Message(.getFeatures))
        h.reply(Message(.getFeatures, flags: [.version1, .reply], payload: U64Payload(Self.packedFeatures)))
        // The GET_VRING_BASE reply path.
        h.forward(Message(.getVringBase, payload: VringState(index: 0, num: 0)))
        h.reply(Message(.getVringBase, flags: [.version1, .reply], payload: VringState(index: 0, num: 3)))
        // The reconnect path: a new session, packed again, started again.
        h.fe.close(); h.be.close()
        try h.connectPeers()
        h.startRing(ring: ring, features: Self.packedFeatures, base: 32768)
        #expect(h.waitForEvent { e in (try? h.events().filter { $0.kind == .poll }.count ?? 0) ?? 0 >= 2 })
        h.fe.close()
        let r = try #require(h.finish())
        let ev = try h.events()
        #expect(Self.splitEvents(ev).isEmpty, "\(Self.splitEvents(ev).map(\.kind))")
        // The bytes read as packed flags mark nothing available: each start is one quiet first poll.
        #expect(ev.filter { $0.kind == .ringGap }.isEmpty)
        #expect(ev.filter { $0.kind == .poll }.count >= 2, "a first poll per start")
        // What the recorder wrote is judged as a packed ring, and nothing in it breaks a rule.
        let report = CheckRun.check(path: h.tracePath)
        #expect(report.error == nil && report.totalFindings == 0, "\(report.findings.map(\.message)) \(report.notJudged)")
        #expect(r.exitStatus != CheckExit.violation)
    }

    @Test func backEndReconnectIsRetriedUntilItListensAgain() throws {
        let h = try Capture { $0.reconnect = true; $0.backendRetry = 5; $0.acceptTimeout = 5 }
        defer { h.cleanup() }
        h.forward(Message(.setOwner))
        // The back-end restarts: it goes away and listens again 1.5 s later (testpmd needs ~2.4 s).
        let path = h.options.connectPath
        close(h.backendListener); h.backendListener = -1
        unlink(path)
        h.be.close()
        #expect(h.fe.seesClose(within: 2))
        h.fe.close()
        let fe2 = try #require(PeerSocket.connect(h.options.listenPath))
        usleep(1_500_000)
        h.backendListener = cs_unix_listen(path)
        let b = cs_unix_accept(h.backendListener, 8000)
        #expect(b >= 0, "the recorder reached the back-end again")
        guard b >= 0 else { return }
        let be2 = PeerSocket(fd: b)
        #expect(fe2.send(Message(.setOwner)))
        #expect(be2.receiveMessage()?.request == .setOwner)
        fe2.close()
        _ = h.finish(timeout: 10)
        be2.close()
        #expect(try h.events().map(\.kind).prefix(3) == [.setOwner, .resetOwner, .setOwner])
    }

    @Test func setVringErrGetSetStatusAndSetBackendReqFdAreRecorded() throws {
        let h = try Capture()
        defer { h.cleanup() }
        h.forward(Message(.setOwner))
        let e = cs_eventfd()
        defer { close(e) }
        h.forward(Message(.setVringErr, payload: VringFile(index: 2), fds: [e]))
        h.forward(Message(.setVringErr, payload: VringFile(index: 3, noFd: true)))
        h.forward(Message(.setStatus, payload: StatusPayload(status: 0x0f)))
        h.forward(Message(.getStatus))
        h.reply(Message(.getStatus, flags: [.version1, .reply], payload: StatusPayload(status: 0x0f)))
        h.forward(Message(.setBackendReqFd, payload: U64Payload(0), fds: [e]))
        h.fe.close()
        let r = try #require(h.finish())
        let ev = try h.events()
        #expect(ev.map(\.kind) == [.setOwner, .setVringErr, .setVringErr, .setStatus, .getStatus, .setBackendReqFd, .captureEnd])
        #expect(ev[1].vq == 2 && ev[1].p0 == 0 && ev[2].vq == 3 && ev[2].p0 == 0x100)
        #expect(ev[3].p0 == 0x0f && ev[4].p0 == 0x0f)
        #expect(r.exitStatus == CheckExit.conformant)
        #expect(CheckRun.check(path: h.tracePath).error == nil)
    }

    @Test func aReplyThatAnswersNoRequestIsForwardedButNotRecorded() throws {
        let h = try Capture()
        defer { h.cleanup() }
        h.forward(Message(.setOwner))
        h.reply(Message(.getQueueNum, flags: [.version1, .reply], payload: U64Payload(8)))
        h.fe.close()
        _ = h.finish()
        #expect(try h.events().map(\.kind) == [.setOwner, .captureEnd])
        #expect(h.log.contains { $0.contains("answers no request") })
    }
}
