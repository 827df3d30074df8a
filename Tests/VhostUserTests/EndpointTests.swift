import CSupport
import Foundation
import Glibc
import Testing
@testable import VhostUser

/// Accepts and connects are bounded; a back-end that comes back late is reached by retrying; an
/// eventfd whose counter is full is reported, never waited on.
@Suite struct EndpointTests {
    static func tempPath(_ name: String) -> String { NSTemporaryDirectory() + "vu-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(name)" }

    @Test func acceptEndsAtItsBound() throws {
        let l = try Listener(path: Self.tempPath("l.sock"))
        let t0 = IOBound.now
        #expect(throws: VhostUserError.self) { try l.accept(within: .within(0.15)) }
        #expect((IOBound.now - t0) / 1_000_000 < 600)
    }

    @Test func connectRetriesUntilTheSocketAppears() throws {
        let path = Self.tempPath("late.sock")
        let holder = ListenerBox()
        Thread.detachNewThread {
            usleep(300_000)
            holder.set(try? Listener(path: path))
        }
        let c = try Connector.connect(path, within: .within(3), interval: 0.05)
        c.close()
        #expect(holder.get() != nil)
    }

    @Test func connectToNothingEndsAtItsBound() {
        let t0 = IOBound.now
        #expect(throws: VhostUserError.self) { try Connector.connect(Self.tempPath("none.sock"), within: .within(0.3)) }
        let ms = (IOBound.now - t0) / 1_000_000
        #expect(ms >= 250 && ms < 1000)
    }

    @Test func aFullEventfdCounterIsReportedNotWaitedOn() throws {
        // A blocking eventfd (as a peer may hand over): the write must still not block.
        let fd = cs_eventfd_blocking()
        defer { close(fd) }
        #expect(EventNotifier.isEventFd(fd))
        #expect(EventNotifier.signal(fd, count: 0xffff_ffff_ffff_fffe) == .signalled)
        #expect(EventNotifier.signal(fd, count: 1) == .full)
        #expect(EventNotifier.take(fd) == UInt64(Int64.max), "the count saturates at Int64.max in the report")
        #expect(EventNotifier.take(fd) == 0, "an empty blocking eventfd reads as 0 at once")
        #expect(fcntl(fd, F_GETFL) & O_NONBLOCK == 0, "the peer's blocking mode is restored")
        var p: [Int32] = [0, 0]
        #expect(pipe(&p) == 0)
        defer { close(p[0]); close(p[1]) }
        #expect(!EventNotifier.isEventFd(p[0]))
    }
}

final class ListenerBox: @unchecked Sendable {
    private let lock = NSLock()
    private var l: Listener?
    func set(_ v: Listener?) { lock.withLock { l = v } }
    func get() -> Listener? { lock.withLock { l } }
}
