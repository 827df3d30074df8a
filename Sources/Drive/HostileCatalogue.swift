import CSupport
import Glibc
import TraceFormat
import VhostUser
import VirtioProtocol

/// The hostile half of the catalogue: ring inputs a driver must not make and vhost-user messages
/// of the classes behind DPDK's 2020 vhost advisories. For each, what the spec lets the device do
/// and what it forbids; the verdict never holds against the back-end what the spec does not say.
extension Catalogue {
    static let hostileAllows = "refusing the chain (leaving it unused), stopping the ring or setting DEVICE_NEEDS_RESET, closing the connection (if a new one is then served), or using the chain if it can make sense of it"
    static let hostileForbids = "writing anywhere but the used ring (the hostile chain holds device-readable buffers only), crashing (a new connection not served), wedging (no reply)"
    static let hostileExcuse = "the spec does not say what a device does with a chain the driver built wrongly: completing it, with any length, is not held against the device"
    static let hostileRequirements = ["VU-27"]

    /// Pair 0 working (4 packets used), then `plant` builds the hostile chain on the TX ring and
    /// exposes it; the chain left unused within the refusal window is a refusal.
    static func hostileChain(_ run: Run, size: Int = 32, plant: (Run, DriverRing) throws -> DriverRing.Chain?) throws {
        try run.open()
        let (_, tx) = try run.pair(0, size: size)
        try run.send(tx, count: 4)
        guard let c = try plant(run, tx) else { return }
        run.planted()
        if run.used(c.head, on: tx) {
            run.note("the hostile chain at head \(c.head) was used")
        } else {
            run.refused("left the hostile chain at head \(c.head) unused (the spec lets a device stop the ring)")
        }
        run.settle(0.05)
        // The connection still answers (a back-end may close it instead: then a new one must be served).
        try run.session.barrier()
    }

    /// A readable 64-byte buffer for hostile descriptors to point at.
    static func junk(_ run: Run, _ r: DriverRing) throws(DriveError) -> GuestSpan {
        let b = try run.mem.alloc(64, region: r.desc.region, label: "vq \(r.vq) hostile chain's buffer (device-readable)")
        run.mem.fill(0x5A, at: b)
        return b
    }

    public static let hostileRings: [Scenario] = [
        Scenario("desc-next-out-of-range", .hostileRing,
                 summary: "After 4 good packets, a TX chain whose head has NEXT set with next = queue size + 3.",
                 requirements: ["SPLIT-11"] + hostileRequirements, rules: [.vqUsedIdx], checks: [.writes, .survives],
                 allows: hostileAllows, forbids: hostileForbids, planted: [.vqDescIndex], excused: [.vqUsedId, .vqUsedLen], excuse: hostileExcuse) { run in
            try hostileChain(run) { run, tx in
                guard let ds = tx.takeDescriptors(1) else { throw DriveError.tool("no free descriptor") }
                let b = try junk(run, tx)
                tx.writeDesc(ds[0], addr: b.guest, len: 64, flags: [.next], next: UInt16(tx.size + 3))
                let c = tx.handMade(head: ds[0], descriptors: ds, writable: [])
                tx.expose([c])
                return c
            }
        },
        Scenario("desc-loop", .hostileRing,
                 summary: "A TX chain of two descriptors whose second points back at the first (a loop: the chain never ends).",
                 requirements: ["SPLIT-10"] + hostileRequirements, rules: [.vqUsedIdx], checks: [.writes, .survives],
                 allows: hostileAllows, forbids: hostileForbids, planted: [.vqChainLoop], excused: [.vqUsedId, .vqUsedLen], excuse: hostileExcuse) { run in
            try hostileChain(run) { run, tx in
                guard let ds = tx.takeDescriptors(2) else { throw DriveError.tool("no free descriptor") }
                let b = try junk(run, tx)
                tx.writeDesc(ds[0], addr: b.guest, len: 32, flags: [.next], next: ds[1])
                tx.writeDesc(ds[1], addr: b.guest + 32, len: 32, flags: [.next], next: ds[0])
                let c = tx.handMade(head: ds[0], descriptors: ds, writable: [])
                tx.expose([c])
                return c
            }
        },
        Scenario("indirect-with-next", .hostileRing,
                 summary: "A TX chain whose INDIRECT descriptor also has NEXT set (pointing at a valid second descriptor).",
                 requirements: ["SPLIT-16"] + hostileRequirements, rules: [.vqUsedIdx], checks: [.writes, .survives],
                 allows: hostileAllows, forbids: hostileForbids, planted: [.vqIndirectNext], excused: [.vqUsedId, .vqUsedLen], excuse: hostileExcuse,
                 needs: [.indirectDesc]) { run in
            try hostileChain(run) { run, tx in
                guard let ds = tx.takeDescriptors(2) else { throw DriveError.tool("no free descriptor") }
                let b = try junk(run, tx)
                let table = try run.mem.alloc(16, align: 16, region: tx.desc.region, label: "vq \(tx.vq) hostile indirect table")
                tx.writeIndirect(parent: ds[0], table: table, entry: 0, addr: b.guest, len: 32, flags: [])
                tx.writeDesc(ds[0], addr: table.guest, len: 16, flags: [.indirect, .next], next: ds[1])
                tx.writeDesc(ds[1], addr: b.guest + 32, len: 32, flags: [])
                let c = tx.handMade(head: ds[0], descriptors: ds, writable: [])
                tx.expose([c])
                return c
            }
        },
        Scenario("indirect-nested", .hostileRing,
                 summary: "A TX chain whose indirect table's entry is itself INDIRECT (pointing at a second table).",
                 requirements: ["SPLIT-14"] + hostileRequirements, rules: [.vqUsedIdx], checks: [.writes, .survives],
                 allows: hostileAllows, forbids: hostileForbids, planted: [.vqIndirectNested], excused: [.vqUsedId, .vqUsedLen], excuse: hostileExcuse,
                 needs: [.indirectDesc]) { run in
            try hostileChain(run) { run, tx in
                guard let ds = tx.takeDescriptors(1) else { throw DriveError.tool("no free descriptor") }
                let b = try junk(run, tx)
                let inner = try run.mem.alloc(16, align: 16, region: tx.desc.region, label: "vq \(tx.vq) hostile inner table")
                run.mem.write(b.guest, at: inner, 0); run.mem.write(UInt32(64), at: inner, 8)
                run.mem.write(UInt16(0), at: inner, 12); run.mem.write(UInt16(0), at: inner, 14)
                let outer = try run.mem.alloc(16, align: 16, region: tx.desc.region, label: "vq \(tx.vq) hostile outer table")
                tx.writeIndirect(parent: ds[0], table: outer, entry: 0, addr: inner.guest, len: 16, flags: [.indirect])
                tx.writeDesc(ds[0], addr: outer.guest, len: 16, flags: [.indirect])
                let c = tx.handMade(head: ds[0], descriptors: ds, writable: [])
                tx.expose([c])
                return c
            }
        },
        Scenario("indirect-len-not-16", .hostileRing,
                 summary: "A TX chain whose INDIRECT descriptor says its table is 24 bytes (one and a half entries).",
                 requirements: ["SPLIT-18"] + hostileRequirements, rules: [.vqUsedIdx], checks: [.writes, .survives],
                 allows: hostileAllows, forbids: hostileForbids, planted: [.vqIndirectLen], excused: [.vqUsedId, .vqUsedLen], excuse: hostileExcuse,
                 needs: [.indirectDesc]) { run in
            try hostileChain(run) { run, tx in
                guard let ds = tx.takeDescriptors(1) else { throw DriveError.tool("no free descriptor") }
                let b = try junk(run, tx)
                let table = try run.mem.alloc(32, align: 16, region: tx.desc.region, label: "vq \(tx.vq) hostile indirect table")
                tx.writeIndirect(parent: ds[0], table: table, entry: 0, addr: b.guest, len: 64, flags: [])
                tx.writeDesc(ds[0], addr: table.guest, len: 24, flags: [.indirect])
                let c = tx.handMade(head: ds[0], descriptors: ds, writable: [])
                tx.expose([c])
                return c
            }
        },
        Scenario("chain-longer-than-n", .hostileRing,
                 summary: "On a 32-entry ring, a TX chain in an indirect table of 64 entries (each 4 bytes of one packet): longer than the queue size.",
                 requirements: ["SPLIT-15"] + hostileRequirements, rules: [.vqUsedIdx], checks: [.writes, .survives],
                 allows: hostileAllows, forbids: hostileForbids, planted: [.vqChainLength], excused: [.vqUsedId, .vqUsedLen], excuse: hostileExcuse,
                 needs: [.indirectDesc]) { run in
            try hostileChain(run) { run, tx in
                let c = try run.txChain(tx, frame: 244, parts: 64, indirect: true)
                tx.expose([c])
                return c
            }
        },
        Scenario("addr-outside-memory", .hostileRing,
                 summary: "A TX chain of one descriptor whose buffer lies in no region of the memory table (in the gap after region 0).",
                 requirements: ["VU-23"] + hostileRequirements, rules: [.vqUsedIdx], checks: [.writes, .survives],
                 allows: hostileAllows, forbids: hostileForbids, planted: [.vhostMemBufferAddr], excused: [.vqUsedId, .vqUsedLen], excuse: hostileExcuse) { run in
            try hostileChain(run) { run, tx in
                guard let ds = tx.takeDescriptors(1) else { throw DriveError.tool("no free descriptor") }
                let outside = DriverMemory.guestBase(0) + UInt64(run.mem.regions[0].size) + 0x10_0000
                tx.writeDesc(ds[0], addr: outside, len: 64, flags: [])
                let c = tx.handMade(head: ds[0], descriptors: ds, writable: [])
                tx.expose([c])
                return c
            }
        },
        Scenario("avail-jump", .hostileRing,
                 summary: "avail.idx moved by the queue size + 5 at once (more buffers than the ring holds; the slots beyond hold stale heads).",
                 requirements: ["SPLIT-02"] + hostileRequirements, rules: [.vqUsedIdx], checks: [.writes, .survives],
                 allows: hostileAllows + "; using stale entries it finds", forbids: hostileForbids,
                 planted: [.vqInflight], mayAlsoBreak: [.vqDriverOwnership, .netTxFraming], excused: [.vqUsedId, .vqUsedLen, .vqUsedIdx], excuse: "with more buffers published than the ring holds, which entries are in flight is undefined; what the device completes is not held against it") { run in
            try run.open()
            let (_, tx) = try run.pair(0, size: 32)
            try run.send(tx, count: 4)
            tx.publishRaw(entries: [], to: tx.availIdx &+ UInt16(tx.size + 5))
            run.planted()
            run.settle(run.options.refuseWindow)
            run.note("used.idx after the jump: \(tx.usedIdx)")
        },
        Scenario("desc-rewritten-in-flight", .hostileRing,
                 summary: "8 TX chains made available and kicked; at once each descriptor's address is rewritten to another (readable) buffer while the device owns it.",
                 requirements: ["SPLIT-22"] + hostileRequirements, rules: [.vqUsedIdx, .vqUsedId], checks: [.writes, .survives],
                 allows: "using either buffer, refusing", forbids: hostileForbids,
                 planted: [.vqDriverOwnership], excused: [.vqUsedLen], excuse: "the buffer's length changed under the device") { run in
            try run.open()
            let (_, tx) = try run.pair(0, size: 32)
            try run.send(tx, count: 4)
            var cs: [DriverRing.Chain] = []
            for _ in 0..<8 { cs.append(try run.txChain(tx)) }
            tx.expose(cs)
            let b = try junk(run, tx)
            for c in cs { tx.writeDesc(c.head, addr: b.guest, len: 64, flags: []) }
            run.planted()
            run.settle(run.options.refuseWindow)
            if tx.inFlight > 0 { run.refused("left \(tx.inFlight) of the rewritten chains unused") }
        },
    ]

    // MARK: hostile vhost-user messages

    /// Sends `m` and takes whatever answer comes within the refusal window; a REPLY_ACK failure is a refusal.
    static func hostileRequest(_ run: Run, _ m: Message, what: String) throws(DriveError) {
        let fe = try run.session
        var m = m
        if fe.replyAck { m.header.flags.insert(.needReply) }
        try fe.send(m)
        guard fe.replyAck, let r = m.request else { return }
        do {
            let a = try fe.reply(to: r, within: max(0.5, run.options.refuseWindow))
            if let v = a.decode(U64Payload.self)?.value, v != 0 { run.refused("\(what): answered failure") }
        } catch {
            if case .wedged = error { run.note("\(what): no REPLY_ACK within the window"); return }
            throw error
        }
    }

    /// The connection still answers and pair 0 still carries traffic.
    static func stillServes(_ run: Run) throws(DriveError) {
        try run.session.barrier()
        let (_, tx) = try run.pair(0, size: 32)
        try run.send(tx, count: 4)
    }

    public static let hostileMessages: [Scenario] = [
        Scenario("vring-index-out-of-range", .hostileMessage,
                 summary: "SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ADDR, SET_VRING_ENABLE and GET_VRING_BASE for vring 2 x GET_QUEUE_NUM (the first beyond the back-end's) and for vring 65536, SET_VRING_CALL for the first where 8 bits hold it, then pair 0 set up and used (CVE-2020-10725's class).",
                 requirements: ["VU-12", "VU-11"] + hostileRequirements, rules: [.vqUsedIdx, .vqUsedId], checks: [.survives, .progress],
                 allows: "answering failure, closing the connection, ignoring the requests", forbids: "crashing, wedging, touching another ring") { run in
            try run.open()
            let fe = try run.session
            // The first index beyond the back-end's vrings (2 per pair GET_QUEUE_NUM reported), and
            // one beyond any back-end's (DPDK keeps at most 256).
            let first = UInt32(2 * (fe.queueNum ?? 1))
            for bad in [first, 0x1_0000] {
                try hostileRequest(run, Message(.setVringNum, payload: VringState(index: bad, num: 256)), what: "SET_VRING_NUM for vring \(bad)")
                try hostileRequest(run, Message(.setVringBase, payload: VringState(index: bad, num: 0)), what: "SET_VRING_BASE for vring \(bad)")
                try hostileRequest(run, Message(.setVringAddr, payload: VringAddress(index: bad, desc: DriverMemory.userBase(0), used: DriverMemory.userBase(0) + 8192, avail: DriverMemory.userBase(0) + 4096)), what: "SET_VRING_ADDR for vring \(bad)")
                try hostileRequest(run, Message(.setVringEnable, payload: VringState(index: bad, num: 1)), what: "SET_VRING_ENABLE for vring \(bad)")
                try fe.send(Message(.getVringBase, payload: VringState(index: bad, num: 0)))
                do { _ = try fe.reply(to: .getVringBase, within: max(0.5, run.options.refuseWindow)) } catch {
                    if case .wedged? = error as? DriveError { run.note("GET_VRING_BASE for vring \(bad): no reply") } else { throw error }
                }
            }
            // SET_VRING_CALL carries the index in 8 bits: out of range only below 256 vrings.
            if first <= 255, let fd = EventNotifier.make() {
                defer { close(fd) }
                try hostileRequest(run, Message(.setVringCall, payload: VringFile(index: UInt8(first)), fds: [fd]), what: "SET_VRING_CALL for vring \(first)")
            }
            try stillServes(run)
        },
        Scenario("bogus-log-base", .hostileMessage,
                 summary: "SET_LOG_BASE with a 4 KiB memfd but mmap_size 2^40 and mmap_offset 2^63 (size + offset overflow; CVE-2020-10722's class), then pair 0 set up and used.",
                 requirements: ["VU-20", "VU-02"] + hostileRequirements, rules: [.vqUsedIdx, .vqUsedId], checks: [.survives, .progress],
                 allows: "answering failure, closing the connection", forbids: "crashing, wedging, mapping past the file",
                 needsProtocol: [.logShmfd]) { run in
            try run.open()
            let fd = cs_memfd("drive-log", 4096)
            guard fd >= 0 else { throw DriveError.tool("memfd_create failed") }
            defer { close(fd) }
            let fe = try run.session
            try fe.send(Message(.setLogBase, payload: LogBasePayload(mmapSize: 1 << 40, mmapOffset: 1 << 63), fds: [fd]))
            // The back-end answers SET_LOG_BASE (or refuses): take what comes.
            do {
                let a = try fe.reply(to: .setLogBase, within: max(0.5, run.options.refuseWindow))
                if let v = a.decode(U64Payload.self)?.value, v != 0 { run.refused("SET_LOG_BASE answered failure") }
            } catch {
                if case .wedged? = error as? DriveError { run.note("SET_LOG_BASE: no reply within the window") } else { throw error }
            }
            try stillServes(run)
        },
        Scenario("inflight-fd-flood", .hostileMessage,
                 summary: "64 SET_INFLIGHT_FD messages, each with a new 4 KiB memfd claiming 2^30 bytes for 2 queues of 256 (CVE-2020-10726's class: mappings and fds that pile up), then pair 0 set up and used.",
                 requirements: ["VU-26", "VU-02"] + hostileRequirements, rules: [.vqUsedIdx, .vqUsedId], checks: [.survives, .progress],
                 allows: "answering failure, closing the connection", forbids: "crashing, wedging",
                 needsProtocol: [.inflightShmfd]) { run in
            try run.open()
            for k in 0..<64 {
                let fd = cs_memfd("drive-inflight", 4096)
                guard fd >= 0 else { throw DriveError.tool("memfd_create failed") }
                defer { close(fd) }
                try hostileRequest(run, Message(.setInflightFd, payload: InflightPayload(mmapSize: 1 << 30, mmapOffset: 0, numQueues: 2, queueSize: 256), fds: [fd]),
                                   what: "SET_INFLIGHT_FD #\(k + 1)")
            }
            try stillServes(run)
        },
        Scenario("unknown-request", .hostileMessage,
                 summary: "A request with id 200 (no such request) and NEED_REPLY, then pair 0 set up and used.",
                 requirements: ["VU-25", "VU-01"] + hostileRequirements, rules: [.vqUsedIdx, .vqUsedId], checks: [.survives, .progress],
                 allows: "answering failure, closing the connection", forbids: "crashing, wedging") { run in
            try run.open()
            let fe = try run.session
            var h = MessageHeader(request: 200, size: 8)
            h.flags.insert(.needReply)
            try fe.sendRaw(h.encode() + [UInt8](repeating: 0, count: 8))
            do {
                while true {
                    let m = try fe.channel.receive(within: .within(max(0.5, run.options.refuseWindow)))
                    m.closeFds()
                    if m.header.request == 200 { run.refused("request 200 answered \(m.decode(U64Payload.self).map { "\($0.value)" } ?? "without a u64")"); break }
                }
            } catch {
                guard let v = error as? VhostUserError else { throw error }
                if case .timedOut = v { run.note("request 200: no answer") } else { throw FrontEnd.map(v, doing: "waiting after request 200") }
            }
            try stillServes(run)
        },
    ]
}
