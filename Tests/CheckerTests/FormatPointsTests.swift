import Foundation
import Testing
import Checker
import TraceFormat
import VirtioProtocol

/// The points of the format document an outsider had to guess at (issue 10), each pinned down by
/// what the code does, so the document (`Specs/trace-format.md` "Questions a trace writer asks")
/// and the checker cannot drift apart.
@Suite struct FormatPointsTests {
    static func trace(_ header: String, _ events: String) throws -> (TraceHeader, [TraceEvent]) {
        try TextForm.parse("conformance-trace 1\n" + header + "\nevents\n" + events)
    }
    static func rules(_ header: String, _ events: String) throws -> Set<RuleID> {
        let (h, e) = try trace(header, events)
        return Set(TraceCorpus.check(header: h, events: e).map(\.rule))
    }
    static let upstream = "profile linux-upstream\nlayout mq\nflags preset\nfeatures version_1\nqueues 8 8 8"

    @Test("the header workers field is ignored by profiles whose SET_OWNER takes no argument")
    func workersFieldIgnoredWithoutArgument() throws {
        // Worker 1 serving vq 0 breaks VHOST-MAPPING under linux-upstream whatever the field says.
        let events = "desc vq=1 idx=0 addr=0x1000 len=64\navail_entry vq=1 pos=0 head=0\navail_idx vq=1 idx=1\nkick vq=1\nservice_begin vq=1 worker=1\n"
        for p in ["linux-upstream", "linux-workers", "vhost-user"] {
            var seen: [Set<RuleID>] = []
            for w in [0, 1, 7] {
                seen.append(try Self.rules("profile \(p)\nlayout mq\nflags preset\nfeatures version_1\nworkers \(w)\nqueues 8 8", events))
            }
            #expect(seen.allSatisfy { $0 == seen[0] }, "\(p): \(seen)")
        }
    }

    @Test("control events never carry the sampled flag: the reader refuses it")
    func controlEventsAreNeverSampled() throws {
        #expect(throws: TraceError.self) { try Self.trace(Self.upstream, "set_owner vq=0 result=0 sampled\n") }
        let (h, _) = try Self.trace(Self.upstream, "")
        var bytes = TraceBytes.encode(header: h, events: [TraceEvent.control(.setOwner, vq: 0)])
        bytes[h.encodedSize + 1] = TraceEvent.Flags.sampled.rawValue
        do {
            _ = try TraceBytes.decode(bytes)
            Issue.record("a sampled control event was accepted")
        } catch let e as TraceError {
            #expect(e.offset == UInt64(h.encodedSize + 1))
        }
        // Ring events may carry it.
        _ = try Self.trace(Self.upstream, "avail_idx vq=1 idx=0 sampled\n")
    }

    @Test("linux-upstream and vhost-user traces use the mq layout; the seed layout is refused")
    func meaninglessProfileLayoutIsRefused() throws {
        for p in ["linux-upstream", "vhost-user"] {
            #expect(throws: TraceError.self) { try Self.trace("profile \(p)\nlayout seed\nqueues 8 8", "") }
            let h = TraceHeader(profile: Profile(name: p)!, layout: .seed, queueSizes: [8, 8])
            do {
                _ = try TraceBytes.decode(h.encode())
                Issue.record("\(p) with layout seed was accepted")
            } catch let e as TraceError {
                #expect(e.offset == 13)
            }
        }
        for p in ["seed-rfc1", "seed-rfc2", "linux-workers"] { _ = try Self.trace("profile \(p)\nlayout seed\nqueues 8 8", "") }
        // --profile cannot force the combination either.
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("seed-layout-\(getpid()).trace")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(TraceHeader(profile: .seedRFC2, layout: .seed, queueSizes: [8, 8]).encode()).write(to: url)
        let r = CheckRun.check(path: url.path, profile: .linuxUpstream)
        #expect(r.error?.offset == 13)
    }

    @Test("on linux-upstream a device-wide message is legal once any pair's device has an owner")
    func deviceWideMessageOnUpstream() throws {
        let h = "profile linux-upstream\nlayout mq\nflags none\nfeatures 0\nqueues 0 0 0 0"
        #expect(try Self.rules(h, "set_owner vq=2 result=0\nset_mem_table regions=1 result=0\n").isEmpty)
        #expect(try Self.rules(h, "set_mem_table regions=1 result=0\n") == [.vhostOwnerFirst])
    }

    @Test("a head exposed with no desc event is an all-zero descriptor: a 0-byte device-readable buffer")
    func undescribedDescriptorIsZero() throws {
        // On the control queue (vq 2), so that only the used length speaks: 1 byte written into 0 writable.
        let events = "avail_entry vq=2 pos=0 head=3\navail_idx vq=2 idx=1\nkick vq=2\nused_entry vq=2 pos=0 id=3 len=1\nused_idx vq=2 idx=1\ninterrupt vq=2\n"
        #expect(try Self.rules(Self.upstream, events) == [.vqUsedLen])
        // On TX it is also shorter than the virtio-net header.
        #expect(try Self.rules(Self.upstream, "avail_entry vq=1 pos=0 head=3\navail_idx vq=1 idx=1\nkick vq=1\n") == [.netTxFraming])
    }

    @Test("a stale next without NEXT and flag bits the split ring does not define are accepted and ignored")
    func staleNextAndUnknownFlagBits() throws {
        let events = "desc vq=1 idx=0 addr=0x1000 len=64 flags=0x80 next=5\navail_entry vq=1 pos=0 head=0\navail_idx vq=1 idx=1\nkick vq=1\n"
        #expect(try Self.rules(Self.upstream, events).isEmpty)
    }

    @Test("an indirect table's entries may come before or after their parent, as long as before the exposure")
    func indirectOrderRelativeToParent() throws {
        let h = "profile linux-upstream\nlayout mq\nflags preset\nfeatures indirect_desc|version_1\nqueues 8 8"
        let entries = "indirect_desc vq=1 parent=0 idx=0 addr=0x9000 len=12 flags=next next=1\nindirect_desc vq=1 parent=0 idx=1 addr=0x9100 len=100\n"
        let parent = "desc vq=1 idx=0 addr=0x8000 len=32 flags=indirect\n"
        let expose = "avail_entry vq=1 pos=0 head=0\navail_idx vq=1 idx=1\nkick vq=1\nused_entry vq=1 pos=0 id=0 len=1\nused_idx vq=1 idx=1\ninterrupt vq=1\n"
        // len=1 into a read-only table is a VQ-USED-LEN finding: proof that the table was walked.
        #expect(try Self.rules(h, entries + parent + expose) == [.vqUsedLen])
        #expect(try Self.rules(h, parent + entries + expose) == [.vqUsedLen])
    }

    @Test("VQ-AVAIL-READ is judged per vq, from the first avail_read on that vq")
    func availReadJudgedPerVq() throws {
        let h = "profile linux-upstream\nlayout mq\nflags preset\nfeatures version_1\nqueues 8 8"
        let tx = "desc vq=1 idx=0 addr=0x1000 len=64\navail_entry vq=1 pos=0 head=0\navail_idx vq=1 idx=1\nkick vq=1\n"
        let rx = "desc vq=0 idx=0 addr=0x2000 len=64 flags=write\navail_entry vq=0 pos=0 head=0\navail_idx vq=0 idx=1\nkick vq=0\n"
        // vq 0 shows its reads and reads past avail; vq 1 shows none and completes without them.
        let events = tx + rx + "avail_read vq=0 pos=1 head=0\nused_entry vq=1 pos=0 id=0 len=0\nused_idx vq=1 idx=1\ninterrupt vq=1\n"
        #expect(try Self.rules(h, events) == [.vqAvailRead])
    }

    @Test("an exact trace that ends inside an open pass owes no interrupt yet; one that ends after the pass does")
    func interruptAtTheEndOfAnOpenPass() throws {
        let pass = "desc vq=1 idx=0 addr=0x1000 len=64\navail_entry vq=1 pos=0 head=0\navail_idx vq=1 idx=1\nkick vq=1\n"
            + "service_begin vq=1 worker=0\nused_entry vq=1 worker=0 pos=0 id=0 len=0\nused_idx vq=1 worker=0 idx=1\n"
        let h = "profile linux-upstream\nlayout mq\nflags preset\nfeatures version_1\nqueues 8 8"
        #expect(try Self.rules(h, pass).isEmpty)
        #expect(try Self.rules(h, pass + "service_end vq=1 worker=0\n") == [.vqInterruptMissed])
        // vhost-user: no pass deadline, the trace end is the deadline.
        let vu = "profile vhost-user\nlayout mq\nflags preset\nfeatures version_1\nqueues 8 8"
        #expect(try Self.rules(vu, pass + "service_end vq=1 worker=0\n") == [.vqInterruptMissed])
        #expect(try Self.rules(vu, pass + "service_end vq=1 worker=0\ninterrupt vq=1 worker=5\n").isEmpty)
    }

    @Test("without preset, a ring is ready once size, addresses and kick (fd, no fd, or a kernel backend) are set; no call fd is needed")
    func whatMakesARingReady() throws {
        let h = "profile vhost-user\nlayout mq\nflags none\nfeatures 0\nqueues 0 0"
        let setup = "set_owner result=0\nset_vring_num vq=1 num=8 result=0\nset_vring_addr vq=1 desc=0x1000 avail=0x2000 used=0x3000 result=0\n"
        let work = "desc vq=1 idx=0 addr=0x1000 len=64\navail_entry vq=1 pos=0 head=0\navail_idx vq=1 idx=1\nkick vq=1\nused_entry vq=1 pos=0 id=0 len=0\nused_idx vq=1 idx=1\n"
        #expect(try Self.rules(h, setup + work) == [.vhostRingNotReady])
        #expect(try Self.rules(h, setup + "set_vring_kick vq=1 fd=0x100 result=0\n" + work).isEmpty)
        let k = "profile linux-upstream\nlayout mq\nflags none\nfeatures 0\nqueues 0 0"
        #expect(try Self.rules(k, "set_owner vq=0 result=0\nset_vring_num vq=1 num=8 result=0\nset_vring_addr vq=1 desc=0x1000 avail=0x2000 used=0x3000 result=0\nset_backend vq=1 fd=3 result=0\n" + work).isEmpty)
    }
}
