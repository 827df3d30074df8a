import TraceFormat
import VhostUser

/// A relayed vring, split (`RingRelay`) or packed (`PackedRingRelay`): what the interposer's
/// loop asks of it.
protocol VringRelay {
    /// The front-end's configuration the ring was started with.
    var config: RingConfig { get }
    var buffersUsed: UInt64 { get }
    /// Per-step bound on descriptor reads and copies.
    var workBound: Int { get }
    /// One relay pass; returns whether to kick the back-end and to interrupt the front-end.
    mutating func step(memory: MemoryTable, t: UInt64, kicked: Bool, called: Bool, out: inout [TraceEvent]) throws(RelayFailure) -> (kick: Bool, call: Bool)
    /// The real ring's parts re-resolved in a new memory table.
    func remapped(config: RingConfig, memory: MemoryTable) -> Self?
}

extension RingRelay: VringRelay {}
extension PackedRingRelay: VringRelay {}
