import CSupport
import Glibc

/// One memory region of the table, mapped from its fd. The mapping starts at the region's
/// `mmapOffset` rounded down to the file's page size and ends at the region's end.
public final class MappedRegion {
    public let description: MemoryRegionDescription
    public let writable: Bool
    let mapping: UnsafeMutableRawPointer
    let mappingLength: Int
    /// The region's first byte.
    public let base: UnsafeMutableRawPointer
    /// (st_dev, st_ino) of the file, for tests and diagnostics.
    public let fileIdentity: (UInt64, UInt64)

    init(description: MemoryRegionDescription, writable: Bool, mapping: UnsafeMutableRawPointer, mappingLength: Int,
         base: UnsafeMutableRawPointer, fileIdentity: (UInt64, UInt64)) {
        self.description = description; self.writable = writable; self.mapping = mapping
        self.mappingLength = mappingLength; self.base = base; self.fileIdentity = fileIdentity
    }

    deinit { _ = cs_munmap(mapping, mappingLength) }

    var guestRange: ClosedRange<UInt64> { description.guestAddr...(description.guestAddr + description.size - 1) }
    var userRange: ClosedRange<UInt64> { description.userAddr...(description.userAddr + description.size - 1) }

    /// `length` bytes at offset `offset` of the region, if inside it.
    func range(at offset: UInt64, length: UInt64) -> GuestRange? {
        guard offset <= description.size, length <= description.size - offset, length <= UInt64(Int.max) else { return nil }
        return GuestRange(base: base + Int(offset), count: Int(length), writable: writable)
    }
}
