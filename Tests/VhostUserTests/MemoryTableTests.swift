import CSupport
import Glibc
import Testing
import VirtioProtocol
@testable import VhostUser

/// Regions are checked against their file before they are mapped, and every access to a mapped
/// region survives the file shrinking under it.
@Suite struct MemoryTableTests {
    static let page = 4096

    static func region(_ g: UInt64, _ size: UInt64, user: UInt64? = nil, offset: UInt64 = 0) -> MemoryRegionDescription {
        MemoryRegionDescription(guestAddr: g, size: size, userAddr: user ?? g &+ 0x7000_0000, mmapOffset: offset)
    }

    func refused(_ d: MemoryRegionDescription, fileSize: Int64 = 4 * 4096, contains text: String) {
        let fd = cs_memfd("t", fileSize)
        defer { close(fd) }
        let t = MemoryTable()
        #expect(throws: MemoryTableError.self) { try t.add(d, fd: fd) }
        do { try t.add(d, fd: fd) } catch { #expect(error.message.contains(text), "\(error.message)") }
        #expect(t.isEmpty)
    }

    @Test func regionLargerThanItsFileIsRefused() {
        refused(Self.region(0, 8 * 4096), contains: "beyond the end of its file")
    }

    @Test func mmapOffsetPastTheEndOfTheFileIsRefused() {
        refused(Self.region(0, 4096, offset: 16 * 4096), contains: "beyond the end of its file")
    }

    @Test func rangesThatOverflowAreRefused() {
        refused(Self.region(0, 4096, offset: UInt64.max - 100), contains: "overflow")
        refused(Self.region(UInt64.max - 100, 4096, user: 0), contains: "overflow")
        refused(MemoryRegionDescription(guestAddr: 0, size: 4096, userAddr: UInt64.max - 10), contains: "overflow")
    }

    @Test func emptyRegionIsRefused() { refused(Self.region(0, 0), contains: "empty") }

    @Test func fdThatIsNotAMemoryFileIsRefused() {
        var p: [Int32] = [0, 0]
        #expect(pipe(&p) == 0)
        defer { close(p[0]); close(p[1]) }
        let t = MemoryTable()
        do { try t.add(Self.region(0, 4096), fd: p[0]); Issue.record("a pipe was mapped") } catch {
            #expect(error.message.contains("not a memory file"))
        }
    }

    @Test func overlappingRegionsAreRefused() throws {
        let fd = cs_memfd("t", 8 * 4096)
        defer { close(fd) }
        let t = MemoryTable()
        try t.add(Self.region(0x10000, 4 * 4096), fd: fd)
        #expect(throws: MemoryTableError.self) { try t.add(Self.region(0x12000, 4096, user: 0x9000_0000), fd: fd) }
        #expect(throws: MemoryTableError.self) { try t.add(MemoryRegionDescription(guestAddr: 0x90000, size: 4096, userAddr: 0x7001_0000 + 4096), fd: fd) }
        #expect(t.regions.count == 1)
    }

    @Test func regionCountIsLimited() throws {
        let fd = cs_memfd("t", 4096)
        defer { close(fd) }
        let t = MemoryTable(maxRegions: 3)
        for k in 0..<3 { try t.add(Self.region(UInt64(k) << 20, 4096), fd: fd) }
        #expect(throws: MemoryTableError.self) { try t.add(Self.region(9 << 20, 4096), fd: fd) }
        #expect(throws: MemoryTableError.self) {
            try MemoryTable().replace(with: Array(repeating: Self.region(0, 4096), count: 9), fds: Array(repeating: fd, count: 9))
        }
        #expect(throws: MemoryTableError.self) { try MemoryTable().replace(with: [Self.region(0, 4096)], fds: []) }
    }

    @Test func userAndGuestAddressesTranslateToTheSameBytes() throws {
        let fd = cs_memfd("t", 4 * 4096)
        defer { close(fd) }
        var v: UInt32 = 0xfeed_beef
        #expect(pwrite(fd, &v, 4, 4096 + 8) == 4)
        let t = MemoryTable()
        // The region starts one page into the file (QEMU splits one memfd into several regions so).
        try t.add(Self.region(0x100000, 2 * 4096, user: 0x7f00_0000, offset: 4096), fd: fd)
        #expect(t.guest(0x100008, length: 4)?.load(UInt32.self, at: 0) == 0xfeed_beef)
        #expect(t.user(0x7f00_0008, length: 4)?.load(UInt32.self, at: 0) == 0xfeed_beef)
        #expect(t.guest(0x100000 + 2 * 4096 - 2, length: 4) == nil, "a span crossing the region's end")
        #expect(t.guest(0xfffff, length: 1) == nil)
        #expect(t.remove(Self.region(0x100000, 2 * 4096, user: 0x7f00_0000, offset: 4096)))
        #expect(t.guest(0x100008, length: 4) == nil)
    }

    @Test func readOnlyMappingsRefuseWritesAndReadWriteMappingsWriteThrough() throws {
        let fd = cs_memfd("t", 4096)
        defer { close(fd) }
        let ro = MemoryTable()
        try ro.add(Self.region(0, 4096), fd: fd)
        #expect(!ro.guest(0, length: 2)!.store16Release(1, at: 0))
        let rw = MemoryTable(writable: true)
        try rw.add(Self.region(0, 4096), fd: fd)
        #expect(rw.guest(16, length: 2)!.store16Release(0xabcd, at: 0))
        #expect(ro.guest(16, length: 2)!.load16Acquire(at: 0) == 0xabcd)
    }

    @Test func guardedReadsOfAShrunkMemfdFailInsteadOfRaisingSIGBUS() throws {
        let fd = cs_memfd("t", 4 * 4096)
        defer { close(fd) }
        let t = MemoryTable(writable: true)
        try t.add(Self.region(0, 4 * 4096), fd: fd)
        let r = try #require(t.guest(0, length: 4 * 4096))
        #expect(r.store(UInt64(42), at: 3 * 4096))
        let before = cs_guard_recovered()
        // The front-end truncates its file under the mapping.
        #expect(ftruncate(fd, 4096) == 0)
        #expect(r.load16Acquire(at: 3 * 4096) == nil)
        #expect(r.load(UInt64.self, at: 2 * 4096) == nil)
        #expect(r.bytes(at: 4096 - 8, count: 16) == nil, "a copy that crosses into the missing page")
        #expect(!r.store(UInt64(1), at: 3 * 4096))
        #expect(!r.store16Release(1, at: 2 * 4096))
        #expect(r.load(UInt64.self, at: 8) == 0, "the page still in the file reads as before")
        #expect(cs_guard_recovered() - before == 5)
        // Grown back, the pages read again (as zeros: the data was discarded).
        #expect(ftruncate(fd, 4 * 4096) == 0)
        #expect(r.load(UInt64.self, at: 3 * 4096) == 0)
    }

    @Test func guardedReadsRecoverOnEveryThread() async throws {
        let fd = cs_memfd("t", 2 * 4096)
        defer { close(fd) }
        let t = MemoryTable()
        try t.add(Self.region(0, 2 * 4096), fd: fd)
        let r = try #require(t.guest(0, length: 2 * 4096))
        #expect(ftruncate(fd, 4096) == 0)
        let failures = await withTaskGroup(of: Int.self) { g in
            for _ in 0..<4 { g.addTask { (0..<1000).reduce(0) { n, _ in n + (r.load16Acquire(at: 4096) == nil ? 1 : 0) } } }
            return await g.reduce(0, +)
        }
        #expect(failures == 4000)
    }
}

@Suite struct GuardTests {
    @Test func aFaultOutsideAGuardedAccessStillKillsTheProcess() {
        #expect(cs_guard_selftest_unguarded_fault() == SIGSEGV)
    }
}
