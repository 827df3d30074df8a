import VirtioProtocol
import VirtqueueModel

/// What one poll of a split ring read, before it is judged. Positions are free-running indices.
/// `ref` is the caller's name for the observation (the checker passes the trace event's index), so
/// that a finding can point at the event that made the run impossible.
public struct DescriptorRead: Sendable, Equatable {
    public enum Place: Sendable, Equatable {
        case table(UInt16)
        case indirect(parent: UInt16, entry: UInt16)
    }
    public var place: Place
    public var descriptor: Descriptor
    public init(_ place: Place, _ descriptor: Descriptor) { self.place = place; self.descriptor = descriptor }
}

/// A chain made available at one avail position, as one poll saw it.
struct ObservedExposure: Sendable {
    var pos: UInt16
    var head: UInt16
    /// The descriptors the poll read for this position's chain (walk order).
    var reads: [DescriptorRead]
    var ref: UInt64
    /// Index of the poll that saw it.
    var poll: Int
}

/// A used element at one used position, as one poll saw it.
struct ObservedCompletion: Sendable {
    var pos: UInt16
    var id: UInt32
    var len: UInt32
    var ref: UInt64
    var poll: Int
    /// The device certainly wrote this element: the poll read used.idx right past it, and a device
    /// writes the element of the last buffer of every batch it publishes.
    var batchEnd: Bool
    /// The slot held this same element one lap earlier (or nothing is known of its earlier content):
    /// with IN_ORDER the device need not rewrite it, so it may be stale.
    var mayBeStale: Bool
    /// The slot is known to hold this same element from one lap earlier.
    var sameAsLastLap: Bool
}

/// A rule broken, with the observation it is reported at.
public struct PolledViolation: Sendable, Equatable {
    public let ref: UInt64
    public let violation: Violation
}

/// What a polled ring let the checker judge, and what it could not.
public struct PolledCoverage: Sendable, Equatable {
    /// Exposures observed.
    public var exposures: UInt64 = 0
    /// Exposures whose chain was judged (the poll read it while the device certainly owned it).
    public var chainsJudged: UInt64 = 0
    /// Completions observed.
    public var completions: UInt64 = 0
    /// Completions left unexplained when observation of the ring ended (the trace ended or the ring
    /// stopped or restarted): their exposure may have come after the last poll, so they are not judged.
    public var completionsUndecided: UInt64 = 0
    /// Times judging started again because a poll's entries could not be trusted or the
    /// observations broke (a `ring_gap` followed by more polls).
    public var restarts: UInt64 = 0
    /// Packed rings: buffers made available and used between two polls, seen only as used
    /// descriptors (the device overwrites a list in place); counted, never judged.
    public var unseenExposures: UInt64 = 0
    /// Packed rings: lists in flight where judging started again with buffers in flight
    /// (`PackedResync`). Their ids are taken as read, not held against the driver's (a device
    /// completing out of order may already have used one), so PACKED-BUFFER-ID is not judged on them.
    public var restartLists: UInt64 = 0

    public init() {}

    public static func += (a: inout PolledCoverage, b: PolledCoverage) {
        a.exposures += b.exposures; a.chainsJudged += b.chainsJudged
        a.completions += b.completions; a.completionsUndecided += b.completionsUndecided
        a.restarts += b.restarts; a.unseenExposures += b.unseenExposures; a.restartLists += b.restartLists
    }
}

extension Array where Element == PolledViolation {
    /// `v += found`, doing nothing when nothing was found (as `[Violation]`'s: the standard
    /// library's append of an empty array made a new buffer each time).
    @inlinable public static func += (lhs: inout [PolledViolation], rhs: [PolledViolation]) {
        if rhs.isEmpty { return }
        if lhs.isEmpty { lhs = rhs } else { lhs.append(contentsOf: rhs) }
    }
}
