import VirtioProtocol

/// One region of a SET_MEM_TABLE (vhost-user) or VHOST_SET_MEM_TABLE (kernel): the same guest
/// memory seen at a guest-physical and at a front-end user address.
public struct MemoryRegion: Equatable, Sendable {
    public var guest: UInt64
    public var size: UInt64
    public var user: UInt64
    public init(guest: UInt64, size: UInt64, user: UInt64) { self.guest = guest; self.size = size; self.user = user }
}

/// The current memory table, built from a `set_mem_table` event and the `mem_region` events right
/// after it. Until every region announced has been described the table is not judged from (a trace
/// from an older recorder carries only the count).
public struct MemoryTable: Sendable {
    public private(set) var regions: [MemoryRegion] = []
    public private(set) var announced = 0
    /// Regions judged at most: vhost-user carries 8 per SET_MEM_TABLE (more with CONFIGURE_MEM_SLOTS), kernel
    /// vhost caps them by a module parameter (64 by default, 509 at most). A larger table is not judged.
    public static let maxRegions = 512
    /// The regions sorted by guest and by user address, for lookups once the table is complete.
    private var byGuest: [MemoryRegion] = []
    private var byUser: [MemoryRegion] = []

    public init() {}

    /// A successful SET_MEM_TABLE replaces the table; its regions follow as `mem_region` events.
    public mutating func replace(count: Int) {
        regions = []; byGuest = []; byUser = []
        announced = count <= Self.maxRegions ? max(0, count) : 0
    }

    public mutating func add(_ r: MemoryRegion) {
        guard regions.count < announced else { return }
        regions.append(r)
        if complete {
            byGuest = regions.sorted { $0.guest < $1.guest }
            byUser = regions.sorted { $0.user < $1.user }
        }
    }

    /// Every announced region is known: addresses can be judged against the table.
    public var complete: Bool { announced > 0 && regions.count == announced }

    /// Whether [addr, addr + len) lies inside the union of the regions' guest-physical ranges.
    public func coversGuest(_ addr: UInt64, _ len: UInt64) -> Bool { covers(addr, len, byGuest, \.guest) }

    /// Whether [addr, addr + len) lies inside the union of the regions' user-address ranges.
    public func coversUser(_ addr: UInt64, _ len: UInt64) -> Bool { covers(addr, len, byUser, \.user) }

    /// A range may span adjacent regions (vhost translates piecewise); a zero-length range touches
    /// no memory and is always covered. Each step moves past one region: at most `sorted.count` steps
    /// of a binary search each.
    private func covers(_ addr: UInt64, _ len: UInt64, _ sorted: [MemoryRegion], _ base: KeyPath<MemoryRegion, UInt64>) -> Bool {
        guard len > 0 else { return true }
        let (end, overflow) = addr.addingReportingOverflow(len)
        guard !overflow, !sorted.isEmpty else { return false }
        var at = addr
        for _ in 0..<sorted.count {
            // The last region starting at or below `at`.
            var lo = 0, hi = sorted.count
            while lo < hi { let mid = (lo + hi) / 2; if sorted[mid][keyPath: base] <= at { lo = mid + 1 } else { hi = mid } }
            var found: MemoryRegion?
            var i = lo - 1
            // Overlapping regions: any of those starting at or below `at` may contain it.
            while i >= 0 {
                let r = sorted[i]
                if at - r[keyPath: base] < r.size { found = r; break }
                i -= 1
                if lo - 1 - i > 8 { break } // tables do not overlap in practice; bound the look-back
            }
            guard let r = found else { return false }
            let rEnd = r[keyPath: base].addingReportingOverflow(r.size)
            if rEnd.overflow || rEnd.partialValue >= end { return true }
            at = rEnd.partialValue
        }
        return false
    }

    /// Describes the table for messages.
    public var summary: String {
        regions.prefix(8).map { "guest 0x\(String($0.guest, radix: 16))+0x\(String($0.size, radix: 16)) at user 0x\(String($0.user, radix: 16))" }
            .joined(separator: "; ") + (regions.count > 8 ? "; ..." : "")
    }
}

/// Bytes of each split-ring part for queue size `n` (virtio 1.x "Split Virtqueues" table; the
/// trailing used_event / avail_event are counted only with EVENT_IDX).
public enum SplitRingExtent {
    public static func descriptorTable(_ n: UInt32) -> UInt64 { 16 * UInt64(n) }
    public static func availRing(_ n: UInt32, eventIdx: Bool) -> UInt64 { 4 + 2 * UInt64(n) + (eventIdx ? 2 : 0) }
    public static func usedRing(_ n: UInt32, eventIdx: Bool) -> UInt64 { 4 + 8 * UInt64(n) + (eventIdx ? 2 : 0) }
}
