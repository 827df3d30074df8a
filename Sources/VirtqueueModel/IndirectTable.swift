/// An entry of an indirect table: a split or a packed descriptor, zero when never written.
public protocol TableEntry: Equatable, Sendable {
    static var zero: Self { get }
}

extension Descriptor: TableEntry {}
extension PackedDescriptor: TableEntry {}

/// The entries a trace described for one indirect table. Entries never described read as zero
/// descriptors, as a zeroed table would. Dense up to a little past the described entries, sparse
/// beyond: one event naming entry 65535 must not allocate and zero 65536 entries (1 MiB for 40 bytes
/// of trace, which made a hostile trace cost milliseconds an event). One definition for both ring
/// formats (`IndirectTable`, `PackedIndirectTable`).
public struct SparseTable<Entry: TableEntry>: Equatable, Sendable {
    /// Entries 0..<dense.count, all described; entries past them, described out of order, in `sparse`.
    private var dense: [Entry] = []
    private var sparse: [UInt16: Entry] = [:]

    public init() {}

    /// A table whose entries 0..<n are `entries`.
    public init(_ entries: [Entry]) { dense = entries }

    /// Entries described (written at least once): only these can be anything but a zero descriptor.
    public var described: Int { dense.count + sparse.count }

    /// Entries 0..<prefix were all described (the rest of the table has a gap at `prefix`).
    public var describedPrefix: Int { dense.count }

    public subscript(j: Int) -> Entry {
        if j < dense.count { return dense[j] }
        return j <= Int(UInt16.max) ? sparse[UInt16(j)] ?? .zero : .zero
    }

    /// Entry `j` if it was described (written), nil if never.
    public func entry(_ j: UInt16) -> Entry? {
        Int(j) < dense.count ? dense[Int(j)] : sparse[j]
    }

    /// Every described entry with its index (dense part in order, then the sparse ones).
    public var describedEntries: [(index: UInt16, entry: Entry)] {
        dense.enumerated().map { (UInt16($0.offset), $0.element) } + sparse.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Memory this table holds, in descriptor-sized units (a sparse entry costs about two).
    public var cost: Int { dense.count + 2 * sparse.count }

    public mutating func set(_ j: UInt16, _ d: Entry) {
        let i = Int(j)
        if i < dense.count { dense[i] = d; return }
        guard i == dense.count else { sparse[j] = d; return }
        dense.append(d)
        // Entries described ahead of this one join the dense part once it reaches them.
        while dense.count <= Int(UInt16.max), let next = sparse.removeValue(forKey: UInt16(dense.count)) { dense.append(next) }
    }
}

/// A split ring's indirect table (`virtq_desc` entries).
public typealias IndirectTable = SparseTable<Descriptor>
/// A packed ring's indirect table (`pvirtq_desc` entries).
public typealias PackedIndirectTable = SparseTable<PackedDescriptor>
