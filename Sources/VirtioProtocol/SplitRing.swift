/// Split-virtqueue constants and the one arithmetic helper both sides share.
/// Source: virtio 1.x "Split Virtqueues", "The Virtqueue Descriptor Table",
/// "Used Buffer Notification Suppression"; Linux uapi `virtio_ring.h`.
public enum SplitRing {
    /// Largest split queue size ("Queue Size ... maximum of 32768").
    public static let maxQueueSize: UInt32 = 32768
    /// Size of one `virtq_desc`, and so the unit of an indirect table's length.
    public static let descriptorSize: UInt32 = 16
    /// Largest indirect table vhost accepts (entries), see `get_indirect`.
    public static let maxIndirectEntries: UInt32 = 65536

    /// A queue size is valid when it is a power of two in 1...32768.
    public static func isValidQueueSize(_ n: UInt32) -> Bool {
        n != 0 && n <= maxQueueSize && (n & (n - 1)) == 0
    }

    /// Descriptor flags (`VIRTQ_DESC_F_*`).
    public struct DescFlags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let next = DescFlags(rawValue: 1)
        public static let write = DescFlags(rawValue: 2)
        public static let indirect = DescFlags(rawValue: 4)
    }

    /// `VIRTQ_AVAIL_F_NO_INTERRUPT`: driver asks the device not to interrupt (no EVENT_IDX).
    public static let availFlagNoInterrupt: UInt16 = 1
    /// `VIRTQ_USED_F_NO_NOTIFY`: device asks the driver not to kick (no EVENT_IDX).
    public static let usedFlagNoNotify: UInt16 = 1

    /// `vring_need_event`: true exactly when `event` lies in [old, new) modulo 2^16,
    /// i.e. one of the entries just published is the one the other side asked about.
    /// The Z3 spec `Specs/smt/need-event.smt2` proves this characterisation.
    @inlinable
    public static func needEvent(event: UInt16, new: UInt16, old: UInt16) -> Bool {
        (new &- event &- 1) < (new &- old)
    }

    /// Entries between two free-running indices (`to - from` modulo 2^16).
    @inlinable
    public static func distance(from: UInt16, to: UInt16) -> UInt16 { to &- from }
}
