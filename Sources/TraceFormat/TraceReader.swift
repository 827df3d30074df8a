import Foundation

/// Streams events from a binary trace with constant memory: one fixed-size buffer,
/// refilled from the file. Every malformation is a `TraceError` naming its byte offset.
public final class TraceReader {
    public let header: TraceHeader
    /// Byte offset of the next event to be returned.
    public private(set) var offset: UInt64
    /// Index of the next event (0-based).
    public private(set) var index: UInt64 = 0

    private let file: UnsafeMutablePointer<FILE>
    /// The bytes an in-memory reader reads (`init(bytes:)`), freed with it.
    private let backing: UnsafeMutableRawPointer?
    private var buffer: [UInt8]
    private var bufStart = 0
    private var bufEnd = 0
    private var eof = false
    private static let chunk = 1 << 16

    public convenience init(path: String) throws {
        guard let f = fopen(path, "rb") else {
            throw TraceError(offset: 0, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        try self.init(file: f, backing: nil)
    }

    /// Reads a trace held in memory, through the same code as a file (the fuzz targets use it).
    public convenience init(bytes: [UInt8]) throws {
        let copy = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 8)
        bytes.withUnsafeBytes { if let b = $0.baseAddress { copy.copyMemory(from: b, byteCount: bytes.count) } }
        // fmemopen refuses a size of 0 on some C libraries; an empty file reads the same.
        guard let f = bytes.isEmpty ? fopen("/dev/null", "rb") : fmemopen(copy, bytes.count, "rb") else {
            copy.deallocate()
            throw TraceError(offset: 0, "cannot open an in-memory trace: \(String(cString: strerror(errno)))")
        }
        try self.init(file: f, backing: copy)
    }

    private init(file f: UnsafeMutablePointer<FILE>, backing: UnsafeMutableRawPointer?) throws {
        file = f
        self.backing = backing
        buffer = [UInt8](repeating: 0, count: TraceReader.chunk)
        // Fixed part first, then the rest of the header once its size is known.
        var fixed = [UInt8](repeating: 0, count: TraceHeader.fixedSize)
        let n = fread(&fixed, 1, fixed.count, f)
        do {
            if n < 12 { _ = try TraceHeader.decodeFixed(Array(fixed[0..<n])); throw TraceError(offset: UInt64(n), "truncated header") }
            let (_, size) = try TraceHeader.decodeFixed(Array(fixed[0..<n]))
            var whole = Array(fixed[0..<n])
            if n == TraceHeader.fixedSize && size > n {
                var rest = [UInt8](repeating: 0, count: size - n)
                let m = fread(&rest, 1, rest.count, f)
                whole += rest[0..<m]
            }
            header = try TraceHeader.decode(whole)
            offset = UInt64(size)
        } catch {
            fclose(f)
            backing?.deallocate()
            throw error
        }
    }

    deinit {
        fclose(file)
        backing?.deallocate()
    }

    /// The next event and its byte offset, or nil at a clean end of file.
    public func next() throws -> (event: TraceEvent, offset: UInt64)? {
        if bufEnd - bufStart < TraceEvent.size {
            refill()
            if bufEnd == bufStart { return nil }
            if bufEnd - bufStart < TraceEvent.size {
                throw TraceError(offset: offset, "truncated event \(index): \(bufEnd - bufStart) of \(TraceEvent.size) bytes")
            }
        }
        let at = offset
        let ev = try buffer.withUnsafeBytes { raw in
            try TraceEvent.decode(UnsafeRawBufferPointer(rebasing: raw[bufStart..<(bufStart + TraceEvent.size)]),
                                  offset: at, queueCount: header.queueCount)
        }
        bufStart += TraceEvent.size
        offset += UInt64(TraceEvent.size)
        index += 1
        return (ev, at)
    }

    private func refill() {
        if eof { return }
        let left = bufEnd - bufStart
        if left > 0 { buffer.withUnsafeMutableBytes { p in p.baseAddress!.copyMemory(from: p.baseAddress! + bufStart, byteCount: left) } }
        bufStart = 0
        bufEnd = left
        while bufEnd < buffer.count {
            let n = buffer.withUnsafeMutableBytes { p in fread(p.baseAddress! + bufEnd, 1, p.count - bufEnd, file) }
            if n == 0 { eof = true; break }
            bufEnd += n
        }
    }
}

/// Writes a binary trace, buffered.
public final class TraceWriter {
    private let file: UnsafeMutablePointer<FILE>
    private var buffer: [UInt8] = []
    public private(set) var eventCount: UInt64 = 0
    public let header: TraceHeader
    /// Set when the file refused a write (disk full, I/O error): the file on disk is then cut short.
    public private(set) var failure: String?

    public init(path: String, header: TraceHeader) throws {
        guard (1...TraceHeader.maxQueueCount).contains(header.queueCount) else {
            throw TraceError(offset: 24, "a trace describes 1...\(TraceHeader.maxQueueCount) queues, not \(header.queueCount)")
        }
        guard let f = fopen(path, "wb") else {
            throw TraceError(offset: 0, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        file = f
        self.header = header
        buffer.reserveCapacity(1 << 16)
        buffer += header.encode()
    }

    public func write(_ e: TraceEvent) {
        e.encode(into: &buffer)
        eventCount += 1
        if buffer.count >= 1 << 16 { flush() }
    }

    public func flush() {
        if !buffer.isEmpty {
            let n = buffer.withUnsafeBytes { fwrite($0.baseAddress!, 1, $0.count, file) }
            if n != buffer.count && failure == nil { failure = "writing the trace failed: \(String(cString: strerror(errno)))" }
            buffer.removeAll(keepingCapacity: true)
        }
        if fflush(file) != 0 && failure == nil { failure = "writing the trace failed: \(String(cString: strerror(errno)))" }
    }

    public func close() {
        flush()
        fclose(file)
    }
}

/// Whole-trace helpers for small traces (tests, the text form).
public enum TraceBytes {
    public static func encode(header: TraceHeader, events: [TraceEvent]) -> [UInt8] {
        var out = header.encode()
        out.reserveCapacity(out.count + events.count * TraceEvent.size)
        for e in events { e.encode(into: &out) }
        return out
    }

    /// Decodes an in-memory trace (same checks as `TraceReader`).
    public static func decode(_ bytes: [UInt8]) throws -> (TraceHeader, [(event: TraceEvent, offset: UInt64)]) {
        let (_, size) = try TraceHeader.decodeFixed(bytes)
        let header = try TraceHeader.decode(bytes)
        var events: [(TraceEvent, UInt64)] = []
        var o = size
        while o < bytes.count {
            guard bytes.count - o >= TraceEvent.size else {
                throw TraceError(offset: UInt64(o), "truncated event \(events.count): \(bytes.count - o) of \(TraceEvent.size) bytes")
            }
            let e = try bytes.withUnsafeBytes { raw in
                try TraceEvent.decode(UnsafeRawBufferPointer(rebasing: raw[o..<(o + TraceEvent.size)]), offset: UInt64(o), queueCount: header.queueCount)
            }
            events.append((e, UInt64(o)))
            o += TraceEvent.size
        }
        return (header, events)
    }
}
