import CSupport
import Glibc
import VirtioProtocol

/// Why a region was refused. The message names the region and the numbers that do not fit.
public struct MemoryTableError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The front-end's memory as a back-end sees it: the regions of SET_MEM_TABLE / ADD_MEM_REG, each
/// checked against its file before it is mapped (read-only for the recorder, read-write for a
/// back-end that serves the rings), with user-address and guest-address translation.
///
/// A region is refused unless: its size is non-zero; guest, user and file ranges do not overflow;
/// its fd is a regular file (memfd, tmpfs, hugetlbfs) whose size covers `mmapOffset + size`; it
/// overlaps no other region's guest or user range; and the table stays within `maxRegions`. Those
/// checks make every mapped byte exist when the table is set; a peer that shrinks the file later
/// is met by the guarded accesses of `GuestRange`.
public final class MemoryTable {
    public let writable: Bool
    public let maxRegions: Int
    public private(set) var regions: [MappedRegion] = []

    public init(writable: Bool = false, maxRegions: Int = VhostUser.maxMemSlots) {
        self.writable = writable; self.maxRegions = maxRegions
        cs_guard_install()
    }

    public var isEmpty: Bool { regions.isEmpty }

    public func clear() { regions = [] }

    /// SET_MEM_TABLE: all regions or none (the previous table is dropped either way, as a back-end does).
    public func replace(with table: [MemoryRegionDescription], fds: [Int32]) throws(MemoryTableError) {
        clear()
        guard table.count == fds.count else {
            throw MemoryTableError("the table names \(table.count) region(s) but \(fds.count) fd(s) came with it")
        }
        guard table.count <= VhostUser.maxMemRegions else {
            throw MemoryTableError("the table names \(table.count) regions (SET_MEM_TABLE carries at most \(VhostUser.maxMemRegions))")
        }
        do {
            for (d, fd) in zip(table, fds) { try add(d, fd: fd) }
        } catch {
            clear()
            throw error
        }
    }

    /// Validates and maps one region; the fd stays the caller's.
    public func add(_ d: MemoryRegionDescription, fd: Int32) throws(MemoryTableError) {
        let name = "region at guest 0x\(hex(d.guestAddr)) (size 0x\(hex(d.size)), offset 0x\(hex(d.mmapOffset)))"
        guard regions.count < maxRegions else { throw MemoryTableError("\(name): the table already has \(maxRegions) regions") }
        guard d.size > 0 else { throw MemoryTableError("\(name) is empty") }
        let (gEnd, gOver) = d.guestAddr.addingReportingOverflow(d.size - 1)
        let (uEnd, uOver) = d.userAddr.addingReportingOverflow(d.size - 1)
        let (fEnd, fOver) = d.mmapOffset.addingReportingOverflow(d.size)
        guard !gOver, !uOver, !fOver, fEnd <= UInt64(Int64.max) else {
            throw MemoryTableError("\(name): its address ranges overflow 64 bits")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw MemoryTableError("\(name): fstat of its fd failed: \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw MemoryTableError("\(name): its fd is not a memory file (memfd, tmpfs or hugetlbfs)")
        }
        guard st.st_size >= 0, fEnd <= UInt64(st.st_size) else {
            throw MemoryTableError("\(name) ends at file offset 0x\(hex(fEnd)), beyond the end of its file (0x\(hex(UInt64(max(0, st.st_size)))) bytes)")
        }
        let g = d.guestAddr...gEnd, u = d.userAddr...uEnd
        if let other = regions.first(where: { $0.guestRange.overlaps(g) || $0.userRange.overlaps(u) }) {
            throw MemoryTableError("\(name) overlaps the region at guest 0x\(hex(other.description.guestAddr))")
        }
        // hugetlbfs reports its huge page size as the block size; mappings must start on one.
        let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        let blk = UInt64(max(0, st.st_blksize))
        let align = blk > page && blk & (blk - 1) == 0 ? blk : page
        let start = d.mmapOffset / align * align
        let length = fEnd - start
        guard length <= UInt64(Int.max), let p = cs_mmap_shared(fd, Int(length), Int64(start), writable ? 1 : 0) else {
            throw MemoryTableError("\(name): mmap failed: \(String(cString: strerror(errno)))")
        }
        regions.append(MappedRegion(description: d, writable: writable, mapping: p, mappingLength: Int(length),
                                    base: p + Int(d.mmapOffset - start), fileIdentity: (UInt64(st.st_dev), UInt64(st.st_ino))))
    }

    /// REM_MEM_REG: drops the region with the same guest address, size and user address. Returns
    /// whether one was found.
    @discardableResult
    public func remove(_ d: MemoryRegionDescription) -> Bool {
        guard let i = regions.firstIndex(where: {
            $0.description.guestAddr == d.guestAddr && $0.description.size == d.size && $0.description.userAddr == d.userAddr
        }) else { return false }
        regions.remove(at: i)
        return true
    }

    /// `length` bytes at front-end user address `addr` (ring addresses, without IOMMU), if they lie
    /// inside one region.
    public func user(_ addr: UInt64, length: UInt64) -> GuestRange? {
        for r in regions where addr >= r.description.userAddr {
            if let g = r.range(at: addr - r.description.userAddr, length: length) { return g }
        }
        return nil
    }

    /// `length` bytes at guest-physical address `addr` (descriptor buffers, indirect tables).
    public func guest(_ addr: UInt64, length: UInt64) -> GuestRange? {
        for r in regions where addr >= r.description.guestAddr {
            if let g = r.range(at: addr - r.description.guestAddr, length: length) { return g }
        }
        return nil
    }

    private func hex(_ v: UInt64) -> String { String(v, radix: 16) }
}
