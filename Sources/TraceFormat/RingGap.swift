/// Why a recorder's observations of a ring break at a `ring_gap` event. What happened on the ring
/// between the gap and the next `poll` of it (or for the rest of the trace, if none follows) was not
/// observed, so the checker forgets that ring's state and says the trace was not fully judged.
public enum RingGapReason: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    /// An index moved so far between two polls that ring entries may have been overwritten before
    /// they were read (the poller fell behind, or could have been lapped within one poll).
    case lap = 1
    /// The ring's addresses are not inside the memory table the recorder mapped.
    case unmapped = 2
    /// The ring uses a format the recorder does not follow (for instance packed, before it is supported).
    case formatNotFollowed = 3
    /// Reading the ring faulted (the front-end shrank or unmapped the memory under it).
    case memoryFault = 4
    /// One poll needed more work than the recorder's per-poll bound (e.g. a looping chain walked again
    /// and again); the rest of that poll was not read.
    case workBound = 5
    /// The ring's index is beyond the queue count in the trace header.
    case beyondHeader = 6

    public var description: String {
        switch self {
        case .lap: return "an index moved so far that entries may have been overwritten before they were read"
        case .unmapped: return "the ring is not inside the mapped memory table"
        case .formatNotFollowed: return "the ring's format is not followed by the recorder"
        case .memoryFault: return "reading the ring faulted (memory shrunk or unmapped under the recorder)"
        case .workBound: return "a poll needed more work than the recorder's bound"
        case .beyondHeader: return "the ring is beyond the header's queue count"
        }
    }
}

/// Why a recorder's capture ended (`capture_end`). The end of a capture is not a quiescent point
/// of the session: the trace does not show what the peers did next, so notifications owed there
/// are not judged.
public enum CaptureEndReason: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    case duration = 1
    case signal = 2
    case maxEvents = 3
    case firstFinding = 4
    case failure = 5
    case frontendClosed = 6
    case backendClosed = 7

    public var description: String {
        switch self {
        case .duration: return "--duration reached"
        case .signal: return "interrupted by a signal"
        case .maxEvents: return "--max-events reached"
        case .firstFinding: return "stopped at the first finding (--stop-on-violation)"
        case .failure: return "the recorder failed"
        case .frontendClosed: return "the front-end closed the connection"
        case .backendClosed: return "the back-end closed the connection"
        }
    }
}

extension CaseIterable where Self: RawRepresentable & CustomStringConvertible, Self.RawValue == UInt8 {
    /// Every code with its meaning, "1 …, 2 …", for the event table's field notes: the list is
    /// written once, here in the enum, and the docs are generated from it.
    public static var codeList: String {
        allCases.map { "\($0.rawValue) \($0.description)" }.joined(separator: ", ")
    }
}
