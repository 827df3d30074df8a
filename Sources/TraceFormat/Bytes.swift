/// Little-endian helpers: the trace format is little-endian on every host.
extension Array where Element == UInt8 {
    @inlinable mutating func appendLE(_ v: UInt16) { append(UInt8(v & 0xff)); append(UInt8(v >> 8)) }
    @inlinable mutating func appendLE(_ v: UInt32) { for i in 0..<4 { append(UInt8((v >> (8 * UInt32(i))) & 0xff)) } }
    @inlinable mutating func appendLE(_ v: UInt64) { for i in 0..<8 { append(UInt8((v >> (8 * UInt64(i))) & 0xff)) } }
    @inlinable func le16(_ o: Int) -> UInt16 { UInt16(self[o]) | UInt16(self[o + 1]) << 8 }
    @inlinable func le32(_ o: Int) -> UInt32 { UInt32(le16(o)) | UInt32(le16(o + 2)) << 16 }
    @inlinable func le64(_ o: Int) -> UInt64 { UInt64(le32(o)) | UInt64(le32(o + 4)) << 32 }
}

/// A malformed or unreadable trace. `offset` is the byte offset in the file (binary)
/// or the line number (text form, see `line`).
public struct TraceError: Error, CustomStringConvertible, Sendable, Equatable {
    public let offset: UInt64
    public let line: Int?
    public let message: String
    public init(offset: UInt64, _ message: String) { self.offset = offset; self.line = nil; self.message = message }
    public init(line: Int, _ message: String) { self.offset = 0; self.line = line; self.message = message }
    public var description: String {
        if let line { return "line \(line): \(message)" }
        return "byte offset \(offset): \(message)"
    }
}
