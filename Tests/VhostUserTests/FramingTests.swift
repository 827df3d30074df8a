import CSupport
import Glibc
import Testing
import VirtioProtocol
@testable import VhostUser

/// Framing: whole messages with their fds, and no wait that outlives its bound.
@Suite struct FramingTests {
    /// A connected pair: `a` is a Channel, `b` a raw socket the test writes and reads directly.
    static func pair() -> (Channel, Int32) {
        var fds: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        return (Channel(adopting: fds[0]), fds[1])
    }

    static func rawSend(_ s: Int32, _ bytes: [UInt8], fds: [Int32] = []) {
        let n = bytes.withUnsafeBytes { b in fds.withUnsafeBufferPointer { cs_send_nb(s, b.baseAddress, b.count, $0.baseAddress, Int32($0.count)) } }
        precondition(n == bytes.count)
    }

    static func eventfd() -> Int32 { cs_eventfd() }
    static func memfd() -> Int32 { cs_memfd("t", 4096) }

    /// How many open fds of this process refer to the same file as `fd` did (memfds have
    /// inodes of their own, so this counts copies of one fd, whatever other tests open meanwhile).
    static func copies(of ident: (UInt64, UInt64)) -> Int {
        var n = 0
        for f in 0..<4096 {
            var st = stat()
            if fstat(Int32(f), &st) == 0 && UInt64(st.st_dev) == ident.0 && UInt64(st.st_ino) == ident.1 { n += 1 }
        }
        return n
    }
    static func identity(_ fd: Int32) -> (UInt64, UInt64) {
        var st = stat()
        fstat(fd, &st)
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    static func sameFile(_ a: Int32, _ b: Int32) -> Bool {
        var x = stat(), y = stat()
        return fstat(a, &x) == 0 && fstat(b, &y) == 0 && x.st_ino == y.st_ino && x.st_dev == y.st_dev
    }

    @Test func messageRoundTripsWithItsFds() throws {
        let (a, b) = Self.pair()
        let other = Channel(adopting: b)
        let e = Self.eventfd()
        defer { close(e) }
        let m = Message(.setVringCall, payload: VringFile(index: 3), fds: [e])
        try other.send(m, within: .within(1))
        let got = try a.receive(within: .within(1))
        defer { got.closeFds() }
        #expect(got.request == .setVringCall && got.payload == m.payload && got.fds.count == 1)
        #expect(Self.sameFile(got.fds[0], e))
        #expect(got.decode(VringFile.self) == VringFile(index: 3))
    }

    @Test func fdsSentWithThePayloadSegmentAfterTheHeaderAreKept() throws {
        let (a, b) = Self.pair()
        defer { close(b) }
        let e1 = Self.eventfd(), e2 = Self.eventfd()
        defer { close(e1); close(e2) }
        let m = Message(.setMemTable, payload: MemoryTablePayload(regions: [
            MemoryRegionDescription(guestAddr: 0, size: 4096, userAddr: 0x1000),
            MemoryRegionDescription(guestAddr: 0x10000, size: 4096, userAddr: 0x20000)]))
        // Header alone, then the payload in two pieces: one fd with each piece.
        Self.rawSend(b, Array(m.bytes[0..<12]))
        Self.rawSend(b, Array(m.bytes[12..<20]), fds: [e1])
        Self.rawSend(b, Array(m.bytes[20...]), fds: [e2])
        let got = try a.receive(within: .within(1))
        defer { got.closeFds() }
        #expect(got.fds.count == 2 && Self.sameFile(got.fds[0], e1) && Self.sameFile(got.fds[1], e2))
        #expect(got.decode(MemoryTablePayload.self)?.regions.count == 2)
    }

    @Test func truncatedHeaderThenSilenceTimesOutWithinTheBound() {
        let (a, b) = Self.pair()
        defer { close(b) }
        Self.rawSend(b, [1, 0, 0, 0, 1])
        let t0 = IOBound.now
        #expect(throws: VhostUserError.timedOut("peer stalled mid-header (5 of 12 bytes)")) { try a.receive(within: .within(0.2)) }
        let ms = (IOBound.now - t0) / 1_000_000
        #expect(ms >= 190 && ms < 700, "waited \(ms) ms for a 200 ms bound")
    }

    @Test func truncatedPayloadThenCloseIsMalformedAndClosesReceivedFds() {
        let (a, b) = Self.pair()
        let e = Self.memfd()
        let id = Self.identity(e)
        let m = Message(.setFeatures, payload: U64Payload(1))
        Self.rawSend(b, Array(m.bytes[0..<16]), fds: [e])
        close(e)
        close(b)
        #expect(throws: VhostUserError.malformed("request 2: payload truncated (4 of 8 bytes before the connection ended)")) { try a.receive(within: .within(1)) }
        #expect(Self.copies(of: id) == 0, "the received fd was closed")
    }

    @Test func stopConditionEndsAWaitPromptly() {
        let (a, b) = Self.pair()
        defer { close(b) }
        Self.rawSend(b, [1, 0])
        let t0 = IOBound.now
        let stopAt = t0 + 100_000_000
        #expect(throws: VhostUserError.stopped) { try a.receive(within: IOBound(deadline: .max, stop: { IOBound.now > stopAt })) }
        #expect((IOBound.now - t0) / 1_000_000 < 500)
    }

    @Test func oversizedPayloadIsMalformed() {
        let (a, b) = Self.pair()
        defer { close(b) }
        Self.rawSend(b, MessageHeader(request: 2, size: UInt32(Channel.maxPayload + 1)).encode())
        #expect(throws: VhostUserError.malformed("request 2 announces a 4097-byte payload (at most 4096)")) { try a.receive(within: .within(1)) }
    }

    @Test func moreThanEightFdsIsMalformedAndNoneLeak() {
        let (a, b) = Self.pair()
        defer { close(b) }
        let fds = (0..<9).map { _ in Self.memfd() }
        let ids = fds.map(Self.identity)
        Self.rawSend(b, Message(.setOwner).bytes, fds: fds)
        fds.forEach { close($0) }
        #expect(throws: VhostUserError.malformed("a message carries 9 file descriptors (at most 8)")) { try a.receive(within: .within(1)) }
        #expect(ids.allSatisfy { Self.copies(of: $0) == 0 }, "every received fd was closed")
    }

    @Test func cleanCloseAtABoundaryIsClosed() {
        let (a, b) = Self.pair()
        close(b)
        #expect(throws: VhostUserError.closed) { try a.receive(within: .within(1)) }
    }

    @Test func aPeerThatStopsReadingCostsAtMostTheBound() {
        let (a, b) = Self.pair()
        defer { close(b) }
        // Fill the socket buffer: the peer never reads.
        let big = Message(.setConfig, payload: ConfigPayload(offset: 0, data: [UInt8](repeating: 7, count: 256)))
        let t0 = IOBound.now
        var sent = 0
        var failure: VhostUserError?
        while failure == nil {
            do throws(VhostUserError) { try a.send(big, within: .within(0.2)); sent += 1 } catch { failure = error }
        }
        if case .timedOut(let why) = failure! { #expect(why.contains("peer stopped reading")) } else { Issue.record("\(failure!)") }
        let ms = (IOBound.now - t0) / 1_000_000
        #expect(sent > 10 && ms < 1500, "sent \(sent), \(ms) ms")
    }
}
