import VirtioProtocol

/// Building a back-end's answers (for `serve`, test peers, and the recorder's tests).
extension Message {
    /// The reply to `request`: same request id, REPLY set, the given payload.
    public static func reply(to request: Message, payload: some Payload, fds: [Int32] = []) -> Message {
        let p = payload.encode()
        return Message(header: MessageHeader(request: request.header.request, flags: [.version1, .reply], size: UInt32(p.count)), payload: p, fds: fds)
    }

    /// The REPLY_ACK answer (u64: 0 success, non-zero failure) a back-end owes a request sent with
    /// NEED_REPLY once REPLY_ACK was negotiated.
    public static func ack(_ request: Message, success: Bool) -> Message {
        reply(to: request, payload: U64Payload(success ? 0 : 1))
    }

    /// Whether this request asks for an answer, given the negotiated protocol features.
    public func wantsReply(protocolFeatures: UInt64) -> Bool {
        if request?.alwaysReplies(protocolFeatures: protocolFeatures) == true { return true }
        return needsReply && protocolFeatures & ProtocolFeatureBit.replyAck.mask != 0
    }
}
