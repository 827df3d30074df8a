import VirtioProtocol
import VirtqueueModel
import TraceFormat

extension RingStep {
    /// The ring step a data-plane trace event stands for (nil: kicks, interrupts and other events
    /// the ring model does not take as steps). One definition for the checker and the trace tools.
    public init?(event e: TraceEvent) {
        guard let s = Self.make(e) else { return nil }
        self = s
    }

    // Inlined into the checker's driver and device paths (as a call, about 24 instructions a step).
    @inlinable @inline(__always)
    static func make(_ e: TraceEvent) -> RingStep? {
        let d = Descriptor(addr: e.descAddr, len: e.descLen, flags: e.descFlags, next: e.descNext)
        switch e.kind {
        case .desc: return .writeDescriptor(e.aux, d)
        case .indirectDesc: return .writeIndirect(parent: UInt16(truncatingIfNeeded: e.p2), entry: e.aux, d)
        case .availEntry: return .writeAvailEntry(pos: UInt16(truncatingIfNeeded: e.p0), head: e.aux)
        case .availIdx: return .publishAvail(UInt16(truncatingIfNeeded: e.p0))
        case .availFlags: return .setAvailFlags(UInt16(truncatingIfNeeded: e.p0))
        case .usedEvent: return .setUsedEvent(UInt16(truncatingIfNeeded: e.p0))
        case .availRead: return .readAvail(pos: UInt16(truncatingIfNeeded: e.p0), head: e.aux)
        case .usedEntry: return .writeUsed(pos: UInt16(truncatingIfNeeded: e.p0), id: UInt32(truncatingIfNeeded: e.p1), len: UInt32(truncatingIfNeeded: e.p2))
        case .usedIdx: return .publishUsed(UInt16(truncatingIfNeeded: e.p0))
        case .usedFlags: return .setUsedFlags(UInt16(truncatingIfNeeded: e.p0))
        case .availEvent: return .setAvailEvent(UInt16(truncatingIfNeeded: e.p0))
        case .packedDesc: return .writePacked(slot: e.aux, addr: e.p0, len: e.packedLen, id: e.packedId)
        case .packedFlags: return .storeAvailFlags(slot: e.aux, e.packedFlags)
        case .packedIndirectDesc:
            return .writePackedIndirect(parent: UInt16(truncatingIfNeeded: e.p2), entry: e.aux,
                                        PackedDescriptor(addr: e.p0, len: e.packedLen, id: e.packedId, flags: e.packedEntryFlags))
        case .driverEvent: return .setDriverEvent(e.eventSuppression)
        case .packedRead: return .readPacked(slot: e.aux)
        case .packedUsed: return .writePackedUsed(slot: e.aux, id: e.packedId, len: e.packedLen)
        case .packedUsedFlags: return .storeUsedFlags(slot: e.aux, e.packedFlags)
        case .deviceEvent: return .setDeviceEvent(e.eventSuppression)
        default: return nil
        }
    }
}
