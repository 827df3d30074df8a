import CSupport
import Glibc
import VhostUser

/// One region of a front-end's guest memory: a memfd mapped read-write here and handed to the peer
/// under test (a back-end) in the memory table. Writes go straight to the shared pages, as a
/// driver's do. `drive` seals its regions so the back-end cannot shrink the file under this
/// mapping; the hostile-peer tests use unsealed ones, whose truncation is one of their attacks.
public final class GuestRegion: @unchecked Sendable {
    public let fd: Int32
    public private(set) var size: Int
    public let base: UnsafeMutableRawPointer
    /// Guest-physical and front-end user address of offset 0 (distinct, so translation is exercised).
    public let guestAddr: UInt64
    public let userAddr: UInt64
    private let mappedSize: Int

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Takes ownership of `fd` (a memory file of at least `size` bytes) and maps it read-write.
    public init(adopting fd: Int32, size: Int, guestAddr: UInt64, userAddr: UInt64) throws(Failure) {
        guard size > 0, let p = cs_mmap_shared(fd, size, 0, 1) else {
            let e = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: "cannot map \(size) bytes of guest memory: \(e)")
        }
        self.fd = fd; base = p
        self.size = size; mappedSize = size
        self.guestAddr = guestAddr; self.userAddr = userAddr
    }

    /// A new region of `size` bytes (zeroed), sealed against resizing when `sealed`.
    public convenience init(size: Int, guestAddr: UInt64 = 0x1_0000_0000, userAddr: UInt64 = 0x7f00_0000_0000, sealed: Bool) throws(Failure) {
        let fd = sealed ? cs_memfd_sealed("drive-guest", Int64(size)) : cs_memfd("hostile-peer", Int64(size))
        guard fd >= 0 else { throw Failure(description: "memfd_create of \(size) bytes failed: \(String(cString: strerror(errno)))") }
        try self.init(adopting: fd, size: size, guestAddr: guestAddr, userAddr: userAddr)
    }

    deinit { _ = cs_munmap(base, mappedSize); close(fd) }

    /// The region describing all of this memory (or a hostile variant of it).
    public func region(size: UInt64? = nil, mmapOffset: UInt64 = 0) -> MemoryRegionDescription {
        MemoryRegionDescription(guestAddr: guestAddr, size: size ?? UInt64(self.size), userAddr: userAddr, mmapOffset: mmapOffset)
    }

    public func user(_ offset: Int) -> UInt64 { userAddr + UInt64(offset) }
    public func guest(_ offset: Int) -> UInt64 { guestAddr + UInt64(offset) }

    /// All of the region as a guarded range (the accesses `drive` makes).
    public var range: GuestRange { GuestRange(base: base, count: size, writable: true) }

    public func put<T: FixedWidthInteger>(_ v: T, at offset: Int) {
        guard offset >= 0, offset + MemoryLayout<T>.size <= size else { return }
        (base + offset).storeBytes(of: v, toByteOffset: 0, as: T.self)
    }

    /// A release store of a 16-bit index (what a driver does when it publishes).
    public func publish(_ v: UInt16, at offset: Int) {
        guard offset >= 0, offset + 2 <= size else { return }
        // Everything written before is visible before the index (the driver's barrier).
        cs_fence_release()
        (base + offset).assumingMemoryBound(to: UInt16.self).pointee = v
    }

    public func get<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        (base + offset).loadUnaligned(as: T.self)
    }

    public func fill(_ byte: UInt8, at offset: Int, count: Int) {
        guard offset >= 0, count >= 0, offset + count <= size else { return }
        memset(base + offset, Int32(byte), count)
    }

    /// The front-end shrinks (or grows back) its file under every mapping of it (unsealed regions only).
    public func truncate(to bytes: Int) {
        precondition(ftruncate(fd, off_t(bytes)) == 0)
        size = min(bytes, mappedSize)
    }

    public func restore() { truncate(to: mappedSize) }
}
