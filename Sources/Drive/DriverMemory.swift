import Glibc
import VhostUser

/// A span of guest memory `drive` allocated: where it is in which region, and its addresses.
public struct GuestSpan: Sendable, Equatable {
    public let region: Int
    public let offset: Int
    public let length: Int
    /// Guest-physical address (what descriptors carry).
    public let guest: UInt64
    /// Front-end user address (what SET_VRING_ADDR carries).
    public let user: UInt64

    public func sub(_ offset: Int, _ length: Int) -> GuestSpan {
        GuestSpan(region: region, offset: self.offset + offset, length: length, guest: guest + UInt64(offset), user: user + UInt64(offset))
    }
}

/// The front-end's guest memory: one or several sealed memfd regions at distinct guest and user
/// addresses, with gaps between them (addresses in a gap, or below the first region, are outside
/// the memory table).
///
/// It also keeps what the device may change. Every write `drive` makes goes to the shared pages
/// and to a private copy; the device may write only the used rings and the device-writable buffers
/// it was given (`allowDeviceWrites`). `strayWrites` compares the rest with the copy: a difference
/// is a byte the back-end wrote where the spec does not let a device write.
public final class DriverMemory {
    public let regions: [GuestRegion]
    private var next: [Int]
    private var shadow: [[UInt8]]
    /// One bit per byte: the device may write it.
    private var allowed: [[UInt64]]
    private var labels: [[(range: Range<Int>, label: String)]]

    /// Region k starts at guest 4 GiB × (k + 1) and user 0x7f00_0000_0000 + 64 GiB × k.
    public static func guestBase(_ k: Int) -> UInt64 { 0x1_0000_0000 * UInt64(k + 1) }
    public static func userBase(_ k: Int) -> UInt64 { 0x7f00_0000_0000 + 0x10_0000_0000 * UInt64(k) }

    public init(regionSizes: [Int]) throws(GuestRegion.Failure) {
        var rs: [GuestRegion] = []
        for (k, n) in regionSizes.enumerated() {
            rs.append(try GuestRegion(size: n, guestAddr: Self.guestBase(k), userAddr: Self.userBase(k), sealed: true))
        }
        regions = rs
        next = Array(repeating: 0, count: rs.count)
        shadow = regionSizes.map { [UInt8](repeating: 0, count: $0) }
        allowed = regionSizes.map { [UInt64](repeating: 0, count: ($0 + 63) / 64) }
        labels = Array(repeating: [], count: rs.count)
    }

    /// The memory table: every region, with its fd.
    public var table: (regions: [MemoryRegionDescription], fds: [Int32]) {
        (regions.map { $0.region() }, regions.map(\.fd))
    }

    public var totalSize: Int { regions.reduce(0) { $0 + $1.size } }

    /// `length` bytes aligned to `align` in region `region` (wrapping to the next region with room).
    public func alloc(_ length: Int, align: Int = 64, region: Int = 0, label: String) throws(DriveError) -> GuestSpan {
        for k in 0..<regions.count {
            let r = (region + k) % regions.count
            let start = (next[r] + align - 1) / align * align
            if start + length <= regions[r].size {
                next[r] = start + length
                labels[r].append((start..<start + length, label))
                return GuestSpan(region: r, offset: start, length: length,
                                 guest: regions[r].guestAddr + UInt64(start), user: regions[r].userAddr + UInt64(start))
            }
        }
        throw .tool("guest memory exhausted: \(length) bytes for \(label) do not fit in \(regions.count) region(s) of \(regions.map(\.size)) bytes")
    }

    /// Frees everything allocated (a new scenario phase reuses the memory); contents stay.
    public func resetAllocation() {
        for r in regions.indices { next[r] = 0; labels[r] = [] }
    }

    /// The span at guest-physical `addr`, if `length` bytes there lie in one region.
    public func span(guest addr: UInt64, length: Int) -> GuestSpan? {
        for (k, r) in regions.enumerated() where addr >= r.guestAddr && addr - r.guestAddr <= UInt64(r.size) {
            let off = Int(addr - r.guestAddr)
            guard length >= 0, off + length <= r.size else { return nil }
            return GuestSpan(region: k, offset: off, length: length, guest: addr, user: r.userAddr + UInt64(off))
        }
        return nil
    }

    // MARK: the driver's writes (shared pages and the private copy)

    public func write<T: FixedWidthInteger>(_ v: T, at s: GuestSpan, _ offset: Int = 0) {
        let o = s.offset + offset
        let n = MemoryLayout<T>.size
        guard o >= 0, o + n <= regions[s.region].size else { return }
        withUnsafeBytes(of: v) { b in
            _ = regions[s.region].range.write(b, at: o)
            for i in 0..<n { shadow[s.region][o + i] = b[i] }
        }
    }

    public func write(bytes: [UInt8], at s: GuestSpan, _ offset: Int = 0) {
        let o = s.offset + offset
        guard o >= 0, o + bytes.count <= regions[s.region].size else { return }
        bytes.withUnsafeBytes { _ = regions[s.region].range.write($0, at: o) }
        shadow[s.region].replaceSubrange(o..<o + bytes.count, with: bytes)
    }

    public func fill(_ byte: UInt8, at s: GuestSpan) {
        write(bytes: [UInt8](repeating: byte, count: s.length), at: s)
    }

    /// Release store of a 16-bit index the driver publishes (avail.idx).
    public func publish16(_ v: UInt16, at s: GuestSpan, _ offset: Int) {
        let o = s.offset + offset
        _ = regions[s.region].range.store16Release(v, at: o)
        withUnsafeBytes(of: v) { b in shadow[s.region][o] = b[0]; shadow[s.region][o + 1] = b[1] }
    }

    // MARK: reading what the device wrote

    public func load16Acquire(_ s: GuestSpan, _ offset: Int) -> UInt16? { regions[s.region].range.load16Acquire(at: s.offset + offset) }
    public func load<T: FixedWidthInteger>(_: T.Type, _ s: GuestSpan, _ offset: Int) -> T? { regions[s.region].range.load(T.self, at: s.offset + offset) }
    public func bytes(_ s: GuestSpan, _ offset: Int = 0, count: Int) -> [UInt8]? { regions[s.region].range.bytes(at: s.offset + offset, count: count) }

    // MARK: what the device may write

    /// The device may write `s` (a used ring, or a buffer the driver made device-writable).
    public func allowDeviceWrites(_ s: GuestSpan) {
        mark(region: s.region, s.offset..<s.offset + s.length)
    }

    /// As above, for a device-writable descriptor's guest address; the part inside the memory
    /// table is marked (a buffer outside it cannot be written at all).
    public func allowDeviceWrites(guest addr: UInt64, length: UInt32) {
        for (k, r) in regions.enumerated() {
            let lo = max(addr, r.guestAddr), hi = min(addr &+ UInt64(length), r.guestAddr + UInt64(r.size))
            if addr &+ UInt64(length) < addr { continue }
            if lo < hi { mark(region: k, Int(lo - r.guestAddr)..<Int(hi - r.guestAddr)) }
        }
    }

    private func mark(region k: Int, _ r: Range<Int>) {
        var i = r.lowerBound
        while i < r.upperBound {
            if i % 64 == 0 && i + 64 <= r.upperBound { allowed[k][i / 64] = ~0; i += 64; continue }
            allowed[k][i / 64] |= 1 << UInt64(i % 64)
            i += 1
        }
    }

    private func isAllowed(_ k: Int, _ i: Int) -> Bool { allowed[k][i / 64] & (1 << UInt64(i % 64)) != 0 }

    /// A run of bytes the device changed where it may not write.
    public struct StrayWrite: Sendable, CustomStringConvertible {
        public let guest: UInt64
        public let length: Int
        /// What `drive` had put there (the label of its allocation), or "unallocated memory".
        public let what: String
        public let expected: [UInt8]
        public let found: [UInt8]
        public var description: String {
            "\(length) byte(s) at guest 0x\(String(guest, radix: 16)) (\(what)) changed: expected \(hex(expected)), found \(hex(found))"
        }
        private func hex(_ b: [UInt8]) -> String { b.prefix(8).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() + (b.count > 8 ? "..." : "") }
    }

    /// Bytes that differ from what `drive` wrote and that the device was not allowed to write,
    /// as at most `limit` runs.
    public func strayWrites(limit: Int = 4) -> [StrayWrite] {
        var out: [StrayWrite] = []
        for (k, r) in regions.enumerated() {
            let size = r.size
            var i = 0
            while i < size && out.count < limit {
                let chunk = min(4096, size - i)
                let same = shadow[k].withUnsafeBytes { s in memcmp(r.base + i, s.baseAddress! + i, chunk) == 0 }
                if same { i += chunk; continue }
                var j = i
                let end = i + chunk
                while j < end && out.count < limit {
                    let live = r.base.load(fromByteOffset: j, as: UInt8.self)
                    guard live != shadow[k][j], !isAllowed(k, j) else { j += 1; continue }
                    var e = j
                    while e < size && e - j < 64 && !isAllowed(k, e) && r.base.load(fromByteOffset: e, as: UInt8.self) != shadow[k][e] { e += 1 }
                    let what = labels[k].first { $0.range.contains(j) }?.label ?? "unallocated memory"
                    out.append(StrayWrite(guest: r.guestAddr + UInt64(j), length: e - j, what: what,
                                          expected: Array(shadow[k][j..<e]), found: (j..<e).map { r.base.load(fromByteOffset: $0, as: UInt8.self) }))
                    j = e
                }
                i = end
            }
        }
        return out
    }
}
