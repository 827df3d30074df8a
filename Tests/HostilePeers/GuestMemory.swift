import CSupport
import Glibc
import VhostUser

/// A front-end's guest memory for tests: a memfd mapped read-write here, handed to the peer under
/// test as one region. Writes go straight to the shared pages, as a driver's would.
public final class GuestMemory: @unchecked Sendable {
    public let fd: Int32
    public private(set) var size: Int
    public let base: UnsafeMutableRawPointer
    /// Guest-physical and front-end user address of offset 0 (distinct, so translation is exercised).
    public let guestAddr: UInt64
    public let userAddr: UInt64
    private let mappedSize: Int

    public init(size: Int, guestAddr: UInt64 = 0x1_0000_0000, userAddr: UInt64 = 0x7f00_0000_0000) {
        fd = cs_memfd("hostile-peer", Int64(size))
        precondition(fd >= 0, "memfd_create failed")
        self.size = size; mappedSize = size
        self.guestAddr = guestAddr; self.userAddr = userAddr
        base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)!
    }

    deinit { munmap(base, mappedSize); close(fd) }

    /// The region describing all of this memory (or a hostile variant of it).
    public func region(size: UInt64? = nil, mmapOffset: UInt64 = 0) -> MemoryRegionDescription {
        MemoryRegionDescription(guestAddr: guestAddr, size: size ?? UInt64(self.size), userAddr: userAddr, mmapOffset: mmapOffset)
    }

    public func user(_ offset: Int) -> UInt64 { userAddr + UInt64(offset) }
    public func guest(_ offset: Int) -> UInt64 { guestAddr + UInt64(offset) }

    public func put<T: FixedWidthInteger>(_ v: T, at offset: Int) {
        guard offset >= 0, offset + MemoryLayout<T>.size <= size else { return }
        (base + offset).storeBytes(of: v, toByteOffset: 0, as: T.self)
    }

    /// A release store of a 16-bit index (what a driver does when it publishes).
    public func publish(_ v: UInt16, at offset: Int) {
        guard offset >= 0, offset + 2 <= size else { return }
        // Everything written before is visible before the index (the driver's barrier).
        atomicFenceRelease()
        (base + offset).assumingMemoryBound(to: UInt16.self).pointee = v
    }

    public func get<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        (base + offset).loadUnaligned(as: T.self)
    }

    public func fill(_ byte: UInt8, at offset: Int, count: Int) {
        guard offset >= 0, count >= 0, offset + count <= size else { return }
        memset(base + offset, Int32(byte), count)
    }

    /// The front-end shrinks (or grows back) its file under every mapping of it.
    public func truncate(to bytes: Int) {
        precondition(ftruncate(fd, off_t(bytes)) == 0)
        size = min(bytes, mappedSize)
    }

    public func restore() { truncate(to: mappedSize) }
}

@inline(__always) func atomicFenceRelease() { cs_fence_release() }
