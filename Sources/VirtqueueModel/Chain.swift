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
/// of a recorder read it (`OverlaidReads`, in PolledSemantics). The chain rules are defined once,
/// over any source.
public protocol DescriptorSource {
    var count: Int { get }
    subscript(_ i: Int) -> Descriptor { get }
}

extension Array: DescriptorSource where Element == Descriptor {}

/// The chain rules both formats share, applied to a buffer's descriptors in the order the device
/// uses them: device-writable elements after device-readable ones (VQ-CHAIN-ORDER), the writable
/// bytes a used length may claim (VQ-USED-LEN), and the checks on a descriptor that points to an
/// indirect table (VQ-INDIRECT-FEATURE, VQ-INDIRECT-LEN). Each format's walker decides which
/// descriptors make up the buffer and in what order (split: `next` links; packed: consecutive
/// ring positions and every entry of a table) and feeds them here.
public struct ChainRules: Sendable {
    public private(set) var violations: [Violation] = []
    private var seenWritable = false
    // One order finding per chain: a long or looping chain must not yield one per descriptor.
    private var orderReported = false
    private var writable: UInt64 = 0
    /// An indirect table was never described: its elements, hence the writable bytes, are unknown.
    public var unknown = false

    public init() {}

    /// Buffers (descriptors that are not a pointer to an indirect table) and their bytes, for
    /// VQ-CHAIN-LENGTH: "A driver MUST NOT create a descriptor chain longer than the Queue Size"
    /// (VIRTIO-87: even with INDIRECT), and no chain above 2^32 bytes.
    public private(set) var buffers = 0
    public private(set) var bytes: UInt64 = 0
    public static let maxChainBytes: UInt64 = 1 << 32

    /// One element of the buffer. `message` describes a readable element found after a writable one.
    public mutating func element(write: Bool, len: UInt32, misplaced message: @autoclosure () -> String) {
        buffers += 1
        bytes += UInt64(len)
        if write {
            seenWritable = true
            writable += UInt64(len)
        } else if seenWritable && !orderReported {
            orderReported = true
            violations.append(Violation(.vqChainOrder, message()))
        }
    }

    /// VQ-CHAIN-LENGTH once the walk of `name` is done. A loop is already its own finding; length is
    /// judged only for chains that end.
    // `name` and the other descriptions below are rendered only for a finding (every walk calls these).
    public mutating func checkLength(queueSize n: Int, name: @autoclosure () -> String) {
        guard !violations.contains(where: { $0.rule == .vqChainLoop }) else { return }
        if buffers > n {
            violations.append(Violation(.vqChainLength, "\(name()) has \(buffers) buffer descriptors (counting its indirect table's entries), more than the queue size \(n)"))
        } else if bytes > Self.maxChainBytes {
            violations.append(Violation(.vqChainLength, "\(name()) describes \(bytes) bytes, more than 2^32"))
        }
    }

    /// A violation the format's walker found (a bad index, a loop, a flag misused).
    public mutating func report(_ v: Violation) { violations.append(v) }

    /// A descriptor `name` carries INDIRECT: allowed only with VIRTIO_F_INDIRECT_DESC.
    public mutating func indirectFeature(allowed: Bool, name: @autoclosure () -> String) {
        if !allowed {
            violations.append(Violation(.vqIndirectFeature, "\(name()) has INDIRECT but VIRTIO_F_INDIRECT_DESC (bit 28) was not negotiated"))
        }
    }

    /// The length of the indirect descriptor `name`: the table's entry count when it is a non-zero
    /// multiple of 16 covering at most 65536 entries, else nil (and VQ-INDIRECT-LEN).
    public mutating func indirectTableEntries(len: UInt32, name: @autoclosure () -> String) -> Int? {
        if len == 0 || len % SplitRing.descriptorSize != 0 || len / SplitRing.descriptorSize > SplitRing.maxIndirectEntries {
            violations.append(Violation(.vqIndirectLen, "indirect \(name()) has len \(len): not a non-zero multiple of 16 covering at most 65536 entries"))
            return nil
        }
        return Int(len / SplitRing.descriptorSize)
    }

    /// Total bytes of device-writable elements, or nil when an indirect table was never described.
    public var writableBytes: UInt64? { unknown ? nil : writable }
}

/// What `ChainWalker.buffers` tells, in chain order: each buffer a device reads or writes, and each
/// descriptor that points to an indirect table.
public protocol ChainBufferSink {
    mutating func buffer(_ d: Descriptor)
    mutating func table(_ d: Descriptor)
}

/// The buffers and the indirect-table descriptors of a chain, as two lists.
public struct BufferLists: ChainBufferSink {
    public var buffers: [Descriptor] = []
    public var tables: [Descriptor] = []
    public init() {}
    public mutating func buffer(_ d: Descriptor) { buffers.append(d) }
    public mutating func table(_ d: Descriptor) { tables.append(d) }
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
        var descriptors: [UInt16] = []
        var chain = walk(head: head, table: table, indirectAllowed: indirectAllowed, inOrder: inOrder, stopAt: stopAt,
                         seen: &seen, stamp: stamp, indirectTables: indirectTables, descriptors: &descriptors)
        chain.descriptors = descriptors
        return chain
    }

    /// `walk`, appending the chain's main-table indices to `descriptors` (a list the caller reuses
    /// from walk to walk, so that a walk allocates nothing) instead of `Chain.descriptors`.
    public static func walk<Table: DescriptorSource>(head: UInt16, table: Table, indirectAllowed: Bool, inOrder: Bool = false,
                            stopAt: (UInt16) -> Bool = { _ in false },
                            seen: inout [UInt32], stamp: UInt32,
                            indirectTables: (UInt16) -> IndirectTable?,
                            descriptors: inout [UInt16]) -> Chain {
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
            descriptors.append(UInt16(i))
            let d = table[i]
            if d.flags.contains(.indirect) {
                rules.indirectFeature(allowed: indirectAllowed, name: "descriptor \(i)")
                if d.flags.contains(.next) {
                    rules.report(Violation(.vqIndirectNext, "descriptor \(i) has both INDIRECT and NEXT"))
                }
                if let count = rules.indirectTableEntries(len: d.len, name: "descriptor \(i)") {
                    if let entries = indirectTables(UInt16(i)) {
                        walkIndirect(parent: UInt16(i), count: count, entries: entries, inOrder: inOrder, rules: &rules)
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
            if inOrder && Int(d.next) != (i + 1) % n {
                rules.report(Violation(.vqInOrderNext, "descriptor \(i) has next \(d.next), but with VIRTIO_F_IN_ORDER it must be \((i + 1) % n) (descriptors are used in ring order)"))
            }
            i = Int(d.next)
        }
        rules.checkLength(queueSize: n, name: "chain from head \(head)")
        chain.violations = rules.violations
        chain.writableBytes = rules.writableBytes
        return chain
    }

    /// The buffers of the chain from `head`, as a device reads them: main-table descriptors, and for
    /// the descriptor that has INDIRECT the entries of its table in chain order; plus the indirect
    /// table descriptors themselves. Bounded like `walk` (at most N main steps, at most
    /// min(len/16, described) + 1 indirect entries, as `walkIndirect`).
    /// nil when an indirect table was never described.
    public static func buffers<Table: DescriptorSource>(head: UInt16, table: Table,
                                                        indirectTable: (UInt16) -> IndirectTable?) -> (buffers: [Descriptor], tables: [Descriptor])? {
        var lists = BufferLists()
        guard buffers(head: head, table: table, indirectTable: indirectTable, into: &lists) else { return nil }
        return (lists.buffers, lists.tables)
    }

    /// `buffers`, told to `sink` one descriptor at a time instead of collected in two arrays (the
    /// checker judges each chain made available this way, allocating nothing). False where
    /// `buffers` is nil; the sink may then have been told a part of the chain.
    public static func buffers<Table: DescriptorSource, Sink: ChainBufferSink>(head: UInt16, table: Table,
                                                                              indirectTable: (UInt16) -> IndirectTable?,
                                                                              into out: inout Sink) -> Bool {
        // False as well for a chain `walk` reports as malformed: its own rule says what is wrong,
        // and no buffer list is the one a device would use.
        let n = table.count
        var i = Int(head)
        var steps = 0
        // A chain that comes back to a descriptor loops for ever, so it is malformed: Brent's
        // cycle check (`saved` catches up with the walker after 1, 2, 4, ... steps) finds the loop
        // within twice the chain's length, where walking to N steps made a ring of looping chains
        // cost N steps per chain (quadratic in the queue size for one publication). Same answers
        // (ChainBuffersLoopTests): a walk of N steps without coming back is impossible in a table of N.
        var saved = -1, sinceSaved = 0, period = 1
        while true {
            guard i < n, steps < n, i != saved else { return false }
            steps += 1
            sinceSaved += 1
            if sinceSaved == period { saved = i; sinceSaved = 0; period *= 2 }
            let d = table[i]
            if d.flags.contains(.indirect) {
                guard !d.flags.contains(.next), d.len != 0, d.len % SplitRing.descriptorSize == 0,
                      d.len / SplitRing.descriptorSize <= SplitRing.maxIndirectEntries,
                      let entries = indirectTable(UInt16(i)) else { return false }
                out.table(d)
                let count = Int(d.len / SplitRing.descriptorSize)
                // Past min(count, described) + 1 NEXT steps the walk has come back to an entry (see walkIndirect).
                let limit = min(count, entries.described) + 1
                var j = 0, visited = 0
                while true {
                    guard j < count, visited < count, visited < limit else { return false }
                    visited += 1
                    let e = entries[j]
                    guard !e.flags.contains(.indirect) else { return false }
                    out.buffer(e)
                    guard e.flags.contains(.next) else { break }
                    j = Int(e.next)
                }
                return true
            }
            out.buffer(d)
            guard d.flags.contains(.next) else { return true }
            i = Int(d.next)
        }
    }

    static func walkIndirect(parent: UInt16, count: Int, entries: IndirectTable, inOrder: Bool, rules: inout ChainRules) {
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
            if inOrder && Int(d.next) != j + 1 {
                rules.report(Violation(.vqInOrderNext, "entry \(j) of the indirect table of descriptor \(parent) has next \(d.next), but with VIRTIO_F_IN_ORDER indirect entries are sequential (next \(j + 1))"))
            }
            j = Int(d.next)
        }
    }
}

/// A packed list as the device sees it when its first descriptor is made available: consecutive
/// ring positions from `start`, linked by NEXT, the buffer id on the last one.
public struct PackedChain: Sendable {
    public var start: UInt64
    /// Descriptors (consecutive positions) the list occupies.
    public var count = 0
    /// The buffer id: the id of the list's last descriptor.
    public var id: UInt16 = 0
    /// Total bytes of device-writable elements; nil when an indirect table was never described.
    public var writableBytes: UInt64? = 0
    public var violations: [Violation] = []
    /// The first position of the list that is not available yet: the head went first.
    public var missing: UInt64?
    /// The list does not end within the free part of the ring.
    public var runsOut = false
    /// Whether the list can be handed to the device (complete and within the free part).
    public var complete: Bool { missing == nil && !runsOut }
    public init(start: UInt64) { self.start = start }
}

/// Walks packed lists. Pure: reads the ring, never changes it.
public enum PackedChainWalker {
    /// Walks the list whose first descriptor is at position `start`, through the positions before
    /// `end` (beyond it the device owns the descriptors). `available(q, d)`: whether descriptor
    /// `d`, read at position `q`, is marked available for `q`. `indirectTable(s)`: the entries
    /// written for the indirect table of slot `s`, or nil if none were described. `known(q)` false:
    /// only the flags of the descriptor at position q are known (a poll may have read its addr, len
    /// and id after the device wrote there): the rules that need its length or table are not
    /// applied to it, and if it is device-writable the writable bytes are unknown.
    public static func walk<Ring: PackedDescriptorSource>(from start: UInt64, end: UInt64, ring: Ring, indirectAllowed: Bool,
                                                         known: (UInt64) -> Bool = { _ in true },
                                                         available: (UInt64, PackedDescriptor) -> Bool,
                                                         indirectTable: (UInt16) -> PackedIndirectTable?) -> PackedChain {
        var chain = PackedChain(start: start)
        let n = UInt32(ring.count)
        var rules = ChainRules()
        var q = start
        func slot(_ p: UInt64) -> UInt16 { PackedRing.slot(p, size: n) }
        while true {
            if q >= end {
                if end - start >= UInt64(n) {
                    rules.report(Violation(.vqChainLoop, "the list from position \(start) (slot \(slot(start))) has NEXT on all \(n) descriptors of the ring: longer than the queue size \(n)"))
                } else {
                    rules.report(Violation(.packedDriverOwnership, "the list from position \(start) (slot \(slot(start))) goes on past the \(end - start) free descriptor(s) into ones the device owns (a list must fit in the free part of the ring)"))
                }
                chain.runsOut = true
                break
            }
            let s = slot(q)
            let d = ring[Int(s)]
            guard available(q, d) else {
                rules.report(Violation(.packedChainHeadLast, "the list from position \(start) (slot \(slot(start))) was made available while its descriptor at position \(q) (slot \(s)) was not: the first descriptor of a list goes last"))
                chain.missing = q
                break
            }
            chain.count += 1
            chain.id = d.id
            if d.flags.contains(.indirect) {
                rules.indirectFeature(allowed: indirectAllowed, name: "descriptor \(s)")
                if d.flags.contains(.next) || q != start {
                    rules.report(Violation(.vqIndirectNext, "descriptor \(s) has INDIRECT inside a list linked by NEXT (from position \(start))"))
                }
                if !known(q) {
                    rules.unknown = true
                } else if let count = rules.indirectTableEntries(len: d.len, name: "descriptor \(s)") {
                    if let entries = indirectTable(s) {
                        walkIndirect(parent: s, count: count, entries: entries, rules: &rules)
                    } else {
                        rules.unknown = true
                    }
                }
            } else {
                // The device ignores WRITE on a descriptor that points to a table.
                if d.flags.contains(.write) && !known(q) { rules.unknown = true }
                rules.element(write: d.flags.contains(.write), len: d.len,
                              misplaced: "descriptor \(s) (position \(q)) is device-readable but follows a device-writable descriptor in the list from position \(start)")
            }
            q += 1
            guard d.flags.contains(.next) else { break }
        }
        chain.violations = rules.violations
        chain.writableBytes = rules.writableBytes
        return chain
    }

    /// Every entry of a packed indirect table is used, in order; only WRITE is a valid flag there.
    static func walkIndirect(parent: UInt16, count: Int, entries: PackedIndirectTable, rules: inout ChainRules) {
        var flagged = false
        // Only the entries described in order are walked: past a gap what the table holds is unknown.
        for j in 0..<min(count, entries.describedPrefix) {
            let d = entries[j]
            let other = d.flags.subtracting(.write)
            if !other.isEmpty && !flagged {
                flagged = true
                rules.report(Violation(.packedIndirectFlags, "entry \(j) of the indirect table of descriptor \(parent) has flags \(other): only WRITE is valid in an indirect table"))
            }
            rules.element(write: d.flags.contains(.write), len: d.len,
                          misplaced: "entry \(j) of the indirect table of descriptor \(parent) is device-readable but follows a device-writable descriptor")
        }
        // Entries never described: what they hold (and so the writable bytes) is unknown.
        if entries.describedPrefix < count { rules.unknown = true }
    }
}
