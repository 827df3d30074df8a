import VirtqueueModel

/// The main-table descriptors one exposure's poll read, by index (the last read of each), over
/// which the exact model walks that exposure's chain to see whether it can be made available now.
///
/// Stamped per exposure: an entry belongs to the current exposure when its stamp is the current
/// generation, so starting the next one is a counter bump. A dictionary built per exposure cost an
/// allocation and a hash per read, and a hash per descriptor walked.
struct ReadOverlay {
    private var stamps: [UInt32]
    private var values: [Descriptor]
    private var generation: UInt32 = 1

    init(size: UInt32) {
        stamps = Array(repeating: 0, count: Int(size))
        values = Array(repeating: Descriptor(), count: Int(size))
    }

    /// Forgets every entry (the next exposure).
    mutating func begin() {
        generation &+= 1
        if generation == 0 {
            for k in stamps.indices { stamps[k] = 0 }
            generation = 1
        }
    }

    subscript(i: Int) -> Descriptor? {
        get { i < stamps.count && stamps[i] == generation ? values[i] : nil }
        set {
            guard i < stamps.count else { return }
            if let d = newValue { stamps[i] = generation; values[i] = d } else { stamps[i] = 0 }
        }
    }
}

/// The model's table as an exposure's poll read it: `ReadOverlay`'s entries over `base`.
struct OverlaidReads<Base: DescriptorSource>: DescriptorSource {
    let base: Base
    let reads: ReadOverlay
    var count: Int { base.count }
    subscript(_ i: Int) -> Descriptor { reads[i] ?? base[i] }
}
