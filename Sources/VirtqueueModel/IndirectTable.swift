/// The entries a trace described for one indirect table. Entries never described read as zero
/// descriptors, as a zeroed table would. Dense up to a little past the described entries, sparse
/// beyond: one event naming entry 65535 must not allocate and zero 65536 entries (1 MiB for 40 bytes
/// of trace, which made a hostile trace cost milliseconds an event).
public struct IndirectTable: Equatable, Sendable {
    /// Entries 0..<dense.count, all described; entries past them, described out of order, in `sparse`.
    private var dense: [Descriptor] = []
    private var sparse: [UInt16: Descriptor] = [:]

    public init() {}

    /// A table whose entries 0..<n are `entries`.
    public init(_ entries: [Descriptor]) { dense = entries }

    /// Entries described (written at least once): only these can be anything but a zero descriptor.
    public var described: Int { dense.count + sparse.count }

    public subscript(j: Int) -> Descriptor {
        if j < dense.count { return dense[j] }
        return j <= Int(UInt16.max) ? sparse[UInt16(j)] ?? .zero : .zero
    }

    /// Entry `j` if it was described (written), nil if never.
    public func entry(_ j: UInt16) -> Descriptor? {
        Int(j) < dense.count ? dense[Int(j)] : sparse[j]
    }

    /// Memory this table holds, in descriptor-sized units (a sparse entry costs about two).
    public var cost: Int { dense.count + 2 * sparse.count }

    public mutating func set(_ j: UInt16, _ d: Descriptor) {
        let i = Int(j)
        if i < dense.count { dense[i] = d; return }
        guard i == dense.count else { sparse[j] = d; return }
        dense.append(d)
        // Entries described ahead of this one join the dense part once it reaches them.
        while dense.count <= Int(UInt16.max), let next = sparse.removeValue(forKey: UInt16(dense.count)) { dense.append(next) }
    }
}
