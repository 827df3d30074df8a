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
    public static func walk<Table: DescriptorSource>(head: UInt16, table: Table, indirectAllowed: Bool, inOrder: Bool = false,
                            stopAt: (UInt16) -> Bool = { _ in false },
                            seen: inout [UInt32], stamp: UInt32,
                            indirectTable: (UInt16) -> [Descriptor]?) -> Chain {
        walk(head: head, table: table, indirectAllowed: indirectAllowed, inOrder: inOrder, stopAt: stopAt, seen: &seen, stamp: stamp,
             indirectTables: { indirectTable($0).map(IndirectTable.init) })
    }

    /// `walk`, with the indirect tables as the ring keeps them (sparse beyond what was described).
    public static func walk<Table: DescriptorSource>(head: UInt16, table: Table, indirectAllowed: Bool, inOrder: Bool = false,
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
        // Buffers (descriptors that are not a pointer to an indirect table) and their bytes, for
        // VQ-CHAIN-LENGTH: "A driver MUST NOT create a descriptor chain longer than the Queue Size"
        // (VIRTIO-87: even with INDIRECT), and no chain above 2^32 bytes.
        var count = Counted()
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
                    walkIndirect(parent: UInt16(i), count: Int(d.len / SplitRing.descriptorSize), entries: entries, inOrder: inOrder,
                                 seenWritable: &seenWritable, orderReported: &orderReported, writable: &writable,
                                 counted: &count, into: &chain)
                } else {
                    unknown = true
                }
                // The device ignores WRITE on the descriptor that points to the table, and the
                // chain ends here: INDIRECT must be last.
                break
            }
            count.add(d.len)
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
            if inOrder && Int(d.next) != (i + 1) % n {
                chain.violations.append(Violation(.vqInOrderNext, "descriptor \(i) has next \(d.next), but with VIRTIO_F_IN_ORDER it must be \((i + 1) % n) (descriptors are used in ring order)"))
            }
            i = Int(d.next)
        }
        chain.writableBytes = unknown ? nil : writable
        // A loop is already its own finding; length is judged only for chains that end.
        if !chain.violations.contains(where: { $0.rule == .vqChainLoop }) {
            if count.buffers > n {
                chain.violations.append(Violation(.vqChainLength, "chain from head \(head) has \(count.buffers) buffer descriptors (counting its indirect table's entries), more than the queue size \(n)"))
            } else if count.bytes > Counted.maxBytes {
                chain.violations.append(Violation(.vqChainLength, "chain from head \(head) describes \(count.bytes) bytes, more than 2^32"))
            }
        }
        return chain
    }

    /// Buffers and bytes of one chain walk.
    struct Counted {
        static let maxBytes: UInt64 = 1 << 32
        var buffers = 0
        var bytes: UInt64 = 0
        mutating func add(_ len: UInt32) { buffers += 1; bytes += UInt64(len) }
    }

    /// The buffers of the chain from `head`, as a device reads them: main-table descriptors, and for
    /// the descriptor that has INDIRECT the entries of its table in chain order; plus the indirect
    /// table descriptors themselves. Bounded like `walk` (at most N main steps, at most
    /// min(len/16, described) + 1 indirect entries, as `walkIndirect`).
    /// nil when an indirect table was never described.
    public static func buffers<Table: DescriptorSource>(head: UInt16, table: Table,
                                                        indirectTable: (UInt16) -> IndirectTable?) -> (buffers: [Descriptor], tables: [Descriptor])? {
        // nil as well for a chain `walk` reports as malformed: its own rule says what is wrong,
        // and no buffer list is the one a device would use.
        var out: [Descriptor] = []
        var tables: [Descriptor] = []
        let n = table.count
        var i = Int(head)
        var steps = 0
        while true {
            guard i < n, steps < n else { return nil }
            steps += 1
            let d = table[i]
            if d.flags.contains(.indirect) {
                guard !d.flags.contains(.next), d.len != 0, d.len % SplitRing.descriptorSize == 0,
                      d.len / SplitRing.descriptorSize <= SplitRing.maxIndirectEntries,
                      let entries = indirectTable(UInt16(i)) else { return nil }
                tables.append(d)
                let count = Int(d.len / SplitRing.descriptorSize)
                // Past min(count, described) + 1 NEXT steps the walk has come back to an entry (see walkIndirect).
                let limit = min(count, entries.described) + 1
                var j = 0, visited = 0
                while true {
                    guard j < count, visited < count, visited < limit else { return nil }
                    visited += 1
                    let e = entries[j]
                    guard !e.flags.contains(.indirect) else { return nil }
                    out.append(e)
                    guard e.flags.contains(.next) else { break }
                    j = Int(e.next)
                }
                return (out, tables)
            }
            out.append(d)
            guard d.flags.contains(.next) else { return (out, tables) }
            i = Int(d.next)
        }
    }

    static func walkIndirect(parent: UInt16, count: Int, entries: IndirectTable, inOrder: Bool, seenWritable: inout Bool,
                             orderReported: inout Bool, writable: inout UInt64, counted: inout Counted, into chain: inout Chain) {
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
            counted.add(d.len)
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
            if inOrder && Int(d.next) != j + 1 {
                chain.violations.append(Violation(.vqInOrderNext, "entry \(j) of the indirect table of descriptor \(parent) has next \(d.next), but with VIRTIO_F_IN_ORDER indirect entries are sequential (next \(j + 1))"))
            }
            j = Int(d.next)
        }
    }
}
