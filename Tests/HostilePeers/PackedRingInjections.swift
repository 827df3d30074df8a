import CSupport
import Foundation
import Glibc
import VhostUser
import VirtioProtocol

/// Driver violations on a live back-end's packed rings (VIRTIO_F_RING_PACKED), each with the rule
/// it breaks: a front-end that sets up one packed queue pair (RX vq 0, TX vq 1), checks that the
/// back-end serves the TX ring (a good packet first), then breaks the rule once. Used against
/// `dpdk-testpmd` through `record --interpose` (`InterposeInjectionTests`).
public struct PackedRingInjection: Sendable {
    public let name: String
    public let rule: RuleID
    /// The injection, given the TX ring and the RX ring.
    let act: @Sendable (PackedInjectionRing, PackedInjectionRing) -> Void

    public static let all: [PackedRingInjection] = [
        // A receive buffer the device holds until a packet arrives: its length rewritten while it waits.
        PackedRingInjection(name: "packed-descriptor-rewritten-while-the-device-holds-it", rule: .packedFlagsLast) { tx, rx in
            rx.receiveBuffer(id: 0, len: 2048)
            rx.kick()
            usleep(50_000)
            rx.mem.put(UInt32(1024), at: rx.ring.descOffset + 16 * rx.ring.slot(0) + 8)   // the device owns it
            tx.packet(id: 1); tx.kick()   // a packet for testpmd to forward into it
            rx.waitUsed(0)
        },
        // A list of two (header, frame) whose first descriptor is made available before the second.
        PackedRingInjection(name: "packed-list-head-made-available-first", rule: .packedChainHeadLast) { tx, _ in
            tx.packet(id: 1, split: true, headFirst: true)
            tx.kick(); tx.waitUsed(tx.avail - 2)
        },
        // Two lists in flight with one buffer id.
        PackedRingInjection(name: "packed-buffer-id-reused-in-flight", rule: .packedBufferId) { tx, _ in
            tx.packet(id: 1); tx.packet(id: 1)
            tx.kick(); tx.waitUsed(tx.avail - 1)
        },
        // NEXT on every descriptor the driver may make available: a list that never ends.
        PackedRingInjection(name: "packed-list-without-end", rule: .vqChainLoop) { tx, _ in
            let n = tx.ring.size
            let p = tx.avail
            for k in 0..<n { tx.ring.body(p + k, addr: tx.mem.guest(tx.packetOffset(k)), len: 72, id: 1) }
            for k in Array(1..<n) + [0] { tx.ring.storeFlags(p + k, PackedRing.Flags.available(wrap: tx.ring.wrap(p + k)).union(.next)) }
            tx.kick()
            usleep(100_000)
        },
        // An indirect descriptor with NEXT as well, then the next descriptor of the list.
        PackedRingInjection(name: "packed-indirect-with-next", rule: .vqIndirectNext) { tx, _ in
            tx.table(at: 0xC000, [(tx.packetOffset(1), 72, [])])
            let p = tx.avail
            tx.ring.body(p, addr: tx.mem.guest(0xC000), len: 16, id: 1)
            tx.ring.body(p + 1, addr: tx.mem.guest(tx.packetOffset(2)), len: 8, id: 1)
            tx.ring.storeFlags(p + 1, .available(wrap: tx.ring.wrap(p + 1)))
            tx.ring.storeFlags(p, PackedRing.Flags.available(wrap: tx.ring.wrap(p)).union([.indirect, .next]))
            tx.advance(2)
            tx.kick(); tx.waitUsed(p)
        },
        // An indirect table whose entry has NEXT (only WRITE is valid there).
        PackedRingInjection(name: "packed-indirect-entry-with-next", rule: .packedIndirectFlags) { tx, _ in
            tx.table(at: 0xC000, [(tx.packetOffset(1), 12, .next), (tx.packetOffset(1) + 12, 60, [])])
            let p = tx.avail
            tx.ring.body(p, addr: tx.mem.guest(0xC000), len: 32, id: 1)
            tx.ring.storeFlags(p, PackedRing.Flags.available(wrap: tx.ring.wrap(p)).union(.indirect))
            tx.advance(1)
            tx.kick(); tx.waitUsed(p)
        },
    ]

    /// Runs the injection as a front-end on `socket` (the recorder's listen socket, with the
    /// back-end behind it). Returns whether the back-end served the warm-up packet (nothing is
    /// injected otherwise).
    public func run(socket path: String, ringSize: Int = 256, settle: Double = 0.3) -> Bool {
        guard let s = PeerSocket.connect(path, within: 5) else { return false }
        let fe = HostileFrontEnd(socket: s, path: path, memorySize: 1 << 21, drainReplies: true)
        defer { fe.end(drain: 0.1) }
        fe.handshake(features: FeatureBit.version1.mask | FeatureBit.protocolFeatures.mask | FeatureBit.indirectDesc.mask | FeatureBit.ringPacked.mask)
        let rx = PackedRingWriter(memory: fe.memory, size: ringSize, at: 0x20000), tx = PackedRingWriter(memory: fe.memory, size: ringSize, at: 0)
        var kicks: [Int32] = []
        for (vq, ring) in [(UInt32(0), rx), (1, tx)] {
            let call = fe.keep(cs_eventfd())
            fe.send(Message(.setVringCall, payload: VringFile(index: UInt8(vq)), fds: [call]))
            fe.send(Message(.setVringNum, payload: VringState(index: vq, num: UInt32(ringSize))))
            fe.send(Message(.setVringBase, payload: VringState(index: vq, num: 0x8000)))
            fe.send(Message(.setVringAddr, payload: VringAddress(index: vq, desc: ring.descAddr, used: ring.deviceEventAddr, avail: ring.driverEventAddr)))
            fe.send(Message(.setVringEnable, payload: VringState(index: vq, num: 1)))
            let k = fe.keep(cs_eventfd())
            fe.send(Message(.setVringKick, payload: VringFile(index: UInt8(vq)), fds: [k]))
            kicks.append(k)
        }
        let t = PackedInjectionRing(ring: tx, kickFd: kicks[1], buffers: 0x40000), r = PackedInjectionRing(ring: rx, kickFd: kicks[0], buffers: 0x80000)
        // Warm-up: a good packet at position 0, id 0, until the device gives it back.
        t.packet(id: 0); t.kick()
        guard t.waitUsed(0, within: 5) else { return false }
        act(t, r)
        fe.pause(settle)
        return true
    }
}

/// A packed ring as an injection writes it: the driver's next position and its buffers.
public final class PackedInjectionRing: @unchecked Sendable {
    public let ring: PackedRingWriter
    public var mem: GuestMemory { ring.memory }
    let kickFd: Int32
    let buffers: Int
    /// The driver's next position.
    public private(set) var avail = 0

    init(ring: PackedRingWriter, kickFd: Int32, buffers: Int) { self.ring = ring; self.kickFd = kickFd; self.buffers = buffers }

    public func packetOffset(_ k: Int) -> Int { buffers + 128 * (k % 256) }
    public func advance(_ n: Int) { avail += n }

    /// A device-readable virtio-net packet (12-byte header, 60 bytes of broadcast frame) made
    /// available at the next position: one descriptor, or (`split`) header and frame as a list of
    /// two, its first descriptor's flags last (or first, `headFirst`, with the second's 20 ms later).
    public func packet(id: UInt16, split: Bool = false, headFirst: Bool = false) {
        let o = packetOffset(avail)
        mem.fill(0, at: o, count: 72)
        for k in 0..<12 { mem.put(UInt8(0xff), at: o + 12 + k) }
        let p = avail
        guard split else {
            ring.body(p, addr: mem.guest(o), len: 72, id: id)
            ring.storeFlags(p, .available(wrap: ring.wrap(p)))
            avail += 1
            return
        }
        ring.body(p, addr: mem.guest(o), len: 12, id: id)
        ring.body(p + 1, addr: mem.guest(o + 12), len: 60, id: id)
        let head = PackedRing.Flags.available(wrap: ring.wrap(p)).union(.next), tail = PackedRing.Flags.available(wrap: ring.wrap(p + 1))
        if headFirst {
            ring.storeFlags(p, head); kick(); usleep(20_000); ring.storeFlags(p + 1, tail)
        } else {
            ring.storeFlags(p + 1, tail); ring.storeFlags(p, head)
        }
        avail += 2
    }

    /// A device-writable receive buffer of `len` bytes at the next position.
    public func receiveBuffer(id: UInt16, len: UInt32) {
        let p = avail
        ring.body(p, addr: mem.guest(buffers + 2048 * (p % 64)), len: len, id: id)
        ring.storeFlags(p, PackedRing.Flags.available(wrap: ring.wrap(p)).union(.write))
        avail += 1
    }

    /// An indirect table of (guest offset, len, flags) entries at guest offset `offset`.
    public func table(at offset: Int, _ entries: [(Int, UInt32, PackedRing.Flags)]) {
        for (k, e) in entries.enumerated() {
            let o = offset + 16 * k
            mem.put(mem.guest(e.0), at: o); mem.put(e.1, at: o + 8); mem.put(UInt16(0), at: o + 12); mem.put(e.2.rawValue, at: o + 14)
        }
    }

    public func kick() { _ = EventNotifier.signal(kickFd) }

    /// Waits (bounded) until the descriptor at position `q` is marked used.
    @discardableResult
    public func waitUsed(_ q: Int, within s: Double = 1) -> Bool {
        let end = Date().addingTimeInterval(s)
        while Date() < end {
            let f = PackedRing.Flags(rawValue: mem.get(UInt16.self, at: ring.descOffset + 16 * ring.slot(q) + 14) ?? 0)
            if f.isUsed(wrap: ring.wrap(q)) { return true }
            usleep(200)
        }
        return false
    }
}
