/// The `virtio_net_hdr` every packet buffer starts with. Source: virtio 1.x "Network Device /
/// Device Operation / Packet Transmission" (`struct virtio_net_hdr`, `num_buffers` present with
/// VIRTIO_F_VERSION_1 or VIRTIO_NET_F_MRG_RXBUF).
public enum NetHeader {
    /// flags, gso_type, hdr_len, gso_size, csum_start, csum_offset.
    public static let legacySize = 10
    /// The same plus `num_buffers` (u16 at offset 10).
    public static let size = 12
    public static let numBuffersOffset = 10

    /// Header length for the negotiated features.
    public static func length(features: UInt64) -> Int {
        features & (FeatureBit.version1.mask | FeatureBit.netMrgRxbuf.mask) != 0 ? size : legacySize
    }
}
