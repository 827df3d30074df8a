import Foundation

extension TextForm {
    /// Longest line `compile` accepts: a `queues` line for 32,748 rings is about 200 KB; anything longer
    /// is not a trace, and must not be buffered whole.
    public static let maxLineBytes = 1 << 20

    /// `conformance compile`: streams a text trace from `input` into a binary trace at `output`, one
    /// line in memory at a time. Errors name the line (`TraceError.line`); on any error the output is
    /// removed, so no half-written trace is left behind.
    public static func compile(input: String, output: String) throws {
        guard let f = fopen(input, "rb") else {
            throw TraceError(offset: 0, "cannot read \(input): \(String(cString: strerror(errno)))")
        }
        defer { fclose(f) }
        var parser = TextParser()
        var writer: TraceWriter?
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var line: [UInt8] = []
        func take(_ bytes: [UInt8]) throws {
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw TraceError(line: parser.lineNo + 1, "not valid UTF-8")
            }
            if let e = try parser.line(Substring(text)) {
                if writer == nil { writer = try TraceWriter(path: output, header: parser.header!) }
                writer!.write(e)
            }
        }
        do {
            while true {
                let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress!, 1, $0.count, f) }
                if n == 0 {
                    if ferror(f) != 0 { throw TraceError(line: parser.lineNo + 1, "read error: \(String(cString: strerror(errno)))") }
                    break
                }
                var start = 0
                for i in 0..<n where chunk[i] == 0x0A {
                    line += chunk[start..<i]
                    try take(line)
                    line.removeAll(keepingCapacity: true)
                    start = i + 1
                }
                line += chunk[start..<n]
                if line.count > maxLineBytes { throw TraceError(line: parser.lineNo + 1, "line longer than \(maxLineBytes) bytes") }
            }
            try take(line)
            let header = try parser.finish()
            if writer == nil { writer = try TraceWriter(path: output, header: header) }
            writer!.close()
        } catch {
            writer?.close()
            if writer != nil { unlink(output) }
            throw error
        }
    }
}
