import Foundation
import Testing
import Checker
import TraceFormat
import VirtioProtocol

/// Every bundled trace tells one story: good ones are conformant, each bad one breaks exactly the
/// rule it is named after.
@Suite struct BundledTraceTests {
    @Test("every good trace is conformant, everything in it judged", arguments: TraceCorpus.files("good", suffix: ".trace.txt"))
    func goodTraceIsConformant(_ url: URL) throws {
        let (findings, notJudged) = try TraceCorpus.judgeText(url)
        #expect(findings.isEmpty, "\(url.lastPathComponent): \(findings.map { "\($0.rule.rawValue) @\($0.eventIndex.map(String.init) ?? "end"): \($0.message)" })")
        #expect(notJudged.isEmpty, "\(url.lastPathComponent): \(notJudged)")
    }

    @Test("every incomplete trace breaks no rule and says what it could not judge", arguments: TraceCorpus.files("incomplete", suffix: ".trace.txt"))
    func incompleteTraceIsNeverConformant(_ url: URL) throws {
        let (findings, notJudged) = try TraceCorpus.judgeText(url)
        #expect(findings.isEmpty, "\(url.lastPathComponent): \(findings.map(\.message))")
        #expect(!notJudged.isEmpty, "\(url.lastPathComponent) was judged in full")
    }

    @Test("every bad trace breaks exactly the rule it is named after", arguments: TraceCorpus.files("bad", suffix: ".trace.txt"))
    func badTraceBreaksItsRule(_ url: URL) throws {
        let rule = try #require(TraceCorpus.expectedRule(url), "\(url.lastPathComponent) is not named after a rule ID")
        let findings = try TraceCorpus.checkText(url)
        #expect(!findings.isEmpty, "\(url.lastPathComponent): no finding")
        #expect(Set(findings.map(\.rule)) == [rule], "\(url.lastPathComponent): \(findings.map { "\($0.rule.rawValue) @\($0.eventIndex.map(String.init) ?? "end"): \($0.message)" })")
    }

    @Test("every rule has at least one bad trace and the good corpus is not empty")
    func everyRuleHasABadTrace() {
        let covered = Set(TraceCorpus.files("bad", suffix: ".trace.txt").compactMap(TraceCorpus.expectedRule))
        let missing = RuleID.allCases.filter { !covered.contains($0) }
        #expect(missing.isEmpty, "rules without a failing trace: \(missing.map(\.rawValue))")
        #expect(TraceCorpus.files("good", suffix: ".trace.txt").count >= 10)
    }
}

/// Each rule's passing case, and the good trace that shows it. The event kinds listed must occur in
/// that trace, so the table cannot name a trace that never exercises the rule.
@Suite struct RulePassingTraceTests {
    static let table: [(RuleID, String, [EventKind])] = [
        (.vqSize, "linux-upstream-mq4", [.setVringNum]),
        (.vqInflight, "full-ring-out-of-order", [.availIdx]),
        (.vqAvailRead, "full-ring-out-of-order", [.availRead]),
        (.vqUsedId, "full-ring-out-of-order", [.usedEntry]),
        (.vqUsedIdx, "full-ring-out-of-order", [.usedIdx]),
        (.vqDriverOwnership, "wraparound-size4", [.desc, .availEntry]),
        (.vqDescIndex, "chain-readable-then-writable", [.desc]),
        (.vqChainLoop, "chain-readable-then-writable", [.desc]),
        (.vqChainOrder, "chain-readable-then-writable", [.desc]),
        (.vqIndirectFeature, "indirect", [.indirectDesc]),
        (.vqIndirectNext, "indirect", [.indirectDesc]),
        (.vqIndirectNested, "indirect", [.indirectDesc]),
        (.vqIndirectLen, "indirect", [.indirectDesc]),
        (.vqUsedLen, "indirect", [.usedEntry]),
        (.vqInterruptMissed, "event-idx", [.usedEvent, .interrupt, .serviceEnd]),
        (.vhostSingleConsumer, "vhost-user-2pairs", [.serviceBegin]),
        (.vhostMapping, "seed-rfc2-numtxqs4", [.serviceBegin]),
        (.vhostWorkerLifecycle, "linux-workers-attach-free", [.newWorker, .attachVringWorker, .freeWorker]),
        (.vhostOwnerFirst, "control-plane-refusals", [.setOwner]),
        (.vhostOwnerTwice, "control-plane-refusals", [.setOwner, .resetOwner]),
        (.vhostOwnerCompat, "seed-legacy-set-owner", [.setOwner]),
        (.vhostRingNotReady, "vhost-user-2pairs", [.setVringKick]),
        (.vhostRingStopped, "vhost-user-stop-restart", [.getVringBase, .setVringKick]),
        (.netTxqInactive, "linux-upstream-mq8", [.mqPairsSet]),
        (.netRxqInactive, "linux-upstream-mq8", [.mqPairsAck]),
        (.netMQPairsRange, "linux-upstream-mq8", [.mqPairsSet]),
        (.vqChainLength, "indirect-chain-of-queue-size", [.indirectDesc]),
        (.vqInOrderNext, "indirect-chain-of-queue-size", [.desc, .indirectDesc]),
        (.vqNotifyFlags, "kick-suppressed-or-batched", [.usedFlags, .availFlags]),
        (.vqKickMissed, "kick-suppressed-or-batched", [.kick, .usedFlags]),
        (.vqRingAlign, "vhost-user-session-all-gates", [.setVringAddr]),
        (.vhostMemRingAddr, "vhost-user-session-all-gates", [.memRegion, .setVringAddr]),
        (.vhostMemBufferAddr, "vhost-user-session-all-gates", [.memRegion, .desc]),
        (.vhostVringBaseRange, "vhost-user-handover-and-ring-reset", [.getVringBase]),
        (.vhostVringBaseResume, "vhost-user-handover-and-ring-reset", [.getVringBase, .setVringBase, .ringReset]),
        (.vhostRingBusy, "kernel-detach-then-rebase", [.setBackend, .setVringBase]),
        (.vhostLogBeforeUsed, "dirty-log-before-used", [.setLogBase, .vringLog, .logDirty]),
        (.vhostFeaturesOffered, "vhost-user-session-all-gates", [.getFeatures, .setFeatures, .getProtocolFeatures, .setProtocolFeatures]),
        (.vhostUserVringIndex, "vhost-user-session-all-gates", [.getQueueNum, .setVringNum]),
        (.vhostUserEnableGate, "vhost-user-session-all-gates", [.getFeatures, .setVringEnable]),
        (.vhostUserProtocolGate, "vhost-user-session-all-gates", [.getProtocolFeatures, .getQueueNum, .setStatus, .getStatus, .setBackendReqFd, .resetDevice]),
        (.vhostUserInbandGate, "vhost-user-session-all-gates", [.setProtocolFeatures, .vringKickMsg, .backendVringCall]),
        (.vhostUserDisabledTxDrain, "vhost-user-disabled-tx-drained", [.setVringEnable, .usedIdx]),
        (.netFeatureDeps, "vhost-user-session-all-gates", [.setFeatures]),
        (.netTxFraming, "vhost-user-session-all-gates", [.desc]),
        (.netRxFraming, "rx-mergeable-buffers", [.desc]),
        (.netRxUsedLen, "rx-mergeable-buffers", [.usedEntry, .rxHeader]),
        (.netRxNumBuffers, "rx-mergeable-buffers", [.rxHeader]),
        (.netRxHdrOffload, "vhost-user-session-all-gates", [.rxHeader]),
        (.packedSize, "packed-vhost-user-setup", [.setVringNum, .setVringBase]),
        (.packedDriverOwnership, "packed-out-of-order-size3", [.packedFlags, .packedUsedFlags]),
        (.packedFlagsLast, "packed-out-of-order-size3", [.packedDesc, .packedFlags]),
        (.packedChainHeadLast, "packed-out-of-order-size3", [.packedFlags]),
        (.packedWrapCounter, "packed-size1-laps", [.packedFlags, .packedUsedFlags]),
        (.packedBufferId, "packed-out-of-order-size3", [.packedDesc, .packedFlags]),
        (.packedDeviceOwnership, "packed-out-of-order-size3", [.packedRead, .packedUsed, .packedUsedFlags]),
        (.packedDeviceOrder, "packed-in-order-batch", [.packedRead, .packedUsedFlags]),
        (.packedUsedId, "packed-out-of-order-size3", [.packedUsed, .packedUsedFlags]),
        (.packedIndirectFlags, "packed-indirect", [.packedIndirectDesc]),
        (.packedEventFlags, "packed-event-idx", [.driverEvent, .deviceEvent]),
        (.packedInterruptMissed, "packed-event-idx", [.driverEvent, .interrupt, .serviceEnd]),
        (.packedKickMissed, "packed-event-idx", [.deviceEvent, .packedFlags, .kick]),
    ]

    @Test("every rule has a passing trace that exercises it")
    func everyRuleHasAPassingTrace() throws {
        #expect(Set(Self.table.map(\.0)) == Set(RuleID.allCases))
        for (rule, name, kinds) in Self.table {
            let url = TraceCorpus.root.appendingPathComponent("good/\(name).trace.txt")
            let (h, events) = try TextForm.parse(String(contentsOf: url, encoding: .utf8))
            let present = Set(events.map(\.kind))
            #expect(kinds.allSatisfy(present.contains), "\(rule.rawValue): \(name) lacks \(kinds.filter { !present.contains($0) })")
            #expect(TraceCorpus.check(header: h, events: events).isEmpty, "\(name) must be conformant")
        }
    }
}
