import Glibc
import Testing
import VirtioProtocol
@testable import VhostUser

/// Every typed payload encodes to the layout of vhost-user.rst and decodes back; short or
/// overrunning payloads decode to nil.
@Suite struct PayloadTests {
    /// `needed`: the bytes decoding needs (less than `size` where the encoding pads).
    func roundTrip<P: Payload>(_ p: P, size: Int, needed: Int? = nil) {
        let b = p.encode()
        #expect(b.count == size, "\(P.self) encodes to \(b.count) bytes")
        #expect(P(decoding: b) == p)
        #expect(P(decoding: Array(b.prefix(needed ?? size))) == p)
        #expect(P(decoding: Array(b.prefix((needed ?? size) - 1))) == nil, "\(P.self) decoded from a short payload")
    }

    @Test func payloadsRoundTripAtTheirSpecifiedSizes() {
        roundTrip(U64Payload(0x1234_5678_9abc), size: 8)
        roundTrip(VringState(index: 7, num: 256), size: 8)
        roundTrip(VringAddress(index: 1, flags: 1, desc: 0x1000, used: 0x3000, avail: 0x2000, log: 0x4000), size: 40)
        roundTrip(MemoryTablePayload(regions: [MemoryRegionDescription(guestAddr: 1, size: 2, userAddr: 3, mmapOffset: 4)]), size: 8 + 32)
        roundTrip(SingleRegionPayload(region: MemoryRegionDescription(guestAddr: 1, size: 2, userAddr: 3, mmapOffset: 4)), size: 40)
        roundTrip(VringFile(index: 255, noFd: true), size: 8)
        roundTrip(InflightPayload(mmapSize: 4096, mmapOffset: 0, numQueues: 2, queueSize: 256), size: 24, needed: 20)
        roundTrip(LogBasePayload(mmapSize: 1 << 20, mmapOffset: 4096), size: 16)
        roundTrip(StatusPayload(status: 0x0f), size: 8)
        roundTrip(ConfigPayload(offset: 0, flags: 0, data: [1, 2, 3]), size: 15)
    }

    @Test func vringStateLayoutIsIndexThenNum() {
        #expect(VringState(index: 1, num: 2).encode() == [1, 0, 0, 0, 2, 0, 0, 0])
    }

    @Test func vringAddressLayoutIsDescUsedAvailInThatOrder() {
        let b = VringAddress(index: 0, desc: 0x11, used: 0x22, avail: 0x33).encode()
        #expect(b[8] == 0x11 && b[16] == 0x22 && b[24] == 0x33)
    }

    @Test func kickCallErrPayloadSplitsIndexAndNoFdBit() {
        let f = VringFile(raw: 0x1_0103)
        #expect(f.index == 3 && f.noFd && f.otherBits == 0x1_0000)
        #expect(f.raw == 0x1_0103)
    }

    @Test func memoryTableRefusesMoreThanEightRegionsOrACountThePayloadCannotHold() {
        var w = WireWriter()
        w.u32(9); w.u32(0)
        for _ in 0..<9 { for _ in 0..<4 { w.u64(0) } }
        #expect(MemoryTablePayload(decoding: w.bytes) == nil)
        var v = WireWriter()
        v.u32(2); v.u32(0)
        for _ in 0..<4 { v.u64(0) }
        #expect(MemoryTablePayload(decoding: v.bytes) == nil)
    }

    @Test func configRefusesASizeBeyondItsPayloadOr256() {
        var w = WireWriter()
        w.u32(0); w.u32(300); w.u32(0)
        w.raw([UInt8](repeating: 0, count: 300))
        #expect(ConfigPayload(decoding: w.bytes) == nil)
        var v = WireWriter()
        v.u32(0); v.u32(8); v.u32(0); v.raw([1, 2])
        #expect(ConfigPayload(decoding: v.bytes) == nil)
    }

    @Test func headerEncodesRequestFlagsSize() {
        let h = MessageHeader(request: 11, flags: [.version1, .reply], size: 8)
        #expect(h.encode() == [11, 0, 0, 0, 5, 0, 0, 0, 8, 0, 0, 0])
        #expect(MessageHeader(decoding: h.encode()) == h)
        #expect(h.flags.version == 1)
    }

    @Test func everyRequestHasAShapeAndKickCallErrTakeAnFdUnlessNoFd() {
        for r in VhostUserRequest.allCases { _ = r.payloadShape }
        #expect(VhostUserRequest.setVringErr.fdPolicy == .oneUnlessNoFd)
        #expect(VhostUserRequest.setMemTable.fdPolicy == .onePerRegion)
        #expect(VhostUserRequest.getVringBase.alwaysReplies(protocolFeatures: 0))
        #expect(!VhostUserRequest.setVringNum.alwaysReplies(protocolFeatures: ~0))
    }

    @Test func requestIdsFollowVhostUserRst() {
        #expect(VhostUserRequest.setBackendReqFd.rawValue == 21 && VhostUserRequest.getInflightFd.rawValue == 31)
        #expect(VhostUserRequest.setStatus.rawValue == 39 && VhostUserRequest.getStatus.rawValue == 40)
        #expect(VhostUserRequest.allCases.count == 43)
    }
}

@Suite struct ReplyTests {
    @Test func repliesCarryTheRequestIdAndTheReplyFlag() {
        let req = Message(.setVringNum, flags: [.version1, .needReply], payload: VringState(index: 0, num: 8))
        let ack = Message.ack(req, success: false)
        #expect(ack.header.request == 8 && ack.isReply && ack.decode(U64Payload.self)?.value == 1)
        #expect(req.wantsReply(protocolFeatures: ProtocolFeatureBit.replyAck.mask))
        #expect(!req.wantsReply(protocolFeatures: 0))
        #expect(Message(.getVringBase, payload: VringState(index: 0, num: 0)).wantsReply(protocolFeatures: 0))
    }
}
