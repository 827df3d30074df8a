/// Host-order encoding of payload fields. vhost-user uses the host's byte order (both peers and
/// this tool run on one host), so values are loaded and stored as the CPU holds them.
struct WireReader {
    let bytes: [UInt8]
    var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func u16() -> UInt16? { load(UInt16.self) }
    mutating func u32() -> UInt32? { load(UInt32.self) }
    mutating func u64() -> UInt64? { load(UInt64.self) }
    mutating func bytes(_ n: Int) -> [UInt8]? {
        guard n >= 0, n <= remaining else { return nil }
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }
    mutating func skip(_ n: Int) -> Bool {
        guard n <= remaining else { return false }
        offset += n
        return true
    }

    private mutating func load<T: FixedWidthInteger>(_: T.Type) -> T? {
        let n = MemoryLayout<T>.size
        guard n <= remaining else { return nil }
        defer { offset += n }
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }
}

struct WireWriter {
    private(set) var bytes: [UInt8] = []
    mutating func u16(_ v: UInt16) { put(v) }
    mutating func u32(_ v: UInt32) { put(v) }
    mutating func u64(_ v: UInt64) { put(v) }
    mutating func raw(_ b: [UInt8]) { bytes += b }
    private mutating func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v) { bytes += $0 } }
}
