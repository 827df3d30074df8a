import VirtioProtocol

/// A descriptor chain as the device would see it, with everything wrong with it.
public struct Chain: Equatable, Sendable {
    /// Main-table indices the chain occupies, head first (indirect entries are not listed:
    /// they belong to the table of the descriptor that points at them).
    public var descriptors: [UInt16] = []
    /// Total bytes of device-writable buffers; nil when an indirect table was never described.
    public var writableBytes: UInt64? = 0
    public var violations: [Violation] = []
    /// The walk stopped at this descriptor because the device already owns it.
    public var busy: UInt16?
}

/// Where a chain walk reads main-table descriptors from: the model's table, or the table as one poll
/// of a recorder read it (`OverlaidTable`). The chain rules are defined once, over any source.
public protocol DescriptorSource {
    var count: Int { get }
    subscript(_ i: Int) -> Descriptor { get }
}

extension Array: DescriptorSource where Element == Descriptor {}

/// A descriptor table with some entries replaced: what the walk sees if those writes happen now.
public struct OverlaidTable<Base: DescriptorSource>: DescriptorSource {
    public let base: Base
    public let overrides: [UInt16: Descriptor]
    public init(base: Base, overrides: [UInt16: Descriptor]) { self.base = base; self.overrides = overrides }
    public var count: Int { base.count }
    public subscript(_ i: Int) -> Descriptor { overrides[UInt16(truncatingIfNeeded: i)] ?? base[i] }
}

/// The chain rules both formats share, applied to a buffer's descriptors in the order the device
/// uses them: device-writable elements after device-readable ones (VQ-CHAIN-ORDER), the writable
/// bytes a used length may claim (VQ-USED-LEN), and the checks on a descriptor that points to an
/// indirect table (VQ-INDIRECT-FEATURE, VQ-INDIRECT-LEN). Each format's walker decides which
/// descriptors make up the buffer and in what order (split: `next` links; packed: consecutive
/// ring positions and every entry of a table) and feeds them here.
public struct ChainRules: Sendable {
    public private(set) var violations: [Violation] = []
    private var seenWritable = false
    private var writable: UInt64 = 0
    /// An indirect table was never described: its elements, hence the writable bytes, are unknown.
    public var unknown = false

    public init() {}

    /// One element of the buffer. `message` describes a readable element found after a writable one.
    public mutating func element(write: Bool, len: UInt32, misplaced message: @autoclosure () -> String) {
        if write {
            seenWritable = true
            writable += UInt64(len)
        } else if seenWritable {
            violations.append(Violation(.vqChainOrder, message()))
        }
    }

    /// A violation the format's walker found (a bad index, a loop, a flag misused).
    public mutating func report(_ v: Violation) { violations.append(v) }

    /// A descriptor `name` carries INDIRECT: allowed only with VIRTIO_F_INDIRECT_DESC.
    public mutating func indirectFeature(allowed: Bool, name: String) {
        if !allowed {
            violations.append(Violation(.vqIndirectFeature, "\(name) has INDIRECT but VIRTIO_F_INDIRECT_DESC (bit 28) was not negotiated"))
        }
    }

    /// The length of the indirect descriptor `name`: the table's entry count when it is a non-zero
    /// multiple of 16 covering at most 65536 entries, else nil (and VQ-INDIRECT-LEN).
    public mutating func indirectTableEntries(len: UInt32, name: String) -> Int? {
        if len == 0 || len % SplitRing.descriptorSize != 0 || len / SplitRing.descriptorSize > SplitRing.maxIndirectEntries {
            violations.append(Violation(.vqIndirectLen, "indirect \(name) has len \(len): not a non-zero multiple of 16 covering at most 65536 entries"))
            return nil
        }
        return Int(len / SplitRing.descriptorSize)
    }

    /// Total bytes of device-writable elements, or nil when an indirect table was never described.
    public var writableBytes: UInt64? { unknown ? nil : writable }
}

/// Walks split chains through a descriptor table. Pure: reads the table, never changes it.
public enum ChainWalker {
    /// Walks the chain starting at `head`.
    /// - Parameters:
    ///   - indirectTable: the entries written for the indirect table of main-table descriptor `i`,
    ///     or nil if none were described.
    ///   - stopAt: a descriptor at which to stop early (one the device already owns: exposing it
    ///     again is the violation, and walking on would only cost time); reported in `Chain.busy`.
    ///   - seen: scratch marks, one per table entry, reused across walks so loop detection costs
    ///     the chain's length rather than N steps; `stamp` must differ from every earlier walk's.
    public static func walk<Table: DescriptorSource>(head: UInt16, table: Table, indirectAllowed: Bool,
                            stopAt: (UInt16) -> Bool = { _ in false },
                            seen: inout [UInt32], stamp: UInt32,
                            indirectTable: (UInt16) -> [Descriptor]?) -> Chain {
        var chain = Chain()
        let n = table.count
        guard Int(head) < n else {
            chain.violations.append(Violation(.vqDescIndex, "chain head \(head) is outside the descriptor table (queue size \(n))"))
            return chain
        }
        var rules = ChainRules()
        var i = Int(head)
        while true {
            if stopAt(UInt16(i)) { chain.busy = UInt16(i); break }
            if seen[i] == stamp {
                // Revisiting a descriptor: the chain never ends, so it is longer than N.
                rules.report(Violation(.vqChainLoop, "chain from head \(head) comes back to descriptor \(i): a loop (longer than the queue size \(n))"))
                break
            }
            seen[i] = stamp
            chain.descriptors.append(UInt16(i))
            let d = table[i]
            if d.flags.contains(.indirect) {
                rules.indirectFeature(allowed: indirectAllowed, name: "descriptor \(i)")
                if d.flags.contains(.next) {
                    rules.report(Violation(.vqIndirectNext, "descriptor \(i) has both INDIRECT and NEXT"))
                }
                if let count = rules.indirectTableEntries(len: d.len, name: "descriptor \(i)") {
                    if let entries = indirectTable(UInt16(i)) {
                        walkIndirect(parent: UInt16(i), count: count, entries: entries, rules: &rules)
                    } else {
                        rules.unknown = true
                    }
                }
                // The device ignores WRITE on the descriptor that points to the table, and the
                // chain ends here: INDIRECT must be last.
                break
            }
            rules.element(write: d.flags.contains(.write), len: d.len,
                          misplaced: "descriptor \(i) is device-readable but follows a device-writable descriptor in the chain from head \(head)")
            guard d.flags.contains(.next) else { break }
            guard Int(d.next) < n else {
                rules.report(Violation(.vqDescIndex, "descriptor \(i) points to next \(d.next), outside the descriptor table (queue size \(n))"))
                break
            }
            i = Int(d.next)
        }
        chain.violations = rules.violations
        chain.writableBytes = rules.writableBytes
        return chain
    }

    static func walkIndirect(parent: UInt16, count: Int, entries: [Descriptor], rules: inout ChainRules) {
        // Entries never described are zero descriptors, as a zeroed table would read.
        func entry(_ j: Int) -> Descriptor { j < entries.count ? entries[j] : .zero }
        var j = 0
        var visited = 0
        while true {
            visited += 1
            if visited > count {
                rules.report(Violation(.vqChainLoop, "indirect table of descriptor \(parent) visits more than its \(count) entries: a loop"))
                return
            }
            let d = entry(j)
            if d.flags.contains(.indirect) {
                rules.report(Violation(.vqIndirectNested, "entry \(j) of the indirect table of descriptor \(parent) has INDIRECT (nested indirect)"))
                return
            }
            rules.element(write: d.flags.contains(.write), len: d.len,
                          misplaced: "entry \(j) of the indirect table of descriptor \(parent) is device-readable but follows a device-writable descriptor")
            guard d.flags.contains(.next) else { return }
            guard Int(d.next) < count else {
                rules.report(Violation(.vqDescIndex, "entry \(j) of the indirect table of descriptor \(parent) points to next \(d.next), outside the table's \(count) entries"))
                return
            }
            j = Int(d.next)
        }
    }
}
