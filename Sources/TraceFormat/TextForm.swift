import VirtioProtocol

/// The text form of a trace: a header block, then one event per line.
/// `render` and `parse` round-trip byte for byte through the binary form.
public enum TextForm {
    public static let magicLine = "conformance-trace 1"

    // MARK: rendering

    public static func render(header h: TraceHeader) -> String {
        var s = magicLine + "\n"
        s += "profile \(h.profile)\n"
        s += "layout \(h.layout)\n"
        s += "flags \(headerFlagNames(h.flags))\n"
        s += "features 0x\(String(h.features, radix: 16))"
        let names = featureNames(h.features)
        s += names.isEmpty ? "\n" : "  # \(names)\n"
        s += "workers \(h.workers)\n"
        s += "queues " + h.queueSizes.map(String.init).joined(separator: " ") + "\n"
        s += "events\n"
        return s
    }

    public static func render(event e: TraceEvent) -> String {
        var parts = [e.kind.name]
        if e.kind.vqUse == .required || (e.kind.vqUse == .optional && e.vq != TraceEvent.none) { parts.append("vq=\(e.vq)") }
        if e.kind.hasWorker && e.worker != TraceEvent.none { parts.append("worker=\(e.worker)") }
        for f in e.kind.fields { parts.append("\(f.name)=\(renderValue(f, of: e))") }
        if e.timestamp != 0 { parts.append("t=\(e.timestamp)") }
        if e.isSampled { parts.append("sampled") }
        return parts.joined(separator: " ")
    }

    static func renderValue(_ f: Field, of e: TraceEvent) -> String {
        switch f.slot {
        case .resultAux:
            // Widen before negating: -Int16.min does not fit in an Int16.
            let r = Int32(e.result)
            if r < 0, let n = Errno(rawValue: -r) { return "-" + n.name }
            return String(r)
        case .descFlags:
            return descFlagNames(e.descFlags.rawValue)
        default:
            let v = rawValue(f.slot, of: e)
            return f.hex ? "0x" + String(v, radix: 16) : String(v)
        }
    }

    static func rawValue(_ slot: Field.Slot, of e: TraceEvent) -> UInt64 {
        switch slot {
        case .aux, .resultAux: return UInt64(e.aux)
        case .p0: return e.p0
        case .p1: return e.p1
        case .p2: return e.p2
        case .descLen: return UInt64(e.descLen)
        case .descFlags: return UInt64(e.descFlags.rawValue)
        case .descNext: return UInt64(e.descNext)
        }
    }

    static let descFlagTable: [(String, UInt16)] = [("next", 1), ("write", 2), ("indirect", 4)]

    static func descFlagNames(_ v: UInt16) -> String {
        if v == 0 { return "0" }
        var names: [String] = []
        var rest = v
        for (n, bit) in descFlagTable where v & bit != 0 { names.append(n); rest &= ~bit }
        if rest != 0 { names.append("0x" + String(rest, radix: 16)) }
        return names.joined(separator: "|")
    }

    static func headerFlagNames(_ f: TraceHeader.Flags) -> String {
        var n: [String] = []
        if f.contains(.preset) { n.append("preset") }
        if f.contains(.sampled) { n.append("sampled") }
        return n.isEmpty ? "none" : n.joined(separator: "|")
    }

    /// Feature names the text form accepts and prints, in bit order.
    public static let featureTable: [(String, FeatureBit)] = [
        ("csum", .netCsum), ("guest_csum", .netGuestCsum), ("mtu", .netMTU), ("guest_tso4", .netGuestTSO4),
        ("guest_tso6", .netGuestTSO6), ("guest_ecn", .netGuestECN), ("guest_ufo", .netGuestUFO), ("host_tso4", .netHostTSO4),
        ("host_tso6", .netHostTSO6), ("host_ecn", .netHostECN), ("host_ufo", .netHostUFO), ("mrg_rxbuf", .netMrgRxbuf),
        ("ctrl_vq", .netCtrlVQ), ("ctrl_rx", .netCtrlRx), ("ctrl_vlan", .netCtrlVlan), ("guest_announce", .netGuestAnnounce),
        ("mq", .netMQ), ("ctrl_mac_addr", .netCtrlMacAddr), ("log_all", .logAll), ("indirect_desc", .indirectDesc),
        ("event_idx", .eventIdx), ("protocol_features", .protocolFeatures), ("version_1", .version1),
        ("access_platform", .accessPlatform), ("ring_packed", .ringPacked), ("in_order", .inOrder),
        ("notification_data", .notificationData), ("ring_reset", .ringReset), ("hash_tunnel", .netHashTunnel),
        ("vq_notf_coal", .netVQNotfCoal), ("notf_coal", .netNotfCoal), ("guest_uso4", .netGuestUSO4),
        ("guest_uso6", .netGuestUSO6), ("host_uso", .netHostUSO), ("hash_report", .netHashReport), ("rss", .netRSS),
        ("rsc_ext", .netRSCExt),
    ]

    public static func featureNames(_ bits: UInt64) -> String {
        featureTable.filter { bits & $0.1.mask != 0 }.map(\.0).joined(separator: "|")
    }

    /// Renders a whole trace (header and events).
    public static func render(header: TraceHeader, events: [TraceEvent]) -> String {
        var s = render(header: header)
        for e in events { s += render(event: e) + "\n" }
        return s
    }

    // MARK: parsing

    /// Parses a text trace into header and events; errors name the line. Lines end at "\n" (a "\r"
    /// before it is blank space, so CRLF files read the same).
    public static func parse(_ text: String) throws -> (TraceHeader, [TraceEvent]) {
        var p = TextParser()
        var events: [TraceEvent] = []
        // Split on the byte: "\r\n" is one Character in Swift, so splitting the characters on "\n"
        // would leave a CRLF file one line.
        for raw in text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false) {
            if let e = try p.line(Substring(raw)) { events.append(e) }
        }
        return (try p.finish(), events)
    }

    static func parseEvent(_ words: [String], line: Int, queueCount: Int) throws -> TraceEvent {
        guard let kind = EventKind.byName[words[0]] else {
            throw TraceError(line: line, "unknown event '\(words[0])'")
        }
        var e = TraceEvent(kind)
        var seen = Set<String>()
        for w in words.dropFirst() {
            if w == "sampled" { e.flags.insert(.sampled); continue }
            let kv = w.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw TraceError(line: line, "expected key=value, found '\(w)'") }
            let (key, value) = (kv[0], kv[1])
            guard seen.insert(key).inserted else { throw TraceError(line: line, "'\(key)' given twice") }
            switch key {
            case "t":
                guard let n = parseNumber(value) else { throw TraceError(line: line, "t must be a number") }
                e.timestamp = n
            case "vq" where kind.vqUse != .none:
                guard let n = parseNumber(value), n < UInt64(queueCount) else {
                    throw TraceError(line: line, "vq '\(value)' out of range (trace has \(queueCount) queues)")
                }
                e.vq = UInt16(n)
            case "worker" where kind.hasWorker:
                guard let n = parseNumber(value), n < 0xFFFF else { throw TraceError(line: line, "worker must be a number below 65535") }
                e.worker = UInt16(n)
            default:
                guard let f = kind.fields.first(where: { $0.name == key }) else {
                    let known = (kind.vqUse != .none ? ["vq"] : []) + (kind.hasWorker ? ["worker"] : []) + kind.fields.map(\.name) + ["t", "sampled"]
                    throw TraceError(line: line, "\(kind.name) has no field '\(key)' (fields: \(known.joined(separator: ", ")))")
                }
                try set(f, value, in: &e, line: line)
            }
        }
        if e.isSampled && kind.plane == .control {
            throw TraceError(line: line, "\(kind.name) is a control event: control events are exact and never carry 'sampled'")
        }
        if kind.vqUse == .required && !seen.contains("vq") {
            throw TraceError(line: line, "\(kind.name) needs vq=")
        }
        return e
    }

    static func set(_ f: Field, _ value: String, in e: inout TraceEvent, line: Int) throws {
        switch f.slot {
        case .resultAux:
            // Any magnitude a file can hold is compared, never converted, until it is known to fit.
            var r: Int64? = nil
            if value.hasPrefix("-"), let n = Errno.allNames[String(value.dropFirst())] { r = -Int64(n.rawValue) }
            else if value.hasPrefix("-"), let n = parseNumber(String(value.dropFirst())) { r = n <= 0x8000 ? -Int64(n) : nil }
            else if let n = parseNumber(value) { r = n <= 0x7FFF ? Int64(n) : nil }
            guard let r, r >= Int64(Int16.min), r <= Int64(Int16.max) else {
                throw TraceError(line: line, "result '\(value)' is not 0, a negative errno number, or -NAME (e.g. -EBUSY)")
            }
            e.aux = UInt16(bitPattern: Int16(r))
        case .descFlags:
            var bits: UInt64 = 0
            if let n = parseNumber(value) { bits = n } else {
                for n in value.split(separator: "|") {
                    if let b = descFlagTable.first(where: { $0.0 == n }) { bits |= UInt64(b.1) }
                    else if let v = parseNumber(String(n)) { bits |= v }
                    else { throw TraceError(line: line, "unknown descriptor flag '\(n)' (known: next, write, indirect)") }
                }
            }
            guard bits <= 0xFFFF else { throw TraceError(line: line, "flags exceed 16 bits") }
            e.p1 = (e.p1 & ~(0xFFFF << 32)) | bits << 32
        default:
            guard let n = parseNumber(value) else { throw TraceError(line: line, "\(f.name) must be a number, found '\(value)'") }
            switch f.slot {
            case .aux:
                guard n <= 0xFFFF else { throw TraceError(line: line, "\(f.name) exceeds 16 bits") }
                e.aux = UInt16(n)
            case .p0, .p1, .p2:
                guard n & ~f.mask == 0 else { throw TraceError(line: line, "\(f.name) exceeds \(f.width) bits") }
                if f.slot == .p0 { e.p0 = n } else if f.slot == .p1 { e.p1 = n } else { e.p2 = n }
            case .descLen:
                guard n <= 0xFFFF_FFFF else { throw TraceError(line: line, "len exceeds 32 bits") }
                e.p1 = (e.p1 & ~0xFFFF_FFFF) | n
            case .descNext:
                guard n <= 0xFFFF else { throw TraceError(line: line, "next exceeds 16 bits") }
                e.p1 = (e.p1 & ~(0xFFFF << 48)) | n << 48
            default: break
            }
        }
    }

    /// Every word the text form gives a meaning to (header keywords and values, event and field
    /// names, flag, feature and errno names): the fuzzer's dictionary, from the one definition.
    public static var vocabulary: [String] {
        var w = [magicLine, "profile", "layout", "flags", "features", "workers", "queues", "events", "none", "preset", "sampled", "t=", "vq=", "worker=", "0x", "#"]
        w += Profile.allCases.map(\.description) + QueueLayout.allCases.map(\.description)
        w += featureTable.map(\.0) + descFlagTable.map(\.0) + Errno.allNames.keys.sorted().map { "-" + $0 }
        for k in EventKind.allCases { w.append(k.name); w += k.fields.map { $0.name + "=" } }
        var seen = Set<String>()
        return w.filter { seen.insert($0).inserted }
    }

    /// Decimal or 0x-hexadecimal.
    public static func parseNumber(_ s: String) -> UInt64? {
        if s.hasPrefix("0x") || s.hasPrefix("0X") { return UInt64(s.dropFirst(2), radix: 16) }
        return UInt64(s)
    }
}

extension Errno {
    static let allNames: [String: Errno] = {
        var d: [String: Errno] = [:]
        for e in [Errno.eperm, .enodev, .ebusy, .einval, .enobufs, .e2big, .efault] { d[e.name] = e }
        return d
    }()
}

/// A text trace, one line at a time: `compile` holds a line, never the whole file.
public struct TextParser {
    public private(set) var header: TraceHeader?
    /// Lines fed so far (the number of the last one).
    public private(set) var lineNo = 0
    private var profile: Profile?, layout: QueueLayout?, flags: TraceHeader.Flags = [], features: UInt64 = 0
    private var workers: UInt16 = 1, sizes: [UInt16]?
    private var sawMagic = false

    public init() {}

    /// Feeds the next line (without its "\n"); returns the event it holds, if any.
    public mutating func line(_ rawLine: Substring) throws -> TraceEvent? {
        let magicLine = TextForm.magicLine
        lineNo += 1
        let line: Substring = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let words: [String] = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map { String($0) }
        if words.isEmpty { return nil }
        if !sawMagic {
            guard words.joined(separator: " ") == magicLine else {
                throw TraceError(line: lineNo, "expected '\(magicLine)' as the first line")
            }
            sawMagic = true
            return nil
        }
        if let header { return try TextForm.parseEvent(words, line: lineNo, queueCount: header.queueCount) }
        try headerLine(words)
        return nil
    }

    /// Ends the text: its header, or the error for a text without one.
    public func finish() throws -> TraceHeader {
        guard sawMagic else { throw TraceError(line: max(lineNo, 1), "empty text trace: expected '\(TextForm.magicLine)'") }
        guard let h = header else { throw TraceError(line: lineNo, "header not terminated by an 'events' line") }
        return h
    }

    private mutating func headerLine(_ words: [String]) throws {
        let lineNo = self.lineNo
        let arg = Array(words.dropFirst())
        func one() throws -> String {
            guard arg.count == 1 else { throw TraceError(line: lineNo, "'\(words[0])' takes one value") }
            return arg[0]
        }
        let parseNumber = TextForm.parseNumber, featureTable = TextForm.featureTable
        switch words[0] {
        case "profile":
            let v = try one()
            guard let p = Profile(name: v) else {
                throw TraceError(line: lineNo, "unknown profile '\(v)' (known: \(Profile.allCases.map(\.description).joined(separator: ", ")))")
            }
            profile = p
        case "layout":
            let v = try one()
            guard let l = QueueLayout(name: v) else { throw TraceError(line: lineNo, "unknown layout '\(v)' (known: seed, mq)") }
            layout = l
        case "flags":
            flags = []
            for n in try one().split(separator: "|") {
                switch n {
                case "none": break
                case "preset": flags.insert(.preset)
                case "sampled": flags.insert(.sampled)
                default: throw TraceError(line: lineNo, "unknown header flag '\(n)' (known: preset, sampled, none)")
                }
            }
        case "features":
            let v = try one()
            if let n = parseNumber(v) { features = n } else {
                features = 0
                for n in v.split(separator: "|") {
                    guard let b = featureTable.first(where: { $0.0 == n }) else {
                        throw TraceError(line: lineNo, "unknown feature '\(n)' (known: \(featureTable.map(\.0).joined(separator: ", ")))")
                    }
                    features |= b.1.mask
                }
            }
        case "workers":
            guard let n = parseNumber(try one()), n <= 0xFFFF else { throw TraceError(line: lineNo, "workers takes a number 0...65535") }
            workers = UInt16(n)
        case "queues":
            guard !arg.isEmpty, arg.count <= TraceHeader.maxQueueCount else {
                throw TraceError(line: lineNo, "queues takes one size per virtqueue, 1...\(TraceHeader.maxQueueCount) of them")
            }
            sizes = try arg.map {
                guard let n = parseNumber($0), n <= 0xFFFF else { throw TraceError(line: lineNo, "queue size '\($0)' is not a number 0...65535") }
                return UInt16(n)
            }
        case "events":
            guard let p = profile else { throw TraceError(line: lineNo, "header has no 'profile' line") }
            guard let s = sizes else { throw TraceError(line: lineNo, "header has no 'queues' line") }
            if let l = layout, !p.allows(l) {
                throw TraceError(line: lineNo, "layout \(l) is not meaningful with profile \(p) (its queues come in RX/TX pairs: use layout mq)")
            }
            header = TraceHeader(profile: p, layout: layout, flags: flags, features: features, workers: workers, queueSizes: s)
        default:
            throw TraceError(line: lineNo, "unknown header line '\(words[0])' (expected profile, layout, flags, features, workers, queues, events)")
        }
    }
}
