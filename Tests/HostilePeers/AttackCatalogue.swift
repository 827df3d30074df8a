import CSupport
import Foundation
import Glibc
import TraceFormat
import VhostUser
import VirtioProtocol

/// Every hostile-peer class the suite runs, as data: what the peer does, and what the peer under
/// test must do about it. Exit statuses are the `CheckExit` codes: 0 valid and every ring
/// followed, 2 the framing was broken or a peer stalled, 3 a ring not followed / a gap / a message
/// the trace cannot say. Counted by the suite, not by hand.
public enum AttackCatalogue {
    public typealias E = Attack.Expectation
    static let ok = E(exit: [0])
    static func broken(_ message: String) -> E { E(exit: [2], message: message) }
    static func gap(_ r: RingGapReason, _ message: String? = nil) -> E { E(exit: [3], message: message, gap: r) }

    /// Handshake, one ring of `size` at offset 0 started, then `then`.
    static func onRing(size: Int = 8, features: UInt64 = HostileFrontEnd.defaultFeatures, _ then: @escaping @Sendable (HostileFrontEnd, SplitRingWriter) -> Void) -> @Sendable (HostileFrontEnd) -> Void {
        { fe in
            let ring = fe.ring(size: size)
            fe.handshake(features: features)
            fe.setUp(ring)
            fe.pause(0.05)
            then(fe, ring)
            fe.pause(0.1)
        }
    }

    /// Handshake with the given table (regions, fds), one ring at offset 0 started.
    static func withTable(_ table: @escaping @Sendable (HostileFrontEnd) -> ([MemoryRegionDescription], [Int32])) -> @Sendable (HostileFrontEnd) -> Void {
        { fe in
            let (regions, fds) = table(fe)
            fe.handshake(regions: regions, fds: fds)
            fe.setUp(fe.ring())
            fe.pause(0.2)
        }
    }

    static func header(_ request: UInt32, size: UInt32, flags: UInt32 = 1) -> [UInt8] {
        MessageHeader(request: request, flags: MessageHeader.Flags(rawValue: flags), size: size).encode()
    }

    static func memfd(_ fe: HostileFrontEnd, _ size: Int64 = 4096) -> Int32 { fe.keep(cs_memfd("hostile", size)) }

    // MARK: the catalogue

    public static let framing: [Attack] = [
        // The stalls last beyond the deadline and its grace: a recorder that waits for the peer hangs.
        Attack("truncated-header-then-silence", .framing, expect: broken("stalled")) { fe in
            fe.raw([1, 0, 0, 0, 0]); _ = fe.waitForClose(8)
        },
        Attack("truncated-header-then-close", .framing, expect: broken("truncated header")) { fe in fe.raw([1, 0, 0, 0, 0]) },
        Attack("truncated-payload-then-silence", .framing, expect: broken("mid-payload")) { fe in
            fe.raw(header(2, size: 8) + [1, 2, 3, 4]); _ = fe.waitForClose(8)
        },
        Attack("truncated-payload-then-close", .framing, expect: broken("payload truncated")) { fe in fe.raw(header(2, size: 8) + [1, 2, 3, 4]) },
        Attack("oversized-payload-announced", .framing, expect: broken("announces a")) { fe in fe.raw(header(2, size: 1 << 20)) },
        Attack("payload-at-the-size-limit", .framing, expect: ok) { fe in
            fe.raw(header(9999, size: UInt32(Channel.maxPayload)) + [UInt8](repeating: 0xAB, count: Channel.maxPayload))
        },
        Attack("payload-one-byte-over-the-limit", .framing, expect: broken("announces a")) { fe in
            fe.raw(header(9999, size: UInt32(Channel.maxPayload + 1)) + [UInt8](repeating: 0xAB, count: Channel.maxPayload + 1))
        },
        Attack("messages-trickled-byte-by-byte", .framing, expect: ok) { fe in
            for m in [Message(.setOwner), Message(.setFeatures, payload: U64Payload(HostileFrontEnd.defaultFeatures))] {
                for b in m.bytes { fe.raw([b]); fe.pause(0.002) }
            }
        },
        Attack("header-alone-then-payload-with-fds", .framing, expect: ok) { fe in
            let m = Message(.setMemTable, payload: MemoryTablePayload(regions: [fe.memory.region()]))
            fe.raw(Array(m.bytes.prefix(12))); fe.pause(0.05)
            fe.raw(Array(m.bytes.dropFirst(12)), fds: [fe.memory.fd])
        },
        Attack("bad-version-bits", .framing, expect: ok) { fe in
            fe.raw(header(3, size: 0, flags: 0)); fe.raw(header(3, size: 0, flags: 3)); fe.raw(header(3, size: 0, flags: 0xFFFF_FFF0))
        },
        Attack("unknown-request-ids", .framing, expect: ok) { fe in
            for r: UInt32 in [0, 44, 100, 9999, UInt32.max] { fe.raw(header(r, size: 4) + [1, 2, 3, 4]) }
        },
        Attack("short-payload-for-every-request", .framing, expect: E(exit: [0], message: "too short")) { fe in
            for r in VhostUserRequest.allCases { fe.raw(header(r.rawValue, size: 2) + [7, 7]) }
        },
        Attack("reply-flag-on-requests", .framing, expect: ok) { fe in
            fe.raw(header(3, size: 0, flags: 0x5)); fe.send(Message(.setVringNum, flags: [.version1, .reply], payload: VringState(index: 0, num: 8)))
        },
        Attack("need-reply-without-reply-ack", .framing, expect: ok) { fe in
            fe.send(Message(.setOwner)); fe.send(Message(.setVringNum, flags: [.version1, .needReply], payload: VringState(index: 0, num: 8)))
        },
        Attack("message-flood", .floods, duration: 10, expect: ok) { fe in
            for _ in 0..<20_000 { fe.send(Message(.setVringNum, payload: VringState(index: 0, num: 8))) }
        },
        Attack("random-message-stream", .framing, expect: E(exit: [0, 2, 3])) { fe in
            var rng = SeededRandom(seed: 9)
            for _ in 0..<400 {
                let req = UInt32(rng.next() % 48)
                let n = Int(rng.next() % 48)
                let payload = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                let fds = rng.next() % 8 == 0 ? [fe.memory.fd] : []
                fe.raw(header(req, size: UInt32(n), flags: UInt32(rng.next() % 16)) + payload, fds: fds)
            }
        },
    ]

    public static let disconnects: [Attack] = [
        Attack("connection-reset", .disconnects, expect: ok) { fe in
            fe.send(Message(.setOwner))
            var l = linger(l_onoff: 1, l_linger: 0)
            setsockopt(fe.socket.fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        },
        Attack("half-close", .disconnects, expect: ok) { fe in
            fe.send(Message(.setOwner)); shutdown(fe.socket.fd, Int32(SHUT_WR)); fe.pause(0.3)
        },
        // 200 exposures without a pause: the poller may be lapped (a gap), never confused.
        Attack("disconnect-mid-traffic", .disconnects, expect: E(exit: [0, 3]), run: onRing(size: 64) { fe, ring in
            fe.traffic(ring, count: 200, pace: 0)
        }),
        Attack("front-end-stops-reading", .stalls, drainReplies: false, duration: 10,
               expect: broken("stopped reading")) { fe in
            for _ in 0..<50_000 where fe.raw(Message(.getFeatures).bytes, within: 0.5) {}
            fe.pause(1)
        },
    ]

    public static let fds: [Attack] = [
        Attack("nine-fds-on-one-message", .fds, expect: broken("file descriptors")) { fe in
            fe.raw(Message(.setOwner).bytes, fds: (0..<9).map { _ in memfd(fe) })
        },
        Attack("forty-fds-on-one-message", .fds, expect: broken("file descriptors")) { fe in
            fe.raw(Message(.setOwner).bytes, fds: (0..<40).map { _ in memfd(fe) })
        },
        Attack("fd-on-a-message-that-takes-none", .fds, expect: ok) { fe in fe.raw(Message(.setOwner).bytes, fds: [memfd(fe)]) },
        Attack("mem-table-with-fewer-fds-than-regions", .fds, expect: gap(.unmapped, "fd(s) came with it"), run: withTable { fe in
            ([fe.memory.region(), MemoryRegionDescription(guestAddr: 1 << 40, size: 4096, userAddr: 1 << 41)], [fe.memory.fd])
        }),
        Attack("mem-table-with-more-fds-than-regions", .fds, expect: gap(.unmapped, "fd(s) came with it"), run: withTable { fe in
            ([fe.memory.region()], [fe.memory.fd, fe.memory.fd])
        }),
        Attack("region-fd-is-a-socket", .fds, expect: gap(.unmapped, "not a memory file"), run: withTable { fe in
            var sv: [Int32] = [0, 0]
            socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sv)
            _ = fe.keep(sv[1])
            return ([fe.memory.region()], [fe.keep(sv[0])])
        }),
        Attack("region-fd-is-a-pipe", .fds, expect: gap(.unmapped, "not a memory file"), run: withTable { fe in
            var p: [Int32] = [0, 0]
            pipe(&p)
            _ = fe.keep(p[1])
            return ([fe.memory.region()], [fe.keep(p[0])])
        }),
        Attack("kick-fd-is-a-pipe-with-relayed-notifications", .notifications, args: ["--relay-notifications"],
               expect: E(exit: [0], message: "not an eventfd")) { fe in
            let ring = fe.ring()
            fe.handshake(); fe.setUp(ring, kick: false)
            var p: [Int32] = [0, 0]
            pipe(&p)
            fe.send(Message(.setVringKick, payload: VringFile(index: 0), fds: [fe.keep(p[0])]))
            _ = fe.keep(p[1])
            var b: UInt8 = 1
            write(p[1], &b, 1)
            fe.pause(0.2)
        },
        Attack("kick-fd-is-a-regular-file-with-relayed-notifications", .notifications, args: ["--relay-notifications"],
               expect: E(exit: [0], message: "not an eventfd")) { fe in
            let ring = fe.ring()
            fe.handshake(); fe.setUp(ring, kick: false)
            let f = fe.keep(open("/etc/hostname", O_RDONLY | O_CLOEXEC))
            fe.send(Message(.setVringKick, payload: VringFile(index: 0), fds: [f]))
            fe.pause(0.2)
        },
        Attack("nofd-bit-with-an-fd-attached", .fds, expect: ok) { fe in
            fe.send(Message(.setOwner))
            fe.send(Message(.setVringCall, payload: VringFile(index: 0, noFd: true), fds: [fe.keep(cs_eventfd())]))
        },
        Attack("fds-split-across-header-and-payload", .fds, expect: ok) { fe in
            let a = memfd(fe, 1 << 16), b = memfd(fe, 1 << 16)
            let m = Message(.setMemTable, payload: MemoryTablePayload(regions: [fe.memory.region(),
                MemoryRegionDescription(guestAddr: 1 << 40, size: 1 << 16, userAddr: 1 << 44),
                MemoryRegionDescription(guestAddr: 2 << 40, size: 1 << 16, userAddr: 2 << 44)]))
            fe.send(Message(.setOwner))
            fe.raw(Array(m.bytes.prefix(12)), fds: [fe.memory.fd, a]); fe.pause(0.02)
            fe.raw(Array(m.bytes.dropFirst(12)), fds: [b])
        },
        Attack("fd-flood", .floods, duration: 10, expect: ok) { fe in
            fe.send(Message(.setOwner))
            for _ in 0..<2000 {
                let e = cs_eventfd()
                fe.send(Message(.setVringCall, payload: VringFile(index: 0), fds: [e]))
                close(e)
            }
        },
    ]

    public static let memoryTables: [Attack] = [
        Attack("region-larger-than-its-memfd", .memoryTables, expect: gap(.unmapped, "beyond the end of its file"), run: withTable { fe in
            ([fe.memory.region(size: 1 << 30)], [fe.memory.fd])
        }),
        Attack("mmap-offset-beyond-the-memfd", .memoryTables, expect: gap(.unmapped, "beyond the end of its file"), run: withTable { fe in
            ([fe.memory.region(size: 4096, mmapOffset: 1 << 30)], [fe.memory.fd])
        }),
        Attack("size-plus-offset-overflows", .memoryTables, expect: gap(.unmapped, "overflow"), run: withTable { fe in
            ([fe.memory.region(size: 1 << 16, mmapOffset: UInt64.max - 4096)], [fe.memory.fd])
        }),
        Attack("guest-range-overflows", .memoryTables, expect: gap(.unmapped, "overflow"), run: withTable { fe in
            ([MemoryRegionDescription(guestAddr: UInt64.max - 10, size: 1 << 16, userAddr: fe.memory.userAddr)], [fe.memory.fd])
        }),
        Attack("user-range-overflows", .memoryTables, expect: gap(.unmapped, "overflow"), run: withTable { fe in
            ([MemoryRegionDescription(guestAddr: 0, size: 1 << 16, userAddr: UInt64.max - 10)], [fe.memory.fd])
        }),
        Attack("nine-regions", .memoryTables, expect: gap(.unmapped, "malformed"), run: withTable { fe in
            (Array(repeating: fe.memory.region(), count: 9), Array(repeating: fe.memory.fd, count: 8))
        }),
        Attack("empty-table", .memoryTables, expect: gap(.unmapped), run: withTable { _ in ([], []) }),
        Attack("table-shorter-than-its-count", .memoryTables, expect: gap(.unmapped, "malformed")) { fe in
            fe.send(Message(.setOwner))
            var p = MemoryTablePayload(regions: [fe.memory.region()]).encode()
            p[0] = 4
            fe.raw(header(5, size: UInt32(p.count)) + p, fds: [fe.memory.fd])
            fe.setUp(fe.ring()); fe.pause(0.2)
        },
        Attack("overlapping-regions", .memoryTables, expect: gap(.unmapped, "overlaps"), run: withTable { fe in
            ([fe.memory.region(), MemoryRegionDescription(guestAddr: fe.memory.guestAddr + 4096, size: 4096, userAddr: 1 << 46)],
             [fe.memory.fd, fe.memory.fd])
        }),
        Attack("zero-size-region", .memoryTables, expect: gap(.unmapped, "empty"), run: withTable { fe in
            ([fe.memory.region(size: 0)], [fe.memory.fd])
        }),
        Attack("memfd-shrunk-while-polled", .memoryTables, expect: gap(.memoryFault), run: onRing { fe, ring in
            fe.traffic(ring, count: 10)
            fe.memory.truncate(to: 0); fe.pause(0.2)
            fe.memory.restore(); fe.pause(0.1)
            fe.traffic(ring, count: 10, from: 10)
        }),
        Attack("memfd-shrunk-and-regrown-repeatedly", .memoryTables, expect: E(exit: [0, 3]), run: onRing { fe, ring in
            for k in 0..<50 {
                fe.memory.truncate(to: k % 2 == 0 ? 0 : 1 << 16)
                ring.simpleBuffer(k % 8, bufferOffset: 0x8000)
                ring.expose(head: UInt16(k % 8), at: UInt16(k))
                fe.pause(0.002)
            }
            fe.memory.restore()
        }),
        Attack("indirect-table-beyond-a-shrunk-memfd", .memoryTables, expect: gap(.memoryFault), run: onRing { fe, ring in
            ring.desc(0, addr: fe.memory.guest(0xF000), len: 64, flags: .indirect)
            fe.memory.truncate(to: 0x8000)
            ring.expose(head: 0, at: 0); fe.pause(0.2)
            fe.memory.restore()
        }),
        Attack("add-mem-reg-beyond-its-file", .memoryTables, expect: gap(.unmapped, "beyond the end of its file")) { fe in
            fe.send(Message(.setOwner))
            fe.send(Message(.addMemReg, payload: SingleRegionPayload(region: fe.memory.region(size: 1 << 30)), fds: [fe.memory.fd]))
            fe.setUp(fe.ring()); fe.pause(0.2)
        },
        Attack("add-mem-reg-flood", .memoryTables, duration: 10, expect: E(exit: [0], message: "already has 512 regions")) { fe in
            fe.send(Message(.setOwner))
            let f = memfd(fe, 4096)
            for k in 0..<600 {
                let r = MemoryRegionDescription(guestAddr: UInt64(k) << 20, size: 4096, userAddr: (UInt64(k) << 20) + (1 << 40))
                fe.send(Message(.addMemReg, payload: SingleRegionPayload(region: r), fds: [f]))
            }
        },
        Attack("rem-mem-reg-of-an-unknown-region", .memoryTables, expect: ok) { fe in
            fe.send(Message(.setOwner))
            fe.send(Message(.remMemReg, payload: SingleRegionPayload(region: MemoryRegionDescription(guestAddr: 1, size: 2, userAddr: 3))))
        },
        Attack("mem-table-replaced-while-polled", .memoryTables, expect: ok, run: onRing { fe, ring in
            fe.traffic(ring, count: 5)
            fe.send(Message(.setMemTable, payload: MemoryTablePayload(regions: [fe.memory.region()]), fds: [fe.memory.fd]))
            fe.pause(0.05)
            fe.traffic(ring, count: 5, from: 5)
        }),
        Attack("mem-table-replaced-without-the-ring", .memoryTables, expect: gap(.unmapped), run: onRing { fe, ring in
            let other = memfd(fe, 1 << 16)
            fe.send(Message(.setMemTable, payload: MemoryTablePayload(regions: [MemoryRegionDescription(guestAddr: 0, size: 1 << 16, userAddr: 1 << 40)]), fds: [other]))
            fe.pause(0.1)
        }),
    ]

    public static let ringAddresses: [Attack] = [
        Attack("ring-outside-every-region", .ringAddresses, expect: gap(.unmapped, "not inside the mapped memory")) { fe in
            fe.handshake(); fe.setUp(fe.ring(), desc: 1 << 50, avail: 1 << 51, used: 1 << 52); fe.pause(0.2)
        },
        Attack("ring-straddles-the-region-end", .ringAddresses, expect: gap(.unmapped)) { fe in
            fe.handshake(); fe.setUp(fe.ring(), desc: fe.memory.user((1 << 16) - 64)); fe.pause(0.2)
        },
        Attack("queue-size-zero", .ringAddresses, expect: gap(.formatNotFollowed, "not a valid split ring size")) { fe in
            fe.handshake(); fe.setUp(fe.ring(), size: 0); fe.pause(0.2)
        },
        Attack("queue-size-not-a-power-of-two", .ringAddresses, expect: gap(.formatNotFollowed)) { fe in
            fe.handshake(); fe.setUp(fe.ring(), size: 1000); fe.pause(0.2)
        },
        Attack("queue-size-65536", .ringAddresses, expect: gap(.formatNotFollowed)) { fe in
            fe.handshake(); fe.setUp(fe.ring(), size: 65536); fe.pause(0.2)
        },
        Attack("queue-size-32768", .ringAddresses, memorySize: 1 << 20, expect: ok, run: onRing(size: 32768) { fe, ring in
            fe.traffic(ring, count: 10)
        }),
        Attack("misaligned-ring-addresses", .ringAddresses, expect: ok) { fe in
            fe.handshake()
            fe.setUp(fe.ring(), desc: fe.memory.user(0x3005), avail: fe.memory.user(0x1001), used: fe.memory.user(0x2003))
            fe.pause(0.1)
        },
        Attack("kick-before-ring-addresses", .ringAddresses, expect: gap(.unmapped, "no SET_VRING_ADDR")) { fe in
            fe.handshake()
            fe.send(Message(.setVringNum, payload: VringState(index: 0, num: 8)))
            fe.kick(0); fe.pause(0.2)
        },
        Attack("ring-address-changed-while-running", .ringAddresses, expect: ok, run: onRing { fe, ring in
            fe.traffic(ring, count: 5)
            fe.send(Message(.setVringAddr, payload: VringAddress(index: 0, desc: 1 << 50, used: 1 << 51, avail: 1 << 52)))
            fe.traffic(ring, count: 5, from: 5)
        }),
        Attack("vring-index-300", .ringAddresses, expect: E(exit: [3], message: "beyond the trace's 256 queues")) { fe in
            fe.send(Message(.setOwner)); fe.send(Message(.setVringNum, payload: VringState(index: 300, num: 8)))
        },
        Attack("vring-index-32748", .ringAddresses, expect: E(exit: [3], message: "beyond the trace's")) { fe in
            fe.send(Message(.setOwner)); fe.send(Message(.setVringBase, payload: VringState(index: 32748, num: 0)))
        },
        Attack("vring-index-u32-max", .ringAddresses, expect: E(exit: [3], message: "beyond the trace's")) { fe in
            fe.send(Message(.setOwner)); fe.send(Message(.setVringAddr, payload: VringAddress(index: .max, desc: 0, used: 0, avail: 0)))
        },
        Attack("kick-beyond-the-queue-count", .ringAddresses, args: ["--queues", "2"], expect: E(exit: [3], message: "beyond the trace's 2 queues")) { fe in
            fe.handshake(); fe.setUp(fe.ring(), vq: 5); fe.pause(0.1)
        },
    ]

    public static let indices: [Attack] = [
        Attack("avail-idx-jumps-beyond-the-queue-size", .indices, expect: gap(.lap), run: onRing { _, ring in ring.availIdx(100) }),
        Attack("avail-idx-decrements", .indices, expect: gap(.lap), run: onRing { fe, ring in
            fe.traffic(ring, count: 3); fe.pause(0.05); ring.availIdx(1)
        }),
        Attack("used-idx-jumps-beyond-the-queue-size", .indices, expect: gap(.lap), run: onRing { _, ring in ring.usedIdx(300) }),
        // Recorded as read; judging it (VQ-DESC-INDEX, exit 1) is the checker's, on snapshots.
        Attack("head-out-of-range", .indices, expect: E(exit: [0], check: [0, 1]), run: onRing { _, ring in ring.expose(head: 200, at: 0) }),
        Attack("looping-chain-walked-from-every-slot", .indices, expect: gap(.workBound), run: onRing(size: 1024) { fe, ring in
            for i in 0..<1024 { ring.desc(i, addr: fe.memory.guest(0xF000), len: 16, flags: .next, next: UInt16((i + 1) % 1024)) }
            for k in 0..<1000 { ring.availSlot(pos: UInt16(k), head: UInt16(k)) }
            ring.availIdx(1000)
        }),
        Attack("indirect-tables-of-65536-entries", .indices, memorySize: 2 << 20, expect: gap(.workBound), run: onRing(size: 16) { fe, ring in
            for i in 0..<16 { ring.desc(i, addr: fe.memory.guest(1 << 20), len: 65536 * 16, flags: .indirect) }
            for k in 0..<15 { ring.availSlot(pos: UInt16(k), head: UInt16(k)) }
            ring.availIdx(15)
        }),
        Attack("indirect-length-near-4-gib", .indices, expect: gap(.unmapped, "indirect table"), run: onRing { fe, ring in
            ring.desc(0, addr: fe.memory.guest(0), len: 0xFFFF_FFF0, flags: .indirect)
            ring.expose(head: 0, at: 0)
        }),
        Attack("nested-indirect-tables", .indices, expect: E(exit: [0], check: [0, 1]), run: onRing { fe, ring in
            for k in 0..<4 { fe.memory.put(fe.memory.guest(0x9000), at: 0x9000 + 16 * k); fe.memory.put(UInt32(64), at: 0x9008 + 16 * k); fe.memory.put(UInt16(4), at: 0x900C + 16 * k) }
            ring.desc(0, addr: fe.memory.guest(0x9000), len: 64, flags: .indirect)
            ring.expose(head: 0, at: 0)
        }),
        Attack("base-far-from-the-used-index", .indices, expect: ok) { fe in
            let ring = fe.ring()
            ring.availIdx(1007); ring.usedIdx(1005)
            fe.handshake(); fe.setUp(ring, base: 1000); fe.pause(0.1)
        },
    ]

    public static let floods: [Attack] = [
        Attack("avail-index-spinning", .floods, duration: 5, expect: E(exit: [0, 3]), run: onRing(size: 256) { fe, ring in
            fe.traffic(ring, count: 20_000, pace: 0)
        }),
        Attack("kick-flood-with-relayed-notifications", .notifications, args: ["--relay-notifications"], duration: 5,
               expect: E(exit: [0], fdsReplaced: true)) { fe in
            let ring = fe.ring()
            fe.handshake(); fe.setUp(ring, kick: false)
            let k = fe.keep(cs_eventfd())
            fe.send(Message(.setVringKick, payload: VringFile(index: 0), fds: [k]))
            for _ in 0..<100_000 { _ = EventNotifier.signal(k) }
            fe.pause(0.1)
        },
    ]

    public static let rewrites: [Attack] = [
        Attack("rings-rewritten-at-random", .rewrites, expect: E(exit: [0, 3]), run: onRing(size: 64) { fe, ring in
            var rng = SeededRandom(seed: 1)
            let span = SplitRingWriter.span(size: 64)
            let end = Date().addingTimeInterval(1)
            while Date() < end {
                for _ in 0..<64 { fe.memory.put(UInt8(truncatingIfNeeded: rng.next()), at: Int(rng.next() % UInt64(span))) }
                usleep(100)
            }
        }),
        Attack("rings-and-file-size-rewritten-at-random", .rewrites, expect: E(exit: [0, 3]), run: onRing(size: 64) { fe, ring in
            var rng = SeededRandom(seed: 2)
            let span = SplitRingWriter.span(size: 64)
            let end = Date().addingTimeInterval(1)
            while Date() < end {
                fe.memory.truncate(to: rng.next() % 4 == 0 ? Int(rng.next() % UInt64(span)) : 1 << 16)
                for _ in 0..<64 { fe.memory.put(UInt8(truncatingIfNeeded: rng.next()), at: Int(rng.next() % UInt64(span))) }
                usleep(200)
            }
            fe.memory.restore()
        }),
        Attack("descriptors-rewritten-while-in-flight", .rewrites, expect: E(exit: [0, 3]), run: onRing(size: 64) { fe, ring in
            var rng = SeededRandom(seed: 3)
            for pos in 0..<2000 {
                let head = pos % 64
                ring.desc(head, addr: fe.memory.guest(0x8000), len: UInt32(truncatingIfNeeded: rng.next()),
                          flags: SplitRing.DescFlags(rawValue: UInt16(rng.next() % 8)), next: UInt16(rng.next() % 80))
                ring.expose(head: UInt16(head), at: UInt16(pos))
                if pos % 3 == 0 { ring.complete(id: UInt32(head), len: UInt32(rng.next() % 100), at: UInt16(pos)) }
            }
        }),
    ]

    public static let stalls: [Attack] = [
        Attack("sigterm-while-the-front-end-stalls-mid-message", .stalls, args: ["--stall-timeout", "30"], duration: 30, sigtermAfter: 0.5,
               expect: E(exit: [0], message: "interrupted")) { fe in
            fe.raw([1, 0, 0, 0, 0]); _ = fe.waitForClose(8)
        },
        // Nothing captured: a trace without a session is no success.
        Attack("sigterm-while-waiting-for-the-front-end", .stalls, duration: 30, sigtermAfter: 0.5, connects: false,
               expect: broken("interrupted before a front-end connected")) { _ in },
        Attack("no-front-end-within-the-accept-timeout", .stalls, args: ["--accept-timeout", "0.5"], connects: false,
               expect: broken("no front-end connected")) { _ in },
    ]

    /// The back-end misbehaves; the front-end is an ordinary one.
    static let ordinaryFrontEnd: @Sendable (HostileFrontEnd) -> Void = { fe in
        fe.handshake()
        fe.send(Message(.getProtocolFeatures))
        fe.send(Message(.setProtocolFeatures, payload: U64Payload(ProtocolFeatureBit.replyAck.mask | ProtocolFeatureBit.mq.mask)))
        fe.send(Message(.getQueueNum))
        fe.pause(0.3)
    }

    public static let backEnd: [Attack] = [
        Attack("back-end-stalls-mid-reply", .stalls, side: .backEnd, backEnd: .stallMidReply, expect: broken("back-end stalled")) { fe in
            ordinaryFrontEnd(fe); _ = fe.waitForClose(8)
        },
        Attack("back-end-stops-reading", .stalls, side: .backEnd, backEnd: .stopReading, duration: 10, expect: broken("back-end stalled")) { fe in
            for _ in 0..<50_000 where fe.raw(Message(.setVringNum, payload: VringState(index: 0, num: 8)).bytes, within: 0.5) {}
            fe.pause(1)
        },
        Attack("back-end-sends-an-oversized-header", .framing, side: .backEnd, backEnd: .garbageHeader, expect: broken("announces a"), run: ordinaryFrontEnd),
        Attack("back-end-sends-replies-nobody-asked-for", .framing, side: .backEnd, backEnd: .unsolicitedReplies(count: 100),
               expect: E(exit: [0], message: "answers no request"), run: ordinaryFrontEnd),
        Attack("back-end-reply-flood", .floods, side: .backEnd, backEnd: .unsolicitedReplies(count: 20_000), duration: 10,
               expect: E(exit: [0]), run: ordinaryFrontEnd),
        Attack("back-end-closes-mid-session", .disconnects, side: .backEnd, backEnd: .closesAfter(messages: 3), expect: ok, run: ordinaryFrontEnd),
        Attack("back-end-reply-with-nine-fds", .fds, side: .backEnd, backEnd: .tooManyFds, expect: broken("file descriptors"), run: ordinaryFrontEnd),
        Attack("back-end-never-accepts", .stalls, side: .backEnd, backEnd: .neverAccepts, duration: 1.5, expect: ok) { fe in
            fe.handshake(); fe.pause(2)
        },
        Attack("back-end-gone-when-reconnecting", .disconnects, side: .backEnd, args: ["--reconnect"], backEnd: .leavesAfter(messages: 2),
               expect: broken("cannot reconnect to the back-end")) { fe in
            fe.handshake()
            _ = fe.waitForClose(2)
            fe.reconnect()
            fe.pause(2)
        },
        Attack("back-end-reply-with-an-fd", .fds, side: .backEnd, backEnd: .replyWithFd, expect: ok, run: ordinaryFrontEnd),
        Attack("call-eventfd-saturated-with-relayed-notifications", .notifications, side: .backEnd, args: ["--relay-notifications"],
               backEnd: .signalsCalls, duration: 1.5, expect: E(exit: [0], fdsReplaced: true)) { fe in
            let ring = fe.ring()
            fe.handshake(); fe.setUp(ring)
            let call = fe.keep(cs_eventfd_blocking())
            _ = EventNotifier.signal(call, count: 0xffff_ffff_ffff_fffe)
            fe.send(Message(.setVringCall, payload: VringFile(index: 0), fds: [call]))
            fe.pause(2)
        },
    ]

    /// Every class, front-end attacks first.
    public static let all: [Attack] = framing + disconnects + fds + memoryTables + ringAddresses + indices + floods + rewrites + stalls + backEnd

    /// Handshake with VIRTIO_F_RING_PACKED, one packed ring of `size` at offset 0 started (NUM,
    /// BASE 0x8000, ADDR with the two event suppression structures after the ring, ENABLE, KICK).
    static func onPackedRing(size: Int = 64, _ then: @escaping @Sendable (HostileFrontEnd, PackedRingWriter) -> Void) -> @Sendable (HostileFrontEnd) -> Void {
        { fe in
            let ring = PackedRingWriter(memory: fe.memory, size: size, at: 0)
            fe.handshake(features: HostileFrontEnd.defaultFeatures | FeatureBit.ringPacked.mask)
            fe.send(Message(.setVringNum, payload: VringState(index: fe.ringVq, num: UInt32(size))))
            fe.send(Message(.setVringBase, payload: VringState(index: fe.ringVq, num: 0x8000)))
            fe.send(Message(.setVringAddr, payload: VringAddress(index: fe.ringVq, desc: ring.descAddr, used: ring.deviceEventAddr, avail: ring.driverEventAddr)))
            fe.send(Message(.setVringEnable, payload: VringState(index: fe.ringVq, num: 1)))
            fe.kick(fe.ringVq)
            fe.pause(0.05)
            then(fe, ring)
            fe.pause(0.1)
        }
    }

    /// Packed-ring front-ends, run against `record --interpose` (`HostilePeerInterposeTests`): the
    /// packed relay reads the front-end's descriptor ring, its indirect tables and its Driver Event
    /// Suppression whatever they hold, while the memory may shrink under it. Not in `all` (the
    /// passive recorder's and serve's expectations are not written for them).
    public static let packedRings: [Attack] = [
        Attack("packed-ring-rewritten-at-random", .rewrites, expect: E(exit: [0, 1, 3]), run: onPackedRing { fe, ring in
            var rng = SeededRandom(seed: 11)
            let span = 16 * ring.size + 8
            let end = Date().addingTimeInterval(1)
            while Date() < end {
                for _ in 0..<64 { fe.memory.put(UInt8(truncatingIfNeeded: rng.next()), at: Int(rng.next() % UInt64(span))) }
                // Flags that make descriptors available in either lap, with NEXT and INDIRECT.
                for _ in 0..<8 {
                    let f: UInt16 = [0x80, 0x8000, 0x81, 0x8001, 0x84, 0x85, 0x82][Int(rng.next() % 7)]
                    fe.memory.publish(f, at: 16 * Int(rng.next() % UInt64(ring.size)) + 14)
                }
                usleep(100)
            }
        }),
        Attack("packed-ring-and-file-size-rewritten-at-random", .rewrites, expect: E(exit: [0, 1, 3]), run: onPackedRing { fe, ring in
            var rng = SeededRandom(seed: 12)
            let span = 16 * ring.size + 8
            let end = Date().addingTimeInterval(1)
            while Date() < end {
                fe.memory.truncate(to: rng.next() % 4 == 0 ? Int(rng.next() % UInt64(span)) : 1 << 16)
                for _ in 0..<64 { fe.memory.put(UInt8(truncatingIfNeeded: rng.next()), at: Int(rng.next() % UInt64(span))) }
                fe.memory.publish(0x81, at: 16 * Int(rng.next() % UInt64(ring.size)) + 14)
                usleep(200)
            }
            fe.memory.restore()
        }),
        Attack("packed-lists-without-end-and-huge-indirect-tables", .rewrites, expect: E(exit: [0, 1, 3]), run: onPackedRing(size: 16) { fe, ring in
            // Every slot available with NEXT: a list that never ends.
            for p in 0..<16 { ring.body(p, addr: fe.memory.guest(0x8000), len: 64, id: 0) }
            for p in (1..<16) + [0] { ring.storeFlags(p, [.avail, .next]) }
            fe.pause(0.1)
            // Then indirect tables of up to 4 GiB pointing anywhere, in every slot, made available
            // in the next lap's sense too.
            var rng = SeededRandom(seed: 13)
            for k in 0..<400 {
                let p = k % 16
                ring.body(p, addr: fe.memory.guest(Int(rng.next() % 0x10000)), len: UInt32(truncatingIfNeeded: rng.next()), id: UInt16(k % 20))
                ring.storeFlags(p, k % 2 == 0 ? [.avail, .indirect] : [.used, .indirect])
            }
        }),
    ]
}

/// SplitMix64: the attacks that write random bytes are the same on every run.
public struct SeededRandom: Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
