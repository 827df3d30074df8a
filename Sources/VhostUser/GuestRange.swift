import CSupport

/// A span of peer memory inside one mapped region, already bounds-checked against the region.
/// Every access is guarded (`CSGuard.h`): if the peer shrank its file under the mapping, the access
/// returns nil/false instead of raising SIGBUS. Offsets beyond the span also give nil/false.
public struct GuestRange: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let count: Int
    public let writable: Bool

    public init(base: UnsafeMutableRawPointer, count: Int, writable: Bool) {
        self.base = base; self.count = count; self.writable = writable
    }

    private func fits(_ offset: Int, _ n: Int) -> Bool { offset >= 0 && n >= 0 && offset <= count && n <= count - offset }

    /// The sub-span `[offset, offset + n)`, if inside.
    public func slice(_ offset: Int, _ n: Int) -> GuestRange? {
        guard fits(offset, n) else { return nil }
        return GuestRange(base: base + offset, count: n, writable: writable)
    }

    /// Acquire load of a 16-bit ring index.
    public func load16Acquire(at offset: Int) -> UInt16? {
        guard fits(offset, 2) else { return nil }
        var v: UInt16 = 0
        return cs_guarded_load16_acquire(base + offset, &v) == 0 ? v : nil
    }

    /// A plain (unordered) load of a fixed-width value.
    public func load<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T? {
        let n = MemoryLayout<T>.size
        guard fits(offset, n) else { return nil }
        var v = T.zero
        let ok = withUnsafeMutableBytes(of: &v) { cs_guarded_read($0.baseAddress, base + offset, n) == 0 }
        return ok ? v : nil
    }

    /// The 16 bytes at `offset` as two little-endian words (a split descriptor), if inside and the
    /// read did not fault: the descriptor walk's read, without a general copy's call to memcpy.
    public func load16Bytes(at offset: Int) -> (UInt64, UInt64)? {
        guard fits(offset, 16) else { return nil }
        var raw = (UInt64(0), UInt64(0))
        let ok = withUnsafeMutableBytes(of: &raw) { cs_guarded_read16($0.baseAddress, base + offset) == 0 }
        return ok ? raw : nil
    }

    /// Copies `into.count` bytes from `offset`; false if outside or if reading faulted.
    public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard fits(offset, buffer.count) else { return false }
        guard buffer.count > 0 else { return true }
        return cs_guarded_read(buffer.baseAddress, base + offset, buffer.count) == 0
    }

    public func bytes(at offset: Int, count n: Int) -> [UInt8]? {
        guard fits(offset, n) else { return nil }
        var out = [UInt8](repeating: 0, count: n)
        let ok = out.withUnsafeMutableBytes { read(at: offset, into: $0) }
        return ok ? out : nil
    }

    /// Release store of a 16-bit ring index (read-write mappings only).
    public func store16Release(_ v: UInt16, at offset: Int) -> Bool {
        guard writable, fits(offset, 2) else { return false }
        return cs_guarded_store16_release(base + offset, v) == 0
    }

    /// Writes bytes at `offset` (read-write mappings only); false if outside or if writing faulted.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        guard writable, fits(offset, bytes.count) else { return false }
        guard bytes.count > 0 else { return true }
        return cs_guarded_write(base + offset, bytes.baseAddress, bytes.count) == 0
    }

    public func store<T: FixedWidthInteger>(_ v: T, at offset: Int) -> Bool {
        withUnsafeBytes(of: v) { write($0, at: offset) }
    }
}
