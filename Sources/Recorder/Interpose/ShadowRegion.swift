import CSupport
import Glibc
import VhostUser
import VirtioProtocol

/// The relay's own memory, added to the table the back-end receives: one memfd holding, per vring,
/// the shadow ring the back-end is given (split or packed, sized for the largest queue, 32768) and an arena
/// for copies of indirect tables. It lies at guest and user addresses above every region of the
/// front-end's table, so the back-end translates it like any other region.
final class ShadowRegion {
    /// Bytes per vring: desc table (16 N), avail ring (6 + 2 N), used ring (6 + 8 N) for N = 32768,
    /// then the indirect arena.
    static let descOffset = 0
    static let availOffset = 512 << 10
    static let usedOffset = 640 << 10
    static let arenaOffset = 1 << 20
    static let perVring = 2 << 20
    static let arenaBytes = perVring - arenaOffset
    /// Vrings the region has room for: 32 queue pairs. A back-end maps (and may walk) the whole
    /// region at SET_MEM_TABLE, so it is kept to what multi-queue pairs use (testpmd took about
    /// 2 s per GiB of region); vrings beyond are not relayed (`ring_gap reason=2`).
    static let maxVrings = 64

    let fd: Int32
    let size: Int
    let base: UnsafeMutableRawPointer
    let guestAddr: UInt64
    let userAddr: UInt64

    /// A region for `vrings` vrings above every region of `table`; nil with the reason.
    static func make(vrings: Int, above table: [MemoryRegionDescription]) -> (ShadowRegion?, String?) {
        let size = max(1, min(vrings, maxVrings)) * perVring
        let gib: UInt64 = 1 << 30
        func above(_ ends: [UInt64]) -> UInt64? {
            let top = ends.max() ?? 0
            let (r, o) = (top / gib + 2).multipliedReportingOverflow(by: gib)
            guard !o, r <= UInt64.max - UInt64(size) else { return nil }
            return r
        }
        guard let g = above(table.map { $0.guestAddr &+ $0.size }), let u = above(table.map { $0.userAddr &+ $0.size }) else {
            return (nil, "no room for the relay's region above the front-end's addresses")
        }
        let fd = cs_memfd("conformance-interpose", Int64(size))
        guard fd >= 0 else { return (nil, "memfd for the shadow rings: \(String(cString: strerror(errno)))") }
        guard let p = cs_mmap_shared(fd, size, 0, 1) else {
            close(fd)
            return (nil, "mmap of the shadow rings: \(String(cString: strerror(errno)))")
        }
        return (ShadowRegion(fd: fd, size: size, base: p, guestAddr: g, userAddr: u), nil)
    }

    private init(fd: Int32, size: Int, base: UnsafeMutableRawPointer, guestAddr: UInt64, userAddr: UInt64) {
        self.fd = fd; self.size = size; self.base = base; self.guestAddr = guestAddr; self.userAddr = userAddr
    }

    deinit { _ = cs_munmap(base, size); close(fd) }

    var vrings: Int { size / Self.perVring }

    var description: MemoryRegionDescription {
        MemoryRegionDescription(guestAddr: guestAddr, size: UInt64(size), userAddr: userAddr, mmapOffset: 0)
    }

    /// Whether `d` (a front-end region) overlaps this region's guest or user range.
    func overlaps(_ d: MemoryRegionDescription) -> Bool {
        func hit(_ a: UInt64, _ b: UInt64) -> Bool { a < b &+ UInt64(size) && b < a &+ d.size }
        return hit(d.guestAddr, guestAddr) || hit(d.userAddr, userAddr)
    }

    /// The shadow ring of `vq` with `size` entries in `format`. Packed: the descriptor ring
    /// (16 N) where the split table goes, the driver and device event suppression structures
    /// (4 bytes each) where the avail and used rings go (SET_VRING_ADDR's avail and used).
    func ring(vq: UInt16, size n: UInt32, format: RingFormat = .split) -> ShadowRing? {
        guard Int(vq) < vrings, format.isValidQueueSize(n) else { return nil }
        let o = Int(vq) * Self.perVring
        func r(_ off: Int, _ len: Int) -> GuestRange { GuestRange(base: base + o + off, count: len, writable: true) }
        let N = Int(n)
        let packed = format == .packed
        return ShadowRing(size: n, format: format,
                          desc: r(Self.descOffset, 16 * N), avail: r(Self.availOffset, packed ? 4 : 6 + 2 * N), used: r(Self.usedOffset, packed ? 4 : 6 + 8 * N),
                          arena: r(Self.arenaOffset, Self.arenaBytes),
                          descUser: userAddr + UInt64(o + Self.descOffset), availUser: userAddr + UInt64(o + Self.availOffset),
                          usedUser: userAddr + UInt64(o + Self.usedOffset), arenaGuest: guestAddr + UInt64(o + Self.arenaOffset))
    }
}

/// One vring's shadow ring (what the back-end reads and writes) and its indirect arena. Packed:
/// `desc` is the descriptor ring, `avail` the driver's and `used` the device's event suppression.
struct ShadowRing {
    let size: UInt32
    let format: RingFormat
    let desc: GuestRange
    let avail: GuestRange
    let used: GuestRange
    let arena: GuestRange
    let descUser: UInt64
    let availUser: UInt64
    let usedUser: UInt64
    let arenaGuest: UInt64
}
