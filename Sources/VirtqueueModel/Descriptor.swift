import VirtioProtocol

/// One `virtq_desc` as the driver wrote it.
public struct Descriptor: Equatable, Sendable {
    public var addr: UInt64
    public var len: UInt32
    public var flags: SplitRing.DescFlags
    public var next: UInt16

    public init(addr: UInt64 = 0, len: UInt32 = 0, flags: SplitRing.DescFlags = [], next: UInt16 = 0) {
        self.addr = addr; self.len = len; self.flags = flags; self.next = next
    }

    public static let zero = Descriptor()
}

/// Who may touch a descriptor of the main table right now.
public enum Owner: UInt8, Sendable {
    /// Free: the driver may write it.
    case driver
    /// Exposed through avail.idx and not yet returned: the device owns it.
    case device
    /// Returned through used.idx: the driver has it back and will reclaim it.
    case used
}

/// One `pvirtq_desc` of a packed ring (or of a packed indirect table) as last written.
public struct PackedDescriptor: Equatable, Sendable {
    public var addr: UInt64
    public var len: UInt32
    /// Buffer ID: meaningful on the last descriptor of a list (and on a used descriptor).
    public var id: UInt16
    public var flags: PackedRing.Flags

    public init(addr: UInt64 = 0, len: UInt32 = 0, id: UInt16 = 0, flags: PackedRing.Flags = []) {
        self.addr = addr; self.len = len; self.id = id; self.flags = flags
    }

    /// The ring is zero-initialised ("The descriptor ring is zero-initialized").
    public static let zero = PackedDescriptor()
}

/// Where a packed chain walk reads ring descriptors from: the model's ring, or the ring as one poll
/// of a recorder read it.
public protocol PackedDescriptorSource {
    var count: Int { get }
    subscript(_ slot: Int) -> PackedDescriptor { get }
}

extension Array: PackedDescriptorSource where Element == PackedDescriptor {}
