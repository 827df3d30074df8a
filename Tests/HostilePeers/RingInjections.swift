import CSupport
import Foundation
import Glibc
import VhostUser
import VirtioProtocol

/// Driver violations on a live back-end's rings, each with the rule it breaks: a front-end that
/// sets up one queue pair (RX vq 0, TX vq 1) the way a virtio-net driver does, checks that the
/// back-end serves the TX ring (a good packet first), then breaks the rule on TX once and, where
/// the device gives the chain back at once, puts its descriptors right again, so only a trace
/// that saw the exposure itself can tell. Used against `dpdk-testpmd` through `record` and
/// `record --interpose` (their recall side by side).
public struct RingInjection: Sendable {
    public let name: String
    public let rule: RuleID
    /// Negotiate INDIRECT_DESC (off only to break VQ-INDIRECT-FEATURE).
    public let indirect: Bool
    /// The injection, given the TX ring and the RX ring.
    let act: @Sendable (InjectionRing, InjectionRing) -> Void

    public static let all: [RingInjection] = [
        // A receive buffer the device holds until a packet arrives: rewritten while it waits.
        RingInjection(name: "descriptor-rewritten-after-kick", rule: .vqDriverOwnership, indirect: true) { r, rx in
            rx.ring.simpleBuffer(0, bufferOffset: rx.packetOffset(0), len: 2048, write: true)
            rx.expose(head: 0); rx.kick()
            usleep(50_000)
            rx.ring.simpleBuffer(0, bufferOffset: rx.packetOffset(0), len: 1024, write: true)   // the device owns it
            r.packet(1); r.expose(head: 1); r.kick()   // a packet for testpmd to forward into it
            rx.waitUsed()
        },
        RingInjection(name: "chain-re-exposed-in-flight", rule: .vqDriverOwnership, indirect: true) { r, _ in
            r.packet(1)
            r.ring.availSlot(pos: r.pos, head: 1); r.ring.availSlot(pos: r.pos &+ 1, head: 1)
            r.publish(2); r.kick(); r.waitUsed()
        },
        RingInjection(name: "chain-order-completed-at-once", rule: .vqChainOrder, indirect: true) { r, _ in
            r.ring.desc(1, addr: r.mem.guest(r.packetOffset(1)), len: 12, flags: [.write, .next], next: 2)
            r.ring.desc(2, addr: r.mem.guest(r.packetOffset(2)), len: 60)
            r.expose(head: 1); r.kick(); r.waitUsed()
            r.ring.desc(1, addr: r.mem.guest(r.packetOffset(1)), len: 12, flags: .next, next: 2)   // evidence gone
        },
        RingInjection(name: "head-out-of-range", rule: .vqDescIndex, indirect: true) { r, _ in
            r.expose(head: UInt16(r.ring.size + 44)); r.kick(); r.waitUsed()
        },
        RingInjection(name: "next-out-of-range", rule: .vqDescIndex, indirect: true) { r, _ in
            r.ring.desc(1, addr: r.mem.guest(r.packetOffset(1)), len: 72, flags: .next, next: UInt16(r.ring.size + 7))
            r.expose(head: 1); r.kick(); r.waitUsed()
            r.packet(1)
        },
        RingInjection(name: "chain-loop", rule: .vqChainLoop, indirect: true) { r, _ in
            r.ring.desc(1, addr: r.mem.guest(r.packetOffset(1)), len: 36, flags: .next, next: 2)
            r.ring.desc(2, addr: r.mem.guest(r.packetOffset(2)), len: 36, flags: .next, next: 1)
            r.expose(head: 1); r.kick(); r.waitUsed()
            r.packet(1)
        },
        RingInjection(name: "indirect-with-next", rule: .vqIndirectNext, indirect: true) { r, _ in
            r.table(at: 0xC000, [(r.packetOffset(1), 72, [])])
            r.ring.desc(1, addr: r.mem.guest(0xC000), len: 16, flags: [.indirect, .next], next: 2)
            r.ring.desc(2, addr: r.mem.guest(r.packetOffset(2)), len: 8)
            r.expose(head: 1); r.kick(); r.waitUsed()
            r.ring.desc(1, addr: r.mem.guest(0xC000), len: 16, flags: .indirect)
        },
        RingInjection(name: "nested-indirect", rule: .vqIndirectNested, indirect: true) { r, _ in
            r.table(at: 0xC000, [(0xC100, 16, .indirect)])
            r.table(at: 0xC100, [(r.packetOffset(1), 72, [])])
            r.ring.desc(1, addr: r.mem.guest(0xC000), len: 16, flags: .indirect)
            r.expose(head: 1); r.kick(); r.waitUsed()
            r.table(at: 0xC000, [(r.packetOffset(1), 72, [])])
        },
        RingInjection(name: "indirect-len-not-a-multiple-of-16", rule: .vqIndirectLen, indirect: true) { r, _ in
            r.table(at: 0xC000, [(r.packetOffset(1), 72, [])])
            r.ring.desc(1, addr: r.mem.guest(0xC000), len: 20, flags: .indirect)
            r.expose(head: 1); r.kick(); r.waitUsed()
            r.ring.desc(1, addr: r.mem.guest(0xC000), len: 16, flags: .indirect)
        },
        RingInjection(name: "indirect-without-the-feature", rule: .vqIndirectFeature, indirect: false) { r, _ in
            r.table(at: 0xC000, [(r.packetOffset(1), 72, [])])
            r.ring.desc(1, addr: r.mem.guest(0xC000), len: 16, flags: .indirect)
            r.expose(head: 1); r.kick(); r.waitUsed()
            r.packet(1)
        },
        RingInjection(name: "more-buffers-than-the-queue-size", rule: .vqInflight, indirect: true) { r, _ in
            let n = r.ring.size
            for h in 1..<n { r.packet(h) }
            for k in 0...n { r.ring.availSlot(pos: r.pos &+ UInt16(k), head: UInt16(1 + k % (n - 1))) }
            r.publish(n + 1); r.kick(); r.waitUsed()
        },
    ]

    /// Runs the injection as a front-end on `socket` (the recorder's listen socket, with the
    /// back-end behind it). Returns whether the back-end served the warm-up packet (nothing is
    /// injected otherwise) and gave something back after the injection.
    public func run(socket path: String, ringSize: Int = 256, settle: Double = 0.3) -> (served: Bool, completed: Bool) {
        guard let s = PeerSocket.connect(path, within: 5) else { return (false, false) }
        let fe = HostileFrontEnd(socket: s, path: path, memorySize: 1 << 20, drainReplies: true)
        defer { fe.end(drain: 0.1) }
        var features = FeatureBit.version1.mask | FeatureBit.protocolFeatures.mask
        if indirect { features |= FeatureBit.indirectDesc.mask }
        fe.handshake(features: features)
        let rx = fe.ring(size: ringSize, at: 0x20000), tx = fe.ring(size: ringSize, at: 0)
        var kicks: [Int32] = []
        for (vq, ring) in [(UInt32(0), rx), (1, tx)] {
            let call = fe.keep(cs_eventfd())
            fe.send(Message(.setVringCall, payload: VringFile(index: UInt8(vq)), fds: [call]))
            fe.setUp(ring, vq: vq, kick: false)
            let k = fe.keep(cs_eventfd())
            fe.send(Message(.setVringKick, payload: VringFile(index: UInt8(vq)), fds: [k]))
            kicks.append(k)
        }
        let r = InjectionRing(ring: tx, kickFd: kicks[1], buffers: 0x40000), rxr = InjectionRing(ring: rx, kickFd: kicks[0], buffers: 0x60000)
        // Warm-up: a good packet at position 0, head 0, until the device gives it back.
        r.packet(0); r.expose(head: 0); r.kick()
        guard r.waitUsed(within: 5) else { return (false, false) }
        let before = r.usedIdx
        act(r, rxr)
        let completed = r.usedIdx != before
        fe.pause(settle)
        return (true, completed)
    }
}

/// The TX ring as an injection writes it.
public final class InjectionRing: @unchecked Sendable {
    public let ring: SplitRingWriter
    public var mem: GuestMemory { ring.memory }
    let kickFd: Int32
    /// The next avail position.
    public private(set) var pos: UInt16 = 0

    let buffers: Int

    init(ring: SplitRingWriter, kickFd: Int32, buffers: Int) { self.ring = ring; self.kickFd = kickFd; self.buffers = buffers }

    public func packetOffset(_ head: Int) -> Int { buffers + 128 * head }
    /// A device-readable virtio-net packet (12-byte header, 60 bytes of frame) in descriptor `head`.
    public func packet(_ head: Int) {
        mem.fill(0, at: packetOffset(head), count: 72)
        for k in 0..<12 { mem.put(UInt8(0xff), at: packetOffset(head) + 12 + k) }   // broadcast dst, src
        ring.simpleBuffer(head, bufferOffset: packetOffset(head), len: 72)
    }
    /// An indirect table of (guest offset, len, flags) entries at guest offset `offset`.
    public func table(at offset: Int, _ entries: [(Int, UInt32, SplitRing.DescFlags)]) {
        for (k, e) in entries.enumerated() {
            let o = offset + 16 * k
            mem.put(mem.guest(e.0), at: o); mem.put(e.1, at: o + 8); mem.put(e.2.rawValue, at: o + 12); mem.put(UInt16(0), at: o + 14)
        }
    }
    public func expose(head: UInt16) { ring.availSlot(pos: pos, head: head); publish(1) }
    public func publish(_ count: Int) {
        pos = pos &+ UInt16(truncatingIfNeeded: count)
        ring.availIdx(pos)
    }
    public func kick() { _ = EventNotifier.signal(kickFd) }
    public var usedIdx: UInt16 { mem.get(UInt16.self, at: ring.usedOffset + 2) }
    /// Waits (bounded) until the device has given back everything up to `pos`, or anything new.
    @discardableResult
    public func waitUsed(within s: Double = 1) -> Bool {
        let start = usedIdx
        let end = Date().addingTimeInterval(s)
        while Date() < end {
            let u = usedIdx
            if u == pos || (u != start && s < 5) { return true }
            usleep(200)
        }
        return usedIdx == pos
    }
}
