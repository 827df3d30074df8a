/// The polls of the completions a polled split ring has observed and not yet placed in the order,
/// per used-element id, oldest first ("is this chain's completion already observed, and since
/// which poll?"). Completions are placed oldest first, so each id's list is a queue.
///
/// Kept per head in an array indexed by id: a dictionary of arrays hashed the id three times per
/// completion, and taking the list out to drop its first entry copied it (an allocation per
/// completion). An id the ring cannot hold (a device's bogus one) has a dictionary of its own.
struct PendingPolls {
    private var byHead: [[Int]]
    private var other: [UInt32: [Int]] = [:]
    /// Entries held over all ids (so that emptying an already empty table costs nothing).
    private var held = 0

    init(size: UInt32) { byHead = Array(repeating: [], count: Int(size)) }

    /// The poll of the oldest pending completion naming `id`, if any.
    func first(_ id: UInt32) -> Int? {
        Int(id) < byHead.count ? byHead[Int(id)].first : other[id]?.first
    }

    mutating func append(_ id: UInt32, poll: Int) {
        held += 1
        if Int(id) < byHead.count { byHead[Int(id)].append(poll) } else { other[id, default: []].append(poll) }
    }

    /// The oldest pending completion naming `id` is placed.
    mutating func removeFirst(_ id: UInt32) {
        if Int(id) < byHead.count {
            guard !byHead[Int(id)].isEmpty else { return }
            byHead[Int(id)].removeFirst()
        } else {
            guard var polls = other[id] else { return }
            polls.removeFirst()
            other[id] = polls.isEmpty ? nil : polls
        }
        held -= 1
    }

    mutating func removeAll() {
        guard held > 0 else { return }
        for k in byHead.indices where !byHead[k].isEmpty { byHead[k].removeAll(keepingCapacity: true) }
        other = [:]
        held = 0
    }
}
