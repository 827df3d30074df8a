import TraceFormat

/// `conformance dump`: the text form of a binary trace, streamed.
public enum TraceDump {
    /// Emits the text form of what `reader` reads in pieces of about 64 KiB. On a malformed event it
    /// emits everything before it, then throws the reader's error.
    public static func run(_ reader: TraceReader, emit: (String) -> Void) throws {
        var out = TextForm.render(header: reader.header)
        do {
            while let (e, _) = try reader.next() {
                out += TextForm.render(event: e)
                out += "\n"
                if out.utf8.count > 1 << 16 { emit(out); out = "" }
            }
        } catch {
            emit(out)
            throw error
        }
        emit(out)
    }
}
