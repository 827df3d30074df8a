/// The rings the front-end named, one follower per vq, kept in vq order in one array: a pass walks
/// it and polls each follower in place. (Held as a dictionary's values, every `rings[vq]?.isPolled`
/// copied the follower, a dozen retains and releases, and a poll through `rings[vq]!` moved it out
/// and back: about 3,000 instructions per ring per pass before the ring was read.)
struct RingTable {
    /// In vq order.
    private(set) var followers: [RingFollower] = []
    /// Where each vq's follower is in `followers`.
    private var slot: [UInt16: Int] = [:]

    var indices: Range<Int> { followers.indices }
    var isEmpty: Bool { followers.isEmpty }

    func contains(_ vq: UInt16) -> Bool { slot[vq] != nil }

    /// Where `vq`'s follower is (for `subscript(at:)`).
    func index(of vq: UInt16) -> Int? { slot[vq] }

    /// Adds a follower for `vq` if it has none (a message named it).
    mutating func add(_ vq: UInt16) {
        guard slot[vq] == nil else { return }
        let at = followers.firstIndex { $0.vq > vq } ?? followers.count
        followers.insert(RingFollower(vq: vq), at: at)
        for k in at..<followers.count { slot[followers[k].vq] = k }
    }

    /// The follower of `vq`, which must be in the table (`contains`, `add`).
    subscript(vq: UInt16) -> RingFollower {
        _read { yield followers[slot[vq]!] }
        _modify { yield &followers[slot[vq]!] }
    }

    /// The follower at position `i` (vq order).
    subscript(at i: Int) -> RingFollower {
        _read { yield followers[i] }
        _modify { yield &followers[i] }
    }

    /// Whether `vq` has a follower whose ring polls read.
    func isPolled(_ vq: UInt16) -> Bool {
        guard let i = slot[vq] else { return false }
        return followers[i].isPolled
    }

    var anyPolled: Bool { followers.contains { $0.isPolled } }

    /// The configuration the front-end gave `vq`, if it named it.
    func config(_ vq: UInt16) -> RingConfig? { slot[vq].map { followers[$0].config } }

    mutating func stopAll() {
        for i in followers.indices { followers[i].stop() }
    }
}
