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
