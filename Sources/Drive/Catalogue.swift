import VirtioProtocol

/// The scenario catalogue: the one definition of every scenario `drive` runs. `Specs/scenarios.md`
/// is generated from it (`conformance drive --catalogue`) and a test keeps the two equal; the
/// requirements table's "drive scenarios" column is `Catalogue.scenarios(for:)`.
///
/// Requirement IDs are those of `Specs/requirements.md` (`Sources/VirtioProtocol/Requirements.swift`).
public enum Catalogue {
    public static let all: [Scenario] = boundaries + hostileRings + hostileMessages

    public static func named(_ name: String) -> Scenario? { all.first { $0.name == name } }

    /// The scenarios that exercise requirement `id`, in catalogue order.
    public static func scenarios(for id: String) -> [String] {
        all.filter { $0.requirements.contains(id) || $0.checks.contains { $0.requirements.contains(id) } }.map(\.name)
    }

    /// Every requirement ID some scenario names (directly or through a check).
    public static var requirementIDs: [String] {
        var seen = Set<String>(), out: [String] = []
        for s in all {
            for id in s.requirements + s.checks.flatMap(\.requirements) where seen.insert(id).inserted { out.append(id) }
        }
        return out.sorted()
    }

    static let traffic: [RuleID] = [.vqUsedId, .vqUsedIdx, .vqUsedLen, .vqInterruptMissed, .vhostRingNotReady]
    /// What the driver reads in received packets' headers (`rx_header` events).
    static let rx: [RuleID] = [.netRxNumBuffers, .netRxHdrOffload, .netRxUsedLen]
    static let validAllows = "nothing else: every buffer made available on a started, enabled ring is used"
    static let validForbids = "a used element naming anything but a chain in flight, used.idx over unwritten elements, len above the writable bytes, a missed interrupt, writes outside writable buffers and used rings, no progress within the bound"

    // MARK: valid boundaries

    public static let boundaries: [Scenario] = [
        Scenario("traffic", .boundary,
                 summary: "Every pair: 64 receive buffers of 1536 bytes, then 256 TX packets (every second one in a one-entry indirect table when INDIRECT is on) in batches of 32; every TX buffer must be used, and every packet the back-end delivers on RX is checked.",
                 requirements: ["SPLIT-20", "SPLIT-23", "SPLIT-29", "SPLIT-32", "SPLIT-34", "SPLIT-35", "SPLIT-36", "SPLIT-38", "FEAT-06", "VU-06", "VU-08",
                                "NET-16", "NET-17", "NET-18", "NET-19", "NET-20"],
                 rules: traffic + rx + [.netRxqInactive], checks: [.writes, .progress],
                 allows: validAllows, forbids: validForbids,
                 matrix: [.eventIdx, .indirectDesc, .inOrder, .netMrgRxbuf]) { run in
            try run.open()
            run.checkRX = true
            var txs: [DriverRing] = []
            for k in 0..<run.pairs {
                let (rx, tx) = try run.pair(k, size: 256)
                try run.postRX(rx, count: 64, bytes: 1536)
                txs.append(tx)
            }
            let indirect = try run.session.has(.indirectDesc)
            for tx in txs { try run.send(tx, count: 256, indirectEvery: indirect ? 2 : 0) }
            run.settle(0.05)
            run.note("\(256 * txs.count) TX buffers used on \(txs.count) pair(s); \(run.rxPackets) packet(s) received")
        },
        Scenario("index-wrap", .boundary,
                 summary: "Rings start at base 65436 (SET_VRING_BASE); 1,000 TX packets in batches of 64 carry the free-running avail and used indices over 65535 -> 0 (at the 100th), the 64-entry ring's slots wrapping 15 times.",
                 requirements: ["SPLIT-23", "SPLIT-34", "SPLIT-36", "SPLIT-32", "VU-16"],
                 rules: traffic, checks: [.writes, .progress], allows: validAllows, forbids: validForbids,
                 matrix: [.eventIdx, .inOrder]) { run in
            try run.open()
            let (_, tx) = try run.pair(0, size: 64, base: 65436)
            try run.send(tx, count: 1000, batch: 64)
            run.note("used.idx went 65436 -> \(tx.usedIdx) through 65535 -> 0")
        },
        Scenario("full-ring", .boundary,
                 summary: "A 128-entry ring filled in one publication (all 128 descriptors, 128 buffers in flight), used, and filled again, four times.",
                 requirements: ["SPLIT-02", "SPLIT-36", "SPLIT-34"], rules: traffic, checks: [.writes, .progress],
                 allows: validAllows, forbids: validForbids, matrix: [.inOrder]) { run in
            try run.open()
            let (_, tx) = try run.pair(0, size: 128, decoy: false)
            for _ in 0..<4 {
                var cs: [DriverRing.Chain] = []
                for _ in 0..<128 { cs.append(try run.txChain(tx)) }
                tx.expose(cs)
                try run.drain(tx)
            }
        },
        Scenario("chain-of-n", .boundary,
                 summary: "On a 16-entry ring, packets of 256 bytes each split over all 16 descriptors (a chain of exactly the queue size), eight times.",
                 requirements: ["SPLIT-05", "SPLIT-10", "SPLIT-07"], rules: traffic, checks: [.writes, .progress],
                 allows: validAllows, forbids: validForbids) { run in
            try run.open()
            let (_, tx) = try run.pair(0, size: 16, decoy: false)
            for _ in 0..<8 {
                tx.expose([try run.txChain(tx, frame: 256, parts: 16)])
                try run.drain(tx)
            }
        },
        Scenario("indirect-single", .boundary,
                 summary: "32 TX packets, each in an indirect table of one entry.",
                 requirements: ["SPLIT-20", "SPLIT-18", "FEAT-04"], rules: traffic, checks: [.writes, .progress],
                 allows: validAllows, forbids: validForbids, needs: [.indirectDesc]) { run in
            try run.open()
            let (_, tx) = try run.pair(0, size: 32)
            for _ in 0..<4 {
                var cs: [DriverRing.Chain] = []
                for _ in 0..<8 { cs.append(try run.txChain(tx, indirect: true)) }
                tx.expose(cs)
                try run.drain(tx)
            }
        },
        Scenario("indirect-many", .boundary,
                 summary: "On a 64-entry ring, packets of 512 bytes each split over an indirect table of 64 entries (as long as a chain may be), 16 of them.",
                 requirements: ["SPLIT-20", "SPLIT-18", "SPLIT-15"], rules: traffic, checks: [.writes, .progress],
                 allows: validAllows, forbids: validForbids, needs: [.indirectDesc]) { run in
            try run.open()
            let (_, tx) = try run.pair(0, size: 64)
            for _ in 0..<4 {
                var cs: [DriverRing.Chain] = []
                for _ in 0..<4 { cs.append(try run.txChain(tx, frame: 512, parts: 64, indirect: true)) }
                tx.expose(cs)
                try run.drain(tx)
            }
        },
        Scenario("mixed-direct-indirect", .boundary,
                 summary: "TX chains of two direct descriptors followed by an INDIRECT one (three entries), between plain direct and plain indirect chains; receive chains of a 12-byte direct header buffer followed by an INDIRECT descriptor whose table holds two 760-byte writable buffers; packets sent to come back on RX.",
                 requirements: ["SPLIT-20", "SPLIT-19", "SPLIT-08", "NET-16", "NET-19", "NET-20"], rules: traffic + rx, checks: [.writes, .progress],
                 allows: validAllows, forbids: validForbids, needs: [.indirectDesc]) { run in
            try run.open()
            run.checkRX = true
            let (rx, tx) = try run.pair(0, size: 64)
            var rxc: [DriverRing.Chain] = []
            for _ in 0..<16 {
                let h = try run.mem.alloc(12, region: rx.desc.region, label: "vq 0 RX header buffer")
                let a = try run.mem.alloc(760, region: rx.desc.region, label: "vq 0 RX buffer"), b = try run.mem.alloc(760, region: rx.desc.region, label: "vq 0 RX buffer")
                for s in [h, a, b] { run.mem.fill(0xA5, at: s) }
                rxc.append(try rx.indirectChain(direct: [DriverRing.Part(h, write: true)],
                                                indirect: [DriverRing.Part(a, write: true), DriverRing.Part(b, write: true)]))
            }
            rx.expose(rxc)
            for _ in 0..<4 {
                let cs = [try run.txChain(tx, frame: 200, parts: 3, indirect: true, directBefore: 2),
                          try run.txChain(tx, frame: 200), try run.txChain(tx, frame: 200, parts: 2, indirect: true)]
                tx.expose(cs)
                try run.drain(tx)
            }
            run.settle(0.1)
            run.note("\(run.rxPackets) packet(s) received in mixed chains")
        },
        Scenario("out-of-order-reclaim", .boundary,
                 summary: "Chains of one to three descriptors; after each round the free descriptors are shuffled, so heads and chain positions are reused in an order unrelated to the order the device used them (eight rounds of 10 chains on a 32-entry ring).",
                 requirements: ["SPLIT-34", "SPLIT-05", "SPLIT-22"], rules: traffic, checks: [.writes, .progress],
                 // IN_ORDER obliges the driver to chain descriptors in table order (VQ-IN-ORDER-NEXT):
                 // reclaiming out of order is exactly what it rules out.
                 allows: validAllows, forbids: validForbids, excludes: [.inOrder]) { run in
            try run.open()
            let (_, tx) = try run.pair(0, size: 32)
            for round in 0..<8 {
                tx.shuffleFree(seed: UInt64(round) &* 0x9E37_79B9 &+ 7)
                var cs: [DriverRing.Chain] = []
                for k in 0..<10 { cs.append(try run.txChain(tx, frame: 96, parts: 1 + (k + round) % 3)) }
                tx.expose(cs)
                try run.drain(tx)
            }
        },
        Scenario("event-idx-wrap", .boundary,
                 summary: "With EVENT_IDX, rings at base 65528; while nothing is in flight used_event is set to 65533, 65535, 0 and 2 in turn, then enough buffers to publish over it: each window, some straddling 65535 -> 0, owes exactly the interrupt the driver asked for.",
                 requirements: ["SPLIT-32", "SPLIT-33", "FEAT-05"], rules: [.vqInterruptMissed, .vqUsedId, .vqUsedIdx],
                 checks: [.writes, .progress], allows: validAllows + "; interrupts beyond the ones asked for (spurious ones are legal)",
                 forbids: validForbids, needs: [.eventIdx]) { run in
            try run.open()
            let (_, tx) = try run.pair(0, size: 16, base: 65528)
            for target: UInt16 in [65533, 65535, 0, 2] {
                tx.setUsedEvent(target)
                var cs: [DriverRing.Chain] = []
                let need = Int(target &- tx.availIdx) + 2
                for _ in 0..<min(need, 12) { cs.append(try run.txChain(tx)) }
                tx.expose(cs)
                try run.drain(tx)
                try run.checkInterrupt(tx, "used_event \(target)")
            }
        },
        Scenario("no-interrupt", .boundary,
                 summary: "Without EVENT_IDX: avail.flags NO_INTERRUPT while 32 buffers are used (the device should not interrupt; the driver polls), then flags 0 again while nothing is in flight and 8 more, each publication owing an interrupt.",
                 requirements: ["SPLIT-29", "SPLIT-30", "SPLIT-26"], rules: [.vqInterruptMissed, .vqUsedId],
                 checks: [.writes, .progress], allows: validAllows + "; interrupts while NO_INTERRUPT is set (a SHOULD NOT, and spurious interrupts are legal)",
                 forbids: validForbids, excludes: [.eventIdx]) { run in
            try run.open()
            let (_, tx) = try run.pair(0, size: 16)
            tx.setAvailFlags(SplitRing.availFlagNoInterrupt)
            try run.send(tx, count: 32, batch: 8)
            tx.setAvailFlags(0)
            for _ in 0..<4 {
                tx.expose([try run.txChain(tx), try run.txChain(tx)])
                try run.drain(tx)
                try run.checkInterrupt(tx, "avail.flags 0")
            }
        },
        Scenario("queue-size-smallest", .boundary,
                 summary: "SET_VRING_NUM 1, 2, 4, ... on the TX ring until the back-end accepts one (REPLY_ACK tells), then both rings of pair 0 at that size carry 3 x size + 5 packets.",
                 requirements: ["SPLIT-01", "VU-25"], rules: traffic, checks: [.writes, .progress],
                 allows: "refusing sizes (REPLY_ACK failure): a device has a maximum queue size", forbids: validForbids,
                 needsProtocol: [.replyAck]) { run in
            try run.open()
            guard let n = try run.probeQueueSize(ascending: true) else { return }
            let (_, tx) = try run.pair(0, size: n, decoy: n >= 4)
            try run.send(tx, count: 3 * n + 5, batch: n)
            run.note("smallest queue size accepted: \(n)")
        },
        Scenario("queue-size-largest", .boundary,
                 summary: "SET_VRING_NUM 32768, 16384, ... on the TX ring until the back-end accepts one, then both rings of pair 0 at that size carry size + 64 packets (the ring wraps once).",
                 requirements: ["SPLIT-01", "VU-25"], rules: traffic, checks: [.writes, .progress],
                 allows: "refusing sizes (REPLY_ACK failure): a device has a maximum queue size", forbids: validForbids,
                 needsProtocol: [.replyAck]) { run in
            try run.open()
            guard let n = try run.probeQueueSize(ascending: false) else { return }
            let (_, tx) = try run.pair(0, size: n)
            try run.send(tx, count: n + 64, batch: 256)
            run.note("largest queue size accepted: \(n)")
        },
        Scenario("mq-pairs", .boundary,
                 summary: "GET_QUEUE_NUM, then every pair up to --pairs (at most what it reported) set up and enabled, 64 TX packets on each.",
                 requirements: ["VU-11", "VU-12", "VU-06", "NET-01", "SEED-01"], rules: traffic, checks: [.writes, .progress],
                 allows: validAllows, forbids: validForbids, needsProtocol: [.mq], minPairs: 2) { run in
            try run.open()
            var txs: [DriverRing] = []
            for k in 0..<run.pairs { txs.append(try run.pair(k, size: 64).tx) }
            for tx in txs {
                var cs: [DriverRing.Chain] = []
                for _ in 0..<32 { cs.append(try run.txChain(tx)) }
                tx.expose(cs)
            }
            for tx in txs { try run.drain(tx) }
            for tx in txs { try run.send(tx, count: 32) }
            run.note("GET_QUEUE_NUM \(try run.session.queueNum.map(String.init) ?? "?"); \(run.pairs) pair(s) used")
        },
        Scenario("single-queue", .boundary,
                 summary: "Neither VIRTIO_NET_F_MQ nor the MQ protocol feature negotiated (no GET_QUEUE_NUM): one pair, 32 receive buffers, 128 TX packets; the old single-queue behaviour.",
                 requirements: ["SEED-07", "SEED-01", "VU-06"], rules: traffic + [.netRxqInactive], checks: [.writes, .progress],
                 allows: validAllows, forbids: validForbids, excludes: [.netMQ]) { run in
            try run.open()
            run.checkRX = true
            let (rx, tx) = try run.pair(0, size: 64)
            try run.postRX(rx, count: 32, bytes: 1536)
            try run.send(tx, count: 128)
            run.settle(0.05)
            run.note("\(run.rxPackets) packet(s) received")
        },
        Scenario("mq-enable-disable", .boundary,
                 summary: "Every pair with receive buffers; the last pair's RX ring disabled (SET_VRING_ENABLE 0, acknowledged) and packets sent on its TX ring, so that a back-end forwarding TX to RX has them for a disabled ring; with two or more pairs the pair before is disabled altogether and traffic goes only to enabled rings; then everything enabled again and traffic resumes.",
                 requirements: ["VU-04", "VU-06", "VU-08", "VU-13"], rules: [.netRxqInactive] + traffic, checks: [.writes, .progress],
                 allows: "dropping the packets meant for the disabled RX ring", forbids: "receive buffers used on a disabled RX ring; " + validForbids) { run in
            try run.open()
            var pairs: [(rx: DriverRing, tx: DriverRing)] = []
            for k in 0..<run.pairs {
                let p = try run.pair(k, size: 64)
                try run.postRX(p.rx, count: 32, bytes: 1536)
                pairs.append(p)
            }
            let last = pairs[pairs.count - 1]
            try run.enable(last.rx, false)
            var off: [DriverRing] = [last.rx]
            if pairs.count >= 2 {
                let before = pairs[pairs.count - 2]
                try run.enable(before.rx, false)
                try run.enable(before.tx, false)
                off += [before.rx]
                for p in pairs.dropLast(2) { try run.send(p.tx, count: 16) }
            }
            try run.send(last.tx, count: 16)
            run.settle(0.2)
            for r in off {
                try run.enable(r, true)
            }
            if pairs.count >= 2 { try run.enable(pairs[pairs.count - 2].tx, true) }
            for p in pairs { try run.send(p.tx, count: 16) }
            run.settle(0.05)
        },
        Scenario("disabled-tx-drained", .boundary,
                 summary: "Pair 0 started; its TX ring disabled (SET_VRING_ENABLE 0, acknowledged), then 8 TX packets made available: a started, disabled TX ring must still be processed (the packets discarded).",
                 requirements: ["VU-05"], rules: [.vhostUserDisabledTxDrain] + traffic, checks: [.writes],
                 allows: "discarding the packets", forbids: "leaving the buffers unused (WEDGED), " + validForbids) { run in
            try run.open()
            let (_, tx) = try run.pair(0, size: 32)
            try run.send(tx, count: 4)
            try run.enable(tx, false)
            var cs: [DriverRing.Chain] = []
            for _ in 0..<8 { cs.append(try run.txChain(tx)) }
            tx.expose(cs)
            do { try run.drain(tx) } catch {
                if case .wedged(let m)? = error as? DriveError {
                    // One more kick, after the bound: the trace then has an event past the rule's
                    // deadline (the checker judges VHOST-USER-DISABLED-TX-DRAIN on trace time).
                    tx.kick()
                    run.settle(0.1)
                    throw DriveError.wedged("[\(RuleID.vhostUserDisabledTxDrain.rawValue)] \(m) (\(RuleID.vhostUserDisabledTxDrain.rule.specRef))") }
                throw error
            }
        },
        Scenario("stop-and-resume", .boundary,
                 summary: "16 packets used; GET_VRING_BASE stops the TX ring (its base must lie in [used, avail]); 8 packets made available while it is stopped must stay unused; the ring set up again with SET_VRING_BASE at that base uses them, and 16 more.",
                 requirements: ["VU-03", "VU-14", "VU-16", "VU-17", "VU-07"], rules: [.vhostRingStopped, .vhostVringBaseRange, .vhostVringBaseResume, .vqUsedId, .vqUsedIdx],
                 checks: [.writes, .progress], allows: validAllows,
                 forbids: "using buffers of a stopped ring; resuming anywhere but the base; " + validForbids) { run in
            try run.open()
            let (_, tx) = try run.pair(0, size: 64)
            try run.send(tx, count: 16)
            let base = try run.stop(tx)
            var cs: [DriverRing.Chain] = []
            for _ in 0..<8 { cs.append(try run.txChain(tx)) }
            tx.expose(cs)
            run.settle(run.options.refuseWindow)
            try run.start(tx, base: base)
            tx.kick()
            try run.drain(tx)
            try run.send(tx, count: 16)
            run.note("GET_VRING_BASE returned \(base)")
        },
        Scenario("ring-starts-on-kick", .boundary,
                 summary: "Pair 0 set up with kick eventfds that are never signalled; 4 TX packets made available without a kick must stay unused; after one kick they must be used.",
                 requirements: ["VU-07"], rules: [.vhostRingNotReady] + traffic, checks: [.startsOnKick, .progress],
                 allows: "using them only after the kick", forbids: "processing a ring before its first kick; " + validForbids) { run in
            try run.open()
            let (_, tx) = try run.pair(0, size: 32)
            var cs: [DriverRing.Chain] = []
            for _ in 0..<4 { cs.append(try run.txChain(tx)) }
            tx.expose(cs, kick: false)
            run.settle(run.options.refuseWindow)
            if tx.completed > 0 {
                run.fail(.startsOnKick, "vq \(tx.vq): \(tx.completed) of 4 buffers used within \(run.options.refuseWindow) s although its kick eventfd was never signalled")
            }
            tx.kick()
            try run.drain(tx)
        },
        Scenario("reconnect", .boundary,
                 summary: "40 packets; both rings stopped (GET_VRING_BASE); the connection closed and opened again; the same rings set up at the bases returned, in the same memory; 40 more packets with the indices going on.",
                 requirements: ["VU-27", "VU-17", "VU-16", "VU-14"], rules: traffic + [.vhostRingStopped, .vhostVringBaseRange, .vhostVringBaseResume], checks: [.writes, .progress],
                 allows: validAllows, forbids: validForbids) { run in
            try run.open()
            let (rx, tx) = try run.pair(0, size: 64)
            try run.send(tx, count: 40)
            let rb = try run.stop(rx), tb = try run.stop(tx)
            try run.reconnect()
            try run.start(rx, base: rb)
            try run.start(tx, base: tb)
            try run.send(tx, count: 40)
            run.note("bases \(rb)/\(tb); used.idx now \(tx.usedIdx)")
        },
        Scenario("several-regions", .boundary,
                 summary: "Three memory regions (4 MiB each, at guest 4, 8 and 12 GiB); the TX ring's descriptor table, available ring and used ring each in another region; packets split into three descriptors, one per region.",
                 requirements: ["VU-22", "VU-23"], rules: traffic, checks: [.writes, .progress],
                 allows: validAllows, forbids: validForbids) { run in
            try run.useMemory(regions: [4 << 20, 4 << 20, 4 << 20])
            try run.open()
            _ = try run.ring(0, size: 32, regions: (1, 2, 0))
            let tx = try run.ring(1, size: 32, regions: (0, 1, 2))
            for round in 0..<4 {
                var cs: [DriverRing.Chain] = []
                for k in 0..<8 { cs.append(try run.regionSpanningChain(tx, seq: UInt32(round * 8 + k))) }
                tx.expose(cs)
                try run.drain(tx)
            }
        },
        Scenario("rx-mergeable", .boundary,
                 summary: "With MRG_RXBUF: 64 receive buffers of 256 bytes, then 16 packets of 1000 bytes sent, so each one the back-end delivers spans 4 buffers: num_buffers, full use of all but the last, and all of them used together are checked.",
                 requirements: ["NET-13", "NET-16", "NET-17", "NET-18", "NET-19", "NET-20"], rules: [.vqUsedLen, .vqUsedId, .vqUsedIdx] + rx,
                 checks: [.writes],
                 allows: "dropping packets (nothing obliges a back-end to deliver them)", forbids: validForbids,
                 needs: [.netMrgRxbuf], matrix: [.eventIdx]) { run in
            try run.open()
            run.checkRX = true
            let (rx, tx) = try run.pair(0, size: 128)
            try run.postRX(rx, count: 64, bytes: 256)
            try run.send(tx, count: 16, frame: 1000)
            try run.awaitRX(1)
        },
        Scenario("rx-single-buffer", .boundary,
                 summary: "Without MRG_RXBUF: 64 receive buffers of 1536 bytes (filled with 0xA5), then 16 packets of 1000 bytes sent: each one the back-end delivers must sit in one buffer with num_buffers 1.",
                 requirements: ["NET-14", "NET-16", "NET-19", "NET-20"], rules: [.vqUsedLen, .vqUsedId, .vqUsedIdx] + rx,
                 checks: [.writes],
                 allows: "dropping packets (nothing obliges a back-end to deliver them)", forbids: validForbids,
                 excludes: [.netMrgRxbuf], matrix: [.eventIdx]) { run in
            try run.open()
            run.checkRX = true
            let (rx, tx) = try run.pair(0, size: 128)
            try run.postRX(rx, count: 64, bytes: 1536)
            try run.send(tx, count: 16, frame: 1000)
            try run.awaitRX(1)
        },
    ]
}

