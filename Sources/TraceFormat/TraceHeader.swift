import VirtioProtocol

/// Trace file header, version 1. Layout in `Specs/trace-format.md`.
public struct TraceHeader: Equatable, Sendable {
    public static let magic: [UInt8] = Array("VIRTIOTR".utf8)
    public static let currentVersion: UInt16 = 1
    /// Bytes before the queue-size array.
    public static let fixedSize = 32
    /// Most queues a header can describe: its size field is 16 bits (32 + 2 × 32748, padded, = 65528).
    public static let maxQueueCount = 32748

    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        /// Some events were reconstructed by polling memory; intermediate values may be missing.
        public static let sampled = Flags(rawValue: 1)
        /// The device is already owned and its rings set up and started as the header describes;
        /// the trace may start with data-plane events.
        public static let preset = Flags(rawValue: 2)
        public static let known: Flags = [.sampled, .preset]
    }

    public var version: UInt16
    public var profile: Profile
    public var layout: QueueLayout
    public var flags: Flags
    /// Negotiated virtio features (a SET_FEATURES event replaces them).
    public var features: UInt64
    /// Worker count when `preset` (SET_OWNER's argument; 0 means the legacy call without one).
    public var workers: UInt16
    /// One size per virtqueue; 0 means "set later by SET_VRING_NUM".
    public var queueSizes: [UInt16]

    public init(profile: Profile, layout: QueueLayout? = nil, flags: Flags = [], features: UInt64 = 0,
                workers: UInt16 = 1, queueSizes: [UInt16], version: UInt16 = TraceHeader.currentVersion) {
        self.version = version
        self.profile = profile
        self.layout = layout ?? profile.defaultLayout
        self.flags = flags
        self.features = features
        self.workers = workers
        self.queueSizes = queueSizes
    }

    public var queueCount: Int { queueSizes.count }

    /// Total header size in bytes: fixed part plus sizes, padded to a multiple of 8
    /// so that events stay 8-aligned in the file.
    public var encodedSize: Int {
        let raw = TraceHeader.fixedSize + 2 * queueSizes.count
        return (raw + 7) & ~7
    }

    public func encode() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(encodedSize)
        out += TraceHeader.magic
        out.appendLE(version)
        out.appendLE(UInt16(encodedSize))
        out.append(profile.rawValue)
        out.append(layout.rawValue)
        out.appendLE(flags.rawValue)
        out.appendLE(features)
        out.appendLE(UInt16(queueSizes.count))
        out.appendLE(workers)
        out.appendLE(UInt32(0)) // reserved
        for s in queueSizes { out.appendLE(s) }
        while out.count < encodedSize { out.append(0) }
        return out
    }

    /// Parses a header from the start of `bytes`; `bytes` must hold at least the fixed part,
    /// and the whole header once its size is known (the reader arranges that).
    static func decodeFixed(_ b: [UInt8]) throws -> (version: UInt16, size: Int) {
        guard b.count >= 8, Array(b[0..<8]) == TraceHeader.magic else {
            throw TraceError(offset: 0, "bad magic: expected \"VIRTIOTR\", found \(b.prefix(8).map { String(format2: $0) }.joined(separator: " "))")
        }
        guard b.count >= 12 else { throw TraceError(offset: UInt64(b.count), "truncated header: \(b.count) of \(fixedSize) bytes") }
        let version = b.le16(8)
        guard version == currentVersion else {
            throw TraceError(offset: 8, "unsupported trace version \(version) (this tool reads version \(currentVersion))")
        }
        let size = Int(b.le16(10))
        guard size >= fixedSize, size % 8 == 0 else {
            throw TraceError(offset: 10, "bad header size \(size): must be a multiple of 8 and at least \(fixedSize)")
        }
        return (version, size)
    }

    static func decode(_ b: [UInt8]) throws -> TraceHeader {
        let (version, size) = try decodeFixed(b)
        // A corrupted size field should be reported as such, not as a truncated file:
        // check it against the queue count as soon as the fixed part is there.
        if b.count >= fixedSize, b.le16(24) >= 1 {
            let expected = (fixedSize + 2 * Int(b.le16(24)) + 7) & ~7
            guard size == expected else {
                throw TraceError(offset: 10, "header size \(size) does not match \(b.le16(24)) queues (expected \(expected))")
            }
        }
        guard b.count >= size else { throw TraceError(offset: UInt64(b.count), "truncated header: \(b.count) of \(size) bytes") }
        guard let profile = Profile(rawValue: b[12]) else {
            throw TraceError(offset: 12, "unknown profile \(b[12]) (known: \(Profile.allCases.map { "\($0.rawValue)=\($0)" }.joined(separator: ", ")))")
        }
        guard let layout = QueueLayout(rawValue: b[13]) else {
            throw TraceError(offset: 13, "unknown queue layout \(b[13]) (known: 0=seed, 1=mq)")
        }
        guard profile.allows(layout) else {
            throw TraceError(offset: 13, "layout \(layout) is not meaningful with profile \(profile) (its queues come in RX/TX pairs: use layout mq)")
        }
        let flags = Flags(rawValue: b.le16(14))
        guard Flags.known.isSuperset(of: flags) else {
            throw TraceError(offset: 14, "unknown header flags 0x\(String(flags.rawValue, radix: 16))")
        }
        let features = b.le64(16)
        let count = Int(b.le16(24))
        guard count >= 1 else { throw TraceError(offset: 24, "queue count is 0: a trace describes at least one virtqueue") }
        let workers = b.le16(26)
        guard b.le32(28) == 0 else { throw TraceError(offset: 28, "reserved header field is not zero") }
        let expected = (fixedSize + 2 * count + 7) & ~7
        guard size == expected else {
            throw TraceError(offset: 10, "header size \(size) does not match \(count) queues (expected \(expected))")
        }
        var sizes = [UInt16]()
        sizes.reserveCapacity(count)
        for q in 0..<count { sizes.append(b.le16(fixedSize + 2 * q)) }
        for i in (fixedSize + 2 * count)..<size where b[i] != 0 {
            throw TraceError(offset: UInt64(i), "header padding is not zero")
        }
        return TraceHeader(profile: profile, layout: layout, flags: flags, features: features,
                           workers: workers, queueSizes: sizes, version: version)
    }
}

extension String {
    init(format2 byte: UInt8) {
        let h = String(byte, radix: 16)
        self = h.count == 1 ? "0" + h : h
    }
}
