import CSupport
import Glibc

/// The front-end's memory as the back-end sees it: the regions of SET_MEM_TABLE (or ADD_MEM_REG),
/// mapped read-only. Ring addresses from SET_VRING_ADDR are front-end user addresses (QEMU's
/// virtual addresses, DPDK virtio-user's own pointers) and translate through `userAddr`;
/// descriptor buffer addresses (indirect tables) are guest-physical and translate through `guestAddr`.
final class GuestMemory {
    struct Region {
        let guestAddr: UInt64
        let size: UInt64
        let userAddr: UInt64
        let mmapOffset: UInt64
        /// Start of the whole mapping (offset 0 of the fd) and its length.
        let mapping: UnsafeMutableRawPointer
        let mappingLength: Int
        var base: UnsafeRawPointer { UnsafeRawPointer(mapping) + Int(mmapOffset) }
    }

    private(set) var regions: [Region] = []

    /// Maps one region from its fd; the fd itself stays with the caller (it is forwarded).
    /// Throws a readable reason when the region cannot be mapped.
    func add(guestAddr: UInt64, size: UInt64, userAddr: UInt64, mmapOffset: UInt64, fd: Int32) throws(MessageError) {
        let (total, overflow) = size.addingReportingOverflow(mmapOffset)
        guard size > 0, !overflow, total <= UInt64(Int.max) else {
            throw .malformed("memory region at guest 0x\(String(guestAddr, radix: 16)) has size 0x\(String(size, radix: 16)) and offset 0x\(String(mmapOffset, radix: 16))")
        }
        guard let p = cs_mmap_ro(fd, Int(total)) else {
            throw .io("cannot map memory region at guest 0x\(String(guestAddr, radix: 16)) (0x\(String(size, radix: 16)) bytes): \(String(cString: strerror(errno)))")
        }
        regions.append(Region(guestAddr: guestAddr, size: size, userAddr: userAddr, mmapOffset: mmapOffset, mapping: p, mappingLength: Int(total)))
    }

    func remove(guestAddr: UInt64, size: UInt64) {
        regions.removeAll { r in
            if r.guestAddr == guestAddr && r.size == size { _ = cs_munmap(r.mapping, r.mappingLength); return true }
            return false
        }
    }

    func clear() {
        for r in regions { _ = cs_munmap(r.mapping, r.mappingLength) }
        regions = []
    }

    deinit { clear() }

    /// Pointer to `len` bytes at front-end user address `addr`, if they lie inside one region.
    func user(_ addr: UInt64, _ len: UInt64) -> UnsafeRawPointer? {
        for r in regions where addr >= r.userAddr && addr - r.userAddr <= r.size && len <= r.size - (addr - r.userAddr) {
            return r.base + Int(addr - r.userAddr)
        }
        return nil
    }

    /// Pointer to `len` bytes at guest-physical address `addr`, if they lie inside one region.
    func guest(_ addr: UInt64, _ len: UInt64) -> UnsafeRawPointer? {
        for r in regions where addr >= r.guestAddr && addr - r.guestAddr <= r.size && len <= r.size - (addr - r.guestAddr) {
            return r.base + Int(addr - r.guestAddr)
        }
        return nil
    }
}
