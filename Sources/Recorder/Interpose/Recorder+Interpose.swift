import TraceFormat

extension Recorder {
    /// One relay pass of `vq` (`--interpose`): the only way a relayed ring is touched, from the
    /// loop, a held disable, a kick or the GET_VRING_BASE reply alike.
    func relayRing(_ vq: UInt16) {
        guard let ip = interposer, ip.isRelaying(vq) else { return }
        scratch.removeAll(keepingCapacity: true)
        ip.step(vq, memory: memory, t: now, out: &scratch)
        write(scratch)
    }
}
