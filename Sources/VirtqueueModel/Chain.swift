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

/// Walks chains through a descriptor table. Pure: reads the table, never changes it.
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
        walk(head: head, table: table, indirectAllowed: indirectAllowed, stopAt: stopAt, seen: &seen, stamp: stamp,
             indirectTables: { indirectTable($0).map(IndirectTable.init) })
    }

    /// `walk`, with the indirect tables as the ring keeps them (sparse beyond what was described).
    public static func walk<Table: DescriptorSource>(head: UInt16, table: Table, indirectAllowed: Bool,
                            stopAt: (UInt16) -> Bool = { _ in false },
                            seen: inout [UInt32], stamp: UInt32,
                            indirectTables: (UInt16) -> IndirectTable?) -> Chain {
        var chain = Chain()
        let n = table.count
        guard Int(head) < n else {
            chain.violations.append(Violation(.vqDescIndex, "chain head \(head) is outside the descriptor table (queue size \(n))"))
            return chain
        }
        var seenWritable = false
        // One order finding per chain: a long or looping chain must not yield one per descriptor.
        var orderReported = false
        var writable: UInt64 = 0
        var unknown = false
        var i = Int(head)
        while true {
            if stopAt(UInt16(i)) { chain.busy = UInt16(i); break }
            if seen[i] == stamp {
                // Revisiting a descriptor: the chain never ends, so it is longer than N.
                chain.violations.append(Violation(.vqChainLoop, "chain from head \(head) comes back to descriptor \(i): a loop (longer than the queue size \(n))"))
                break
            }
            seen[i] = stamp
            chain.descriptors.append(UInt16(i))
            let d = table[i]
            if d.flags.contains(.indirect) {
                if !indirectAllowed {
                    chain.violations.append(Violation(.vqIndirectFeature, "descriptor \(i) has INDIRECT but VIRTIO_F_INDIRECT_DESC (bit 28) was not negotiated"))
                }
                if d.flags.contains(.next) {
                    chain.violations.append(Violation(.vqIndirectNext, "descriptor \(i) has both INDIRECT and NEXT"))
                }
                if d.len == 0 || d.len % SplitRing.descriptorSize != 0 || d.len / SplitRing.descriptorSize > SplitRing.maxIndirectEntries {
                    chain.violations.append(Violation(.vqIndirectLen, "indirect descriptor \(i) has len \(d.len): not a non-zero multiple of 16 covering at most 65536 entries"))
                } else if let entries = indirectTables(UInt16(i)) {
                    walkIndirect(parent: UInt16(i), count: Int(d.len / SplitRing.descriptorSize), entries: entries,
                                 seenWritable: &seenWritable, orderReported: &orderReported, writable: &writable, into: &chain)
                } else {
                    unknown = true
                }
                // The device ignores WRITE on the descriptor that points to the table, and the
                // chain ends here: INDIRECT must be last.
                break
            }
            if d.flags.contains(.write) {
                seenWritable = true
                writable += UInt64(d.len)
            } else if seenWritable && !orderReported {
                orderReported = true
                chain.violations.append(Violation(.vqChainOrder, "descriptor \(i) is device-readable but follows a device-writable descriptor in the chain from head \(head)"))
            }
            guard d.flags.contains(.next) else { break }
            guard Int(d.next) < n else {
                chain.violations.append(Violation(.vqDescIndex, "descriptor \(i) points to next \(d.next), outside the descriptor table (queue size \(n))"))
                break
            }
            i = Int(d.next)
        }
        chain.writableBytes = unknown ? nil : writable
        return chain
    }

    static func walkIndirect(parent: UInt16, count: Int, entries: IndirectTable, seenWritable: inout Bool,
                             orderReported: inout Bool, writable: inout UInt64, into chain: inout Chain) {
        // Entries never described are zero descriptors, as a zeroed table would read.
        func entry(_ j: Int) -> Descriptor { entries[j] }
        // Only described entries can have NEXT, so a walk that has followed NEXT from more than
        // min(count, described) entries has come back to one: it loops, and would until `count`.
        // Stopping there keeps a two-entry loop in a 65536-entry table from costing 65536 steps
        // per exposure, with the same findings (the repeated entry is walked twice, so an order
        // violation the second lap would show is already seen).
        let limit = min(count, entries.described) + 1
        var j = 0
        var visited = 0
        while true {
            visited += 1
            if visited > count || visited > limit {
                chain.violations.append(Violation(.vqChainLoop, "indirect table of descriptor \(parent) visits more than its \(count) entries: a loop"))
                return
            }
            let d = entry(j)
            if d.flags.contains(.indirect) {
                chain.violations.append(Violation(.vqIndirectNested, "entry \(j) of the indirect table of descriptor \(parent) has INDIRECT (nested indirect)"))
                return
            }
            if d.flags.contains(.write) {
                seenWritable = true
                writable += UInt64(d.len)
            } else if seenWritable && !orderReported {
                orderReported = true
                chain.violations.append(Violation(.vqChainOrder, "entry \(j) of the indirect table of descriptor \(parent) is device-readable but follows a device-writable descriptor"))
            }
            guard d.flags.contains(.next) else { return }
            guard Int(d.next) < count else {
                chain.violations.append(Violation(.vqDescIndex, "entry \(j) of the indirect table of descriptor \(parent) points to next \(d.next), outside the table's \(count) entries"))
                return
            }
            j = Int(d.next)
        }
    }
}
