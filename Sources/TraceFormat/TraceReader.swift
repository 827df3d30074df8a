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
    /// One fixed block, refilled from the file: raw memory, so that reading an event neither retains
    /// nor checks an array.
    @usableFromInline let buffer: UnsafeMutableRawPointer
    @usableFromInline var bufStart = 0
    @usableFromInline var bufEnd = 0
    private var eof = false
    @usableFromInline let queueCount: Int
    /// Bytes read from the file at a time: 1 MiB, or for a trace in memory no more than it holds
    /// (the fuzz targets make a reader per input; a 1 MiB block each would cost an mmap).
    private let chunk: Int
    static let fileChunk = 1 << 20

    public convenience init(path: String) throws {
        guard let f = fopen(path, "rb") else {
            throw TraceError(offset: 0, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        try self.init(file: f, backing: nil, chunk: Self.fileChunk)
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
        try self.init(file: f, backing: copy, chunk: min(Self.fileChunk, max(TraceEvent.size, bytes.count)))
    }

    private init(file f: UnsafeMutablePointer<FILE>, backing: UnsafeMutableRawPointer?, chunk: Int) throws {
        file = f
        self.backing = backing
        self.chunk = chunk
        buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 16)
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
            buffer.deallocate()
            throw error
        }
        queueCount = header.queueCount
    }

    deinit {
        fclose(file)
        backing?.deallocate()
        buffer.deallocate()
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
        let ev = try TraceEvent.decode(UnsafeRawBufferPointer(start: buffer + bufStart, count: TraceEvent.size),
                                       offset: at, queueCount: queueCount)
        bufStart += TraceEvent.size
        offset += UInt64(TraceEvent.size)
        index += 1
        return (ev, at)
    }

    /// Calls `body` with each event, its index and its byte offset, in order, until the end of the
    /// file or until `body` returns false; the same checks and errors as `next`. The block's
    /// position lives in locals between refills: no access to the reader's state per event.
    // Inlinable: inlined into the caller's event loop, the body is called directly, not through
    // a closure context and its thunks (about 40 instructions an event in `check`).
    @inlinable
    public func forEach(_ body: (TraceEvent, _ index: UInt64, _ offset: UInt64) throws -> Bool) throws {
        while true {
            if bufEnd - bufStart < TraceEvent.size {
                refill()
                if bufEnd == bufStart { return }
                if bufEnd - bufStart < TraceEvent.size {
                    throw TraceError(offset: offset, "truncated event \(index): \(bufEnd - bufStart) of \(TraceEvent.size) bytes")
                }
            }
            var at = bufStart
            let end = bufEnd - TraceEvent.size
            var off = offset, i = index
            let n = queueCount, base = buffer, checks = TraceEvent.kindChecks
            // Whatever happens in the block, the reader's state says where it stopped.
            defer { bufStart = at; setPosition(offset: off, index: i) }
            while at <= end {
                let ev = try TraceEvent.decode(UnsafeRawBufferPointer(start: base + at, count: TraceEvent.size), offset: off, queueCount: n, checks: checks)
                at += TraceEvent.size
                off += UInt64(TraceEvent.size)
                i += 1
                guard try body(ev, i - 1, off - UInt64(TraceEvent.size)) else { return }
            }
        }
    }

    @usableFromInline func setPosition(offset o: UInt64, index i: UInt64) { offset = o; index = i }

    @usableFromInline func refill() {
        if eof { return }
        let left = bufEnd - bufStart
        if left > 0 { buffer.copyMemory(from: buffer + bufStart, byteCount: left) }
        bufStart = 0
        bufEnd = left
        while bufEnd < chunk {
            let n = fread(buffer + bufEnd, 1, chunk - bufEnd, file)
            if n == 0 { eof = true; break }
            bufEnd += n
        }
    }
}

/// Writes a binary trace, buffered. Events are stored straight into one raw block (appending
/// them byte by byte to an array checked its uniqueness and capacity 40 times per event: the
/// largest single cost of `record` at a few million events a second).
///
/// The block goes to the file in aligned pieces: each write but the ones `flush` makes ends on a
/// 64 KiB boundary of the file (the piece of an event beyond it stays for the next), through no
/// stdio buffer. The page cache then takes whole pages, none zeroed first or written twice:
/// 65,520-byte blocks through stdio's 4 KiB buffer (two writes each, neither aligned) wrote
/// 120 MiB about 1.5 times slower on this machine's ext4, and the kernel's side of the writes
/// was a third of `record`'s CPU time at a million buffers a second.
public final class TraceWriter {
    private let file: UnsafeMutablePointer<FILE>
    @usableFromInline static let chunk = 1 << 16
    @usableFromInline let block: UnsafeMutableRawPointer
    @usableFromInline var used = 0
    /// Block bytes at which the file reaches its next 64 KiB boundary: the block is drained there.
    @usableFromInline var limit = TraceWriter.chunk
    /// Bytes handed to the file so far.
    private var written = 0
    @usableFromInline var events: UInt64 = 0
    public var eventCount: UInt64 { events }
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
        setvbuf(f, nil, _IONBF, 0)
        file = f
        self.header = header
        let h = header.encode()
        // Room for one event past the limit (or past a header longer than a chunk).
        block = .allocate(byteCount: max(Self.chunk, h.count) + TraceEvent.size, alignment: 16)
        h.withUnsafeBytes { block.copyMemory(from: $0.baseAddress!, byteCount: h.count) }
        used = h.count
    }

    deinit { block.deallocate() }

    @inlinable
    public func write(_ e: TraceEvent) {
        e.encode(to: block + used)
        used += TraceEvent.size
        events += 1
        if used >= limit { drain() }
    }

    /// `events` in order. The block position is kept in a local for the whole group: every access
    /// to a stored property of a class is checked for exclusivity at run time.
    public func write(contentsOf events: [TraceEvent]) {
        var u = used, l = limit
        for e in events {
            e.encode(to: block + u)
            u += TraceEvent.size
            if u >= l { used = u; drain(); u = used; l = limit }
        }
        used = u
        self.events += UInt64(events.count)
    }

    /// Hands the block to the file up to the last 64 KiB boundary of the file inside it; the rest
    /// (less than one event, or the end of a long header) moves to the block's start.
    @usableFromInline
    func drain() {
        let n = used - (written + used) % Self.chunk
        guard n > 0 else { return }
        put(n)
        used -= n
        if used > 0 { memmove(block, block + n, used) }
        limit = Self.chunk
    }

    private func put(_ n: Int) {
        let done = fwrite(block, 1, n, file)
        if done != n && failure == nil { failure = "writing the trace failed: \(String(cString: strerror(errno)))" }
        written += n
    }

    /// Everything written so far goes to the file.
    public func flush() {
        if used > 0 { put(used); used = 0 }
        limit = Self.chunk - written % Self.chunk
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
