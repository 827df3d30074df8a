/// What a device needs of `virtio_net_hdr` to fill it (the type and its sizes are in NetQueues.swift).
/// Source: virtio 1.x "Network Device / Device Operation" (`num_buffers` at offset 10, present with
/// VIRTIO_F_VERSION_1 or VIRTIO_NET_F_MRG_RXBUF).
extension NetHeader {
    public static let numBuffersOffset = 10

    /// Header length for the negotiated feature word (the bits serve offers: no hash report).
    public static func length(features: UInt64) -> Int {
        Int(size(Features(features)))
    }
}
