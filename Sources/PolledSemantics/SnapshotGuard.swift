import VirtioProtocol

/// When the entries one poll read can be trusted to hold the values of the positions they were read
/// for. A poll reads avail.idx = A, then the slots of the new positions [prevAvail, A); the driver can
/// have overwritten the slot of position p before it was read only by writing position p + N, that is
/// by writing N - (A - 1 - p) entries beyond A, and only once used.idx has passed p (the in-flight
/// bound). Those entries are the ones it published while the poll read (A2 - A, with A2 avail.idx read
/// again after the slots) plus those written ahead of the index it published, at most `writeAhead`.
/// The used side is the same argument with the device's writes. `Specs/recorder.md` has it in full.
public enum SnapshotGuard {
    /// Entries a driver writes beyond the avail.idx it has published, or a device beyond its used.idx,
    /// assumed at most: Linux writes one ahead, DPDK one burst of 32. Recorders may be told more.
    public static let defaultWriteAhead: UInt32 = 32

    /// Whether a slot of [prevAvail, avail) may have been overwritten before the poll read it.
    /// - Parameters:
    ///   - availAgain: avail.idx read again after the slots (equal to `avail` when not known).
    ///   - used: used.idx read after the slots (an upper bound of used.idx when they were read).
    public static func availSideAtRisk(prevAvail: UInt16, avail: UInt16, availAgain: UInt16, used: UInt16,
                                       size: UInt32, writeAhead: UInt32 = defaultWriteAhead) -> Bool {
        let m = UInt32(SplitRing.distance(from: prevAvail, to: avail))
        if m > size { return true }
        guard m > 0 else { return false }
        // No slot is at risk unless used.idx had passed the oldest new position.
        let passed = SplitRing.distance(from: prevAvail, to: used)
        guard passed > 0 && passed < 0x8000 else { return false }
        return m + UInt32(SplitRing.distance(from: avail, to: availAgain)) + writeAhead > size
    }

    /// Whether a used slot of [prevUsed, used) may have been overwritten before the poll read it.
    /// - Parameters:
    ///   - usedAgain: used.idx read again after the elements (equal to `used` when not known).
    ///   - availAfter: avail.idx read after the elements, if known: the device can write the element
    ///     of position q + N only once the driver has made position q + N available.
    public static func usedSideAtRisk(prevUsed: UInt16, used: UInt16, usedAgain: UInt16, availAfter: UInt16?,
                                      size: UInt32, writeAhead: UInt32 = defaultWriteAhead) -> Bool {
        let c = UInt32(SplitRing.distance(from: prevUsed, to: used))
        if c > size { return true }
        guard c > 0 else { return false }
        if let a = availAfter {
            let beyond = SplitRing.distance(from: prevUsed &+ UInt16(truncatingIfNeeded: size), to: a)
            guard beyond > 0 && beyond < 0x8000 else { return false }
        }
        return c + UInt32(SplitRing.distance(from: used, to: usedAgain)) + writeAhead > size
    }
}
