import Checker
import Drive
import Foundation
import Glibc
@testable import Recorder
import RingLoad
import Testing
import TraceFormat

/// The recorder-rate benchmark's synthetic front-end (`conformance-ringload`, scripts/bench-record.sh)
/// is itself a conforming driver and device: at a rate any recorder follows, the trace of a run
/// through the passive recorder is complete and conformant, and holds every buffer it made.
/// Otherwise the benchmark would measure a broken generator, not the recorder.
@Suite struct RingLoadTests {
    @Test(.timeLimit(.minutes(1)))
    func aSlowLoadIsFollowedCompletelyAndChecksClean() throws {
        let dir = NSTemporaryDirectory() + "ringload-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var o = RecordOptions(listenPath: dir + "/fe.sock", connectPath: dir + "/be.sock", outputPath: dir + "/t.trace")
        o.handleSignals = false
        o.progressInterval = 0
        o.duration = 30
        o.acceptTimeout = 10
        o.queues = 4
        var load = LoadOptions(frontendSocket: o.listenPath, backendSocket: o.connectPath)
        load.pairs = 2
        load.rings = 4
        load.rate = 2_000      // a 256-entry ring laps in 128 ms: a recorder would have to sleep that long to lose it
        load.batch = 8
        load.seconds = 0.4
        // As scripts/bench-record.sh runs them: the generator's back-end listens first, the recorder
        // connects to it and then listens for the generator's front-end.
        let run = LoadThread(load)
        try DPDKPairTests.waitFor(o.connectPath)
        let rec = RecorderThread(o)
        let result = try #require(try run.result(timeout: 20).get(), "the generator did not end")
        let r = try #require(rec.result(timeout: 20), "the recorder did not end")
        #expect(!r.record.incomplete, "\(r.record.ringProblems)")
        #expect(result.buffersPerRing.allSatisfy { $0 > 0 }, "\(result.buffersPerRing)")

        var used = [UInt64](repeating: 0, count: 4)
        let reader = try TraceReader(path: o.outputPath)
        while let (e, _) = try reader.next() {
            if e.kind == .usedEntry, Int(e.vq) < used.count { used[Int(e.vq)] += 1 }
        }
        #expect(used == result.buffersPerRing, "used elements in the trace \(used), buffers made \(result.buffersPerRing)")
        let report = CheckRun.check(path: o.outputPath)
        #expect(report.conformant, "\(report.findings.map { "\($0.rule.rawValue): \($0.message)" }) \(report.notJudged)")
    }
}

/// `LoadRun.run` on its own thread (it blocks until the load is over).
final class LoadThread: @unchecked Sendable {
    private let lock = NSLock()
    private var r: Result<LoadResult?, DriveError> = .success(nil)
    private let done = DispatchSemaphore(value: 0)

    init(_ o: LoadOptions) {
        Thread.detachNewThread { [self] in
            let res = Result<LoadResult?, DriveError> { () throws(DriveError) in try LoadRun.run(o) }
            lock.withLock { r = res }
            done.signal()
        }
    }

    func result(timeout: Double) -> Result<LoadResult?, DriveError> {
        _ = done.wait(timeout: .now() + timeout)
        return lock.withLock { r }
    }
}
