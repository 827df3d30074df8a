import VirtioProtocol

/// One trace event: 40 bytes on disk. Fixed fields plus a 24-byte payload whose meaning
/// depends on `kind` (see `EventKind.fields`).
public struct TraceEvent: Equatable, Sendable {
    public static let size = 40
    /// `vq` or `worker` value meaning "none".
    public static let none: UInt16 = 0xFFFF

    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// Reconstructed by polling memory: the value was observed, possibly after later writes
        /// merged with it, and intermediate values may be missing.
        public static let sampled = Flags(rawValue: 1)
        public static let known: Flags = [.sampled]
    }

    public var kind: EventKind
    public var flags: Flags
    public var vq: UInt16
    public var worker: UInt16
    public var aux: UInt16
    public var timestamp: UInt64
    public var p0: UInt64
    public var p1: UInt64
    public var p2: UInt64

    public init(_ kind: EventKind, vq: UInt16 = TraceEvent.none, worker: UInt16 = TraceEvent.none,
                aux: UInt16 = 0, timestamp: UInt64 = 0, p0: UInt64 = 0, p1: UInt64 = 0, p2: UInt64 = 0,
                flags: Flags = []) {
        self.kind = kind; self.flags = flags; self.vq = vq; self.worker = worker; self.aux = aux
        self.timestamp = timestamp; self.p0 = p0; self.p1 = p1; self.p2 = p2
    }

    public var isSampled: Bool { flags.contains(.sampled) }

    // MARK: typed views (names follow `EventKind.fields`)

    /// Control-plane result: 0 or -errno.
    public var result: Int16 { Int16(bitPattern: aux) }
    public var succeeded: Bool { result == 0 }

    public var descAddr: UInt64 { p0 }
    public var descLen: UInt32 { UInt32(truncatingIfNeeded: p1) }
    public var descFlags: SplitRing.DescFlags { SplitRing.DescFlags(rawValue: UInt16(truncatingIfNeeded: p1 >> 32)) }
    public var descNext: UInt16 { UInt16(truncatingIfNeeded: p1 >> 48) }

    public static func packDesc(len: UInt32, flags: UInt16, next: UInt16) -> UInt64 {
        UInt64(len) | UInt64(flags) << 32 | UInt64(next) << 48
    }

    // Packed rings: p1 = len (bits 0-31) | id (32-47) | flags of an indirect entry (48-63).
    public var packedLen: UInt32 { UInt32(truncatingIfNeeded: p1) }
    public var packedId: UInt16 { UInt16(truncatingIfNeeded: p1 >> 32) }
    /// The flags of `packed_flags` / `packed_used_flags` (p0).
    public var packedFlags: PackedRing.Flags { PackedRing.Flags(rawValue: UInt16(truncatingIfNeeded: p0)) }
    /// The flags of a `packed_indirect_desc` entry (p1 bits 48-63).
    public var packedEntryFlags: PackedRing.Flags { PackedRing.Flags(rawValue: UInt16(truncatingIfNeeded: p1 >> 48)) }
    /// `driver_event` / `device_event`.
    public var eventSuppression: PackedRing.EventSuppression {
        PackedRing.EventSuppression(offWrap: UInt16(truncatingIfNeeded: p0), flags: UInt16(truncatingIfNeeded: p1))
    }

    public static func packPacked(len: UInt32, id: UInt16, flags: UInt16 = 0) -> UInt64 {
        UInt64(len) | UInt64(id) << 32 | UInt64(flags) << 48
    }

    // MARK: constructors for the common events

    public static func control(_ kind: EventKind, vq: UInt16 = none, value: UInt64 = 0, result: Int16 = 0, t: UInt64 = 0) -> TraceEvent {
        TraceEvent(kind, vq: vq, aux: UInt16(bitPattern: result), timestamp: t, p0: value)
    }
    public static func desc(vq: UInt16, index: UInt16, addr: UInt64, len: UInt32, flags: SplitRing.DescFlags = [], next: UInt16 = 0, t: UInt64 = 0) -> TraceEvent {
        TraceEvent(.desc, vq: vq, aux: index, timestamp: t, p0: addr, p1: packDesc(len: len, flags: flags.rawValue, next: next))
    }
    public static func indirectDesc(vq: UInt16, parent: UInt16, index: UInt16, addr: UInt64, len: UInt32, flags: SplitRing.DescFlags = [], next: UInt16 = 0, t: UInt64 = 0) -> TraceEvent {
        TraceEvent(.indirectDesc, vq: vq, aux: index, timestamp: t, p0: addr, p1: packDesc(len: len, flags: flags.rawValue, next: next), p2: UInt64(parent))
    }
    public static func availEntry(vq: UInt16, pos: UInt16, head: UInt16, t: UInt64 = 0) -> TraceEvent {
        TraceEvent(.availEntry, vq: vq, aux: head, timestamp: t, p0: UInt64(pos))
    }
    public static func availIdx(vq: UInt16, idx: UInt16, t: UInt64 = 0) -> TraceEvent {
        TraceEvent(.availIdx, vq: vq, timestamp: t, p0: UInt64(idx))
    }
    public static func availRead(vq: UInt16, worker: UInt16 = none, pos: UInt16, head: UInt16, t: UInt64 = 0) -> TraceEvent {
        TraceEvent(.availRead, vq: vq, worker: worker, aux: head, timestamp: t, p0: UInt64(pos))
    }
    public static func usedEntry(vq: UInt16, worker: UInt16 = none, pos: UInt16, id: UInt32, len: UInt32, t: UInt64 = 0) -> TraceEvent {
        TraceEvent(.usedEntry, vq: vq, worker: worker, timestamp: t, p0: UInt64(pos), p1: UInt64(id), p2: UInt64(len))
    }
    public static func usedIdx(vq: UInt16, worker: UInt16 = none, idx: UInt16, t: UInt64 = 0) -> TraceEvent {
        TraceEvent(.usedIdx, vq: vq, worker: worker, timestamp: t, p0: UInt64(idx))
    }
    public static func packedDesc(vq: UInt16, slot: UInt16, addr: UInt64, len: UInt32, id: UInt16, t: UInt64 = 0) -> TraceEvent {
        TraceEvent(.packedDesc, vq: vq, aux: slot, timestamp: t, p0: addr, p1: packPacked(len: len, id: id))
    }
    public static func packedFlags(vq: UInt16, slot: UInt16, flags: PackedRing.Flags, t: UInt64 = 0) -> TraceEvent {
        TraceEvent(.packedFlags, vq: vq, aux: slot, timestamp: t, p0: UInt64(flags.rawValue))
    }
    public static func packedIndirectDesc(vq: UInt16, parent: UInt16, index: UInt16, addr: UInt64, len: UInt32, flags: PackedRing.Flags = [], t: UInt64 = 0) -> TraceEvent {
        TraceEvent(.packedIndirectDesc, vq: vq, aux: index, timestamp: t, p0: addr, p1: packPacked(len: len, id: 0, flags: flags.rawValue), p2: UInt64(parent))
    }
    public static func packedRead(vq: UInt16, worker: UInt16 = none, slot: UInt16, t: UInt64 = 0) -> TraceEvent {
        TraceEvent(.packedRead, vq: vq, worker: worker, aux: slot, timestamp: t)
    }
    public static func packedUsed(vq: UInt16, worker: UInt16 = none, slot: UInt16, id: UInt16, len: UInt32, t: UInt64 = 0) -> TraceEvent {
        TraceEvent(.packedUsed, vq: vq, worker: worker, aux: slot, timestamp: t, p1: packPacked(len: len, id: id))
    }
    public static func packedUsedFlags(vq: UInt16, worker: UInt16 = none, slot: UInt16, flags: PackedRing.Flags, t: UInt64 = 0) -> TraceEvent {
        TraceEvent(.packedUsedFlags, vq: vq, worker: worker, aux: slot, timestamp: t, p0: UInt64(flags.rawValue))
    }
    public static func eventSuppression(_ kind: EventKind, vq: UInt16, worker: UInt16 = none, _ e: PackedRing.EventSuppression, t: UInt64 = 0) -> TraceEvent {
        TraceEvent(kind, vq: vq, worker: worker, timestamp: t, p0: UInt64(e.offWrap), p1: UInt64(e.flags))
    }
    public static func simple(_ kind: EventKind, vq: UInt16, worker: UInt16 = none, value: UInt64 = 0, t: UInt64 = 0) -> TraceEvent {
        TraceEvent(kind, vq: vq, worker: worker, timestamp: t, p0: value)
    }
}

// MARK: binary codec

extension TraceEvent {
    /// Bits of p0/p1/p2/aux that carry a named field; the rest must be zero.
    static func usedMasks(_ kind: EventKind) -> (aux: Bool, p0: UInt64, p1: UInt64, p2: UInt64) {
        var aux = false, p0: UInt64 = 0, p1: UInt64 = 0, p2: UInt64 = 0
        for f in kind.fields {
            switch f.slot {
            case .aux, .resultAux: aux = true
            case .p0: p0 = f.mask
            case .p1: p1 = f.mask
            case .p2: p2 = f.mask
            case .descLen: p1 |= 0xFFFF_FFFF
            case .descFlags: p1 |= 0xFFFF << 32
            case .descNext: p1 |= 0xFFFF << 48
            case .descId: p1 |= 0xFFFF << 32
            case .packedFlagsP0: p0 |= 0xFFFF
            case .packedFlagsP1: p1 |= 0xFFFF << 48
            }
        }
        return (aux, p0, p1, p2)
    }

    /// Per-kind masks, computed once.
    static let masks: [(aux: Bool, p0: UInt64, p1: UInt64, p2: UInt64)?] = {
        var m = [(aux: Bool, p0: UInt64, p1: UInt64, p2: UInt64)?](repeating: nil, count: 256)
        for k in EventKind.allCases { m[Int(k.rawValue)] = usedMasks(k) }
        return m
    }()

    /// The event's 40 bytes at `p` (little-endian, the layout `encode(into:)` appends).
    @inlinable
    public func encode(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: kind.rawValue, toByteOffset: 0, as: UInt8.self)
        p.storeBytes(of: flags.rawValue, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: vq.littleEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: worker.littleEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: aux.littleEndian, toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: timestamp.littleEndian, toByteOffset: 8, as: UInt64.self)
        p.storeBytes(of: p0.littleEndian, toByteOffset: 16, as: UInt64.self)
        p.storeBytes(of: p1.littleEndian, toByteOffset: 24, as: UInt64.self)
        p.storeBytes(of: p2.littleEndian, toByteOffset: 32, as: UInt64.self)
    }

    public func encode(into out: inout [UInt8]) {
        out.append(kind.rawValue)
        out.append(flags.rawValue)
        out.appendLE(vq)
        out.appendLE(worker)
        out.appendLE(aux)
        out.appendLE(timestamp)
        out.appendLE(p0)
        out.appendLE(p1)
        out.appendLE(p2)
    }

    /// What `decode` checks of each kind, as one table entry: the per-event checks read it
    /// instead of computing the kind's plane, vq use and field masks for every event.
    // Usable from inlinable code: `TraceReader.forEach` is inlined into the event loops.
    @usableFromInline struct KindCheck {
        @usableFromInline var kind: EventKind?
        /// 0: vq required, 1: optional, 2: none (`EventKind.VQUse`).
        @usableFromInline var vqUse: UInt8 = 0
        @usableFromInline var hasWorker = false
        @usableFromInline var control = false
        @usableFromInline var aux = false
        @usableFromInline var p0: UInt64 = 0, p1: UInt64 = 0, p2: UInt64 = 0
    }

    /// Indexed by the kind byte; allocated once and never freed (a pointer, not an array, so that
    /// reading it retains nothing).
    // Written once by its initializer, only read after: safe to share across threads.
    @usableFromInline nonisolated(unsafe) static let kindChecks: UnsafeMutablePointer<KindCheck> = {
        let t = UnsafeMutablePointer<KindCheck>.allocate(capacity: 256)
        t.initialize(repeating: KindCheck(), count: 256)
        for k in EventKind.allCases {
            let m = masks[Int(k.rawValue)]!
            let use: UInt8 = switch k.vqUse { case .required: 0; case .optional: 1; case .none: 2 }
            t[Int(k.rawValue)] = KindCheck(kind: k, vqUse: use, hasWorker: k.hasWorker, control: k.plane == .control,
                                           aux: m.aux, p0: m.p0, p1: m.p1, p2: m.p2)
        }
        return t
    }()

    /// Decodes and validates one event from `raw` (exactly `size` bytes at `offset` in the file).
    /// A valid event takes the table's checks alone; anything else is decoded again by
    /// `decodeChecked`, whose checks, in order, name the error.
    @inlinable @inline(__always)
    static func decode(_ raw: UnsafeRawBufferPointer, offset: UInt64, queueCount: Int,
                       checks: UnsafeMutablePointer<KindCheck> = kindChecks) throws -> TraceEvent {
        let c = checks[Int(raw[0])]
        let flags = raw[1]
        let vq = raw.loadUnaligned(fromByteOffset: 2, as: UInt16.self).littleEndian
        let worker = raw.loadUnaligned(fromByteOffset: 4, as: UInt16.self).littleEndian
        let aux = raw.loadUnaligned(fromByteOffset: 6, as: UInt16.self).littleEndian
        let p0 = raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian
        let p1 = raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self).littleEndian
        let p2 = raw.loadUnaligned(fromByteOffset: 32, as: UInt64.self).littleEndian
        let vqOK: Bool
        switch c.vqUse {
        case 0: vqOK = Int(vq) < queueCount
        case 1: vqOK = vq == none || Int(vq) < queueCount
        default: vqOK = vq == none
        }
        guard let kind = c.kind, flags & ~Flags.known.rawValue == 0, !(c.control && flags & Flags.sampled.rawValue != 0), vqOK,
              c.hasWorker || worker == none, c.aux || aux == 0, p0 & ~c.p0 == 0, p1 & ~c.p1 == 0, p2 & ~c.p2 == 0 else {
            return try decodeChecked(raw, offset: offset, queueCount: queueCount)
        }
        let ts = raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian
        return TraceEvent(kind, vq: vq, worker: worker, aux: aux, timestamp: ts, p0: p0, p1: p1, p2: p2, flags: Flags(rawValue: flags))
    }

    /// Decodes one event checking each field in turn, and throws the first thing wrong with it.
    @usableFromInline static func decodeChecked(_ raw: UnsafeRawBufferPointer, offset: UInt64, queueCount: Int) throws -> TraceEvent {
        let k = raw[0]
        guard let kind = EventKind(rawValue: k) else {
            throw TraceError(offset: offset, "unknown event kind 0x\(String(k, radix: 16))")
        }
        let flags = Flags(rawValue: raw[1])
        guard Flags.known.isSuperset(of: flags) else {
            throw TraceError(offset: offset + 1, "unknown event flags 0x\(String(raw[1], radix: 16)) on \(kind.name)")
        }
        // A recorder relays control messages as they pass: they are exact, never sampled.
        if flags.contains(.sampled) && kind.plane == .control {
            throw TraceError(offset: offset + 1, "\(kind.name) is a control event: control events are exact and never carry the sampled flag")
        }
        let vq = raw.loadUnaligned(fromByteOffset: 2, as: UInt16.self).littleEndian
        let worker = raw.loadUnaligned(fromByteOffset: 4, as: UInt16.self).littleEndian
        let aux = raw.loadUnaligned(fromByteOffset: 6, as: UInt16.self).littleEndian
        let ts = raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian
        let p0 = raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian
        let p1 = raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self).littleEndian
        let p2 = raw.loadUnaligned(fromByteOffset: 32, as: UInt64.self).littleEndian
        switch kind.vqUse {
        case .required:
            guard Int(vq) < queueCount else {
                throw TraceError(offset: offset + 2, "\(kind.name): vq \(vq) out of range (trace has \(queueCount) queues)")
            }
        case .optional:
            guard vq == none || Int(vq) < queueCount else {
                throw TraceError(offset: offset + 2, "\(kind.name): vq \(vq) out of range (trace has \(queueCount) queues)")
            }
        case .none:
            guard vq == none else { throw TraceError(offset: offset + 2, "\(kind.name) is device-wide: vq must be 0xFFFF, found \(vq)") }
        }
        if !kind.hasWorker && worker != none {
            throw TraceError(offset: offset + 4, "\(kind.name) is not a worker action: worker must be 0xFFFF, found \(worker)")
        }
        let m = masks[Int(k)]!
        if !m.aux && aux != 0 { throw TraceError(offset: offset + 6, "\(kind.name): unused field aux must be 0") }
        if p0 & ~m.p0 != 0 { throw TraceError(offset: offset + 16, "\(kind.name): unused payload bits set in p0") }
        if p1 & ~m.p1 != 0 { throw TraceError(offset: offset + 24, "\(kind.name): unused payload bits set in p1") }
        if p2 & ~m.p2 != 0 { throw TraceError(offset: offset + 32, "\(kind.name): unused payload bits set in p2") }
        return TraceEvent(kind, vq: vq, worker: worker, aux: aux, timestamp: ts, p0: p0, p1: p1, p2: p2, flags: flags)
    }
}
