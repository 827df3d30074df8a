import Testing
import Foundation
@testable import Proofs
import Checker
import TraceFormat
import VirtioProtocol

/// Runs one spec and, for a variant, checks its counterexample trace with the checker exactly
/// as `conformance check` does (binary file, CheckRun).
enum Harness {
    static func run(_ name: String) throws -> SpecOutcome {
        guard let spec = Catalogue.all.first(where: { $0.name == name }) else {
            throw Z3Error("no spec named \(name)")
        }
        return try Prover().run(spec)
    }

    /// Rules the checker reports on a witness trace, written to a temporary file.
    static func check(_ w: WitnessTrace, name: String) throws -> [RuleID] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("proofs-tests-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name.replacingOccurrences(of: "/", with: "--") + ".trace").path
        let writer = try TraceWriter(path: path, header: w.header)
        for e in w.events { writer.write(e) }
        writer.close()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let report = CheckRun.check(path: path)
        if let e = report.error { throw e }
        return report.findings.map(\.rule)
    }

    static func expectProven(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let o = try run(name)
        #expect(o.status == .proven, "\(name): \(o.status) \(o.counterexample ?? "") \(o.goals.filter { $0.answer != .unsat }.map { "\($0.goal)=\($0.answer)" })", sourceLocation: sourceLocation)
        #expect(o.goals.allSatisfy { $0.answer == .unsat }, sourceLocation: sourceLocation)
        if let c = o.crossCheck { #expect(c.ok, "\(c.detail)", sourceLocation: sourceLocation) }
        // Every goal's premises have a model: nothing is proven vacuously.
        #expect(o.vacuous.isEmpty, "\(name): vacuous goals \(o.vacuous)", sourceLocation: sourceLocation)
    }

    /// The variant is refuted, its counterexample reads in words, and the checker reports
    /// exactly `rule` on its trace (nil: the trace is conformant).
    static func expectRefuted(_ name: String, rule: RuleID?, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let o = try run(name)
        #expect(o.status == .refuted, "\(name): \(o.status)", sourceLocation: sourceLocation)
        #expect(!(o.counterexample ?? "").isEmpty, sourceLocation: sourceLocation)
        guard let w = o.witness else {
            Issue.record("\(name): no counterexample trace (model \(o.model?.description ?? "-"))", sourceLocation: sourceLocation)
            return
        }
        #expect(w.expectedRule == rule, sourceLocation: sourceLocation)
        let found = try check(w, name: name)
        if let rule {
            #expect(Set(found) == [rule], "\(name): checker reported \(found), expected \(rule) (\(o.counterexample ?? ""))", sourceLocation: sourceLocation)
        } else {
            #expect(found.isEmpty, "\(name): checker reported \(found) on a trace that must be conformant", sourceLocation: sourceLocation)
        }
    }
}

// MARK: properties: each proven (every goal unsat)

extension Z3Tests { @Suite struct PropertyTests {
    @Test func ringOwnershipIsProven() throws { try Harness.expectProven("ring-ownership") }
    @Test func needEventIsProven() throws { try Harness.expectProven("need-event") }
    @Test func packedOwnershipIsProven() throws { try Harness.expectProven("packed-ownership") }
    @Test func packedNeedEventIsProven() throws { try Harness.expectProven("packed-need-event") }
    @Test func mappingTotalIsProven() throws { try Harness.expectProven("mapping-total") }
    @Test func mappingRangeIsProven() throws { try Harness.expectProven("mapping-range") }
    @Test func mappingBalanceIsProven() throws { try Harness.expectProven("mapping-balance") }
    @Test func mappingSeedTableIsProven() throws { try Harness.expectProven("mapping-seed-table") }
    @Test func mappingSingleConsumerIsProven() throws { try Harness.expectProven("mapping-single-consumer") }
    /// Z3 over the unbounded matrix, and the Swift enumeration agreeing (crossCheck).
    @Test func setOwnerCompatIsProven() throws { try Harness.expectProven("set-owner-compat") }
}
}

// MARK: broken variants: each refuted, and its trace flagged with the matching rule

extension Z3Tests { @Suite struct VariantTests {
    @Test func ringOwnershipPublishUnboundedIsRefutedAsVQInflight() throws {
        try Harness.expectRefuted("ring-ownership/publish-unbounded", rule: .vqInflight)
    }
    @Test func ringOwnershipUnsignedInflightIsRefutedAsVQInflight() throws {
        try Harness.expectRefuted("ring-ownership/unsigned-inflight", rule: .vqInflight)
    }
    @Test func ringOwnershipConsumePastAvailIsRefutedAsVQAvailRead() throws {
        try Harness.expectRefuted("ring-ownership/consume-past-avail", rule: .vqAvailRead)
    }
    @Test func ringOwnershipCompleteUnreadIsRefutedAsVQUsedIdx() throws {
        try Harness.expectRefuted("ring-ownership/complete-unread", rule: .vqUsedIdx)
    }
    @Test func ringOwnershipSizeNotPowerOfTwoIsRefutedAsVQSize() throws {
        try Harness.expectRefuted("ring-ownership/size-not-power-of-two", rule: .vqSize)
    }
    @Test func needEventOffByOneIsRefutedAsVQInterruptMissed() throws {
        try Harness.expectRefuted("need-event/off-by-one", rule: .vqInterruptMissed)
    }
    @Test func needEventUnsignedWindowIsRefutedAsVQInterruptMissed() throws {
        try Harness.expectRefuted("need-event/unsigned-window", rule: .vqInterruptMissed)
    }
    @Test func packedOwnershipNoWrapFlipIsRefutedAsPackedWrapCounter() throws {
        try Harness.expectRefuted("packed-ownership/no-wrap-flip", rule: .packedWrapCounter)
    }
    @Test func packedOwnershipUsedAgainstDriverCounterIsRefutedAsPackedWrapCounter() throws {
        try Harness.expectRefuted("packed-ownership/used-against-driver-counter", rule: .packedWrapCounter)
    }
    @Test func packedOwnershipPublishUnboundedIsRefutedAsPackedDriverOwnership() throws {
        try Harness.expectRefuted("packed-ownership/publish-unbounded", rule: .packedDriverOwnership)
    }
    @Test func packedOwnershipUseUnavailableIsRefutedAsPackedDeviceOwnership() throws {
        try Harness.expectRefuted("packed-ownership/use-unavailable", rule: .packedDeviceOwnership)
    }
    @Test func packedOwnershipSizeUnboundedIsRefutedAsPackedSize() throws {
        try Harness.expectRefuted("packed-ownership/size-unbounded", rule: .packedSize)
    }
    @Test func packedNeedEventNoWrapAdjustIsRefutedAsPackedInterruptMissed() throws {
        try Harness.expectRefuted("packed-need-event/no-wrap-adjust", rule: .packedInterruptMissed)
    }
    /// Zero workers leave a kick unserved, which no trace event can show; the checker holds the
    /// legacy call to one worker, as the property does, and accepts worker 0.
    @Test func mappingTotalLegacyZeroWorkersIsRefutedAndCheckerKeepsOneWorker() throws {
        try Harness.expectRefuted("mapping-total/legacy-zero-workers", rule: nil)
    }
    @Test func mappingTotalOneDeviceForAllPairsIsRefutedAsVhostMapping() throws {
        try Harness.expectRefuted("mapping-total/one-device-for-all-pairs", rule: .vhostMapping)
    }
    @Test func mappingRangeModWPlus1IsRefutedAsVhostMapping() throws {
        try Harness.expectRefuted("mapping-range/mod-w-plus-1", rule: .vhostMapping)
    }
    @Test func mappingBalanceClampToLastIsRefutedAsVhostMapping() throws {
        try Harness.expectRefuted("mapping-balance/clamp-to-last", rule: .vhostMapping)
    }
    @Test func mappingSeedTableTxWithoutRxOffsetIsRefutedAsVhostMapping() throws {
        try Harness.expectRefuted("mapping-seed-table/tx-without-rx-offset", rule: .vhostMapping)
    }
    @Test func mappingSingleConsumerFreeAttachedIsRefutedAsVhostWorkerLifecycle() throws {
        try Harness.expectRefuted("mapping-single-consumer/free-attached", rule: .vhostWorkerLifecycle)
    }
    @Test func mappingSingleConsumerAttachWithoutFlushIsRefutedAsVhostSingleConsumer() throws {
        try Harness.expectRefuted("mapping-single-consumer/attach-without-flush", rule: .vhostSingleConsumer)
    }
    @Test func setOwnerCompatUncappedIsRefutedAsVhostOwnerCompat() throws {
        try Harness.expectRefuted("set-owner-compat/uncapped", rule: .vhostOwnerCompat)
    }
    @Test func setOwnerCompatOldKernelTwoWorkersIsRefutedAsVhostOwnerCompat() throws {
        try Harness.expectRefuted("set-owner-compat/old-kernel-two-workers", rule: .vhostOwnerCompat)
    }
}
}

// MARK: the catalogue itself

extension Z3Tests { @Suite struct CatalogueTests {
    /// Every spec has its own test above: adding a spec without one fails here.
    static let tested: Set<String> = [
        "ring-ownership", "need-event", "packed-ownership", "packed-need-event", "mapping-total", "mapping-range", "mapping-balance", "mapping-seed-table",
        "mapping-single-consumer", "set-owner-compat",
        "ring-ownership/publish-unbounded", "ring-ownership/unsigned-inflight", "ring-ownership/consume-past-avail",
        "ring-ownership/complete-unread", "ring-ownership/size-not-power-of-two", "need-event/off-by-one",
        "need-event/unsigned-window", "mapping-total/legacy-zero-workers", "mapping-total/one-device-for-all-pairs", "mapping-range/mod-w-plus-1",
        "mapping-balance/clamp-to-last", "mapping-seed-table/tx-without-rx-offset",
        "mapping-single-consumer/free-attached", "mapping-single-consumer/attach-without-flush",
        "set-owner-compat/old-kernel-two-workers", "set-owner-compat/uncapped",
        "packed-ownership/no-wrap-flip", "packed-ownership/used-against-driver-counter", "packed-ownership/publish-unbounded",
        "packed-ownership/use-unavailable", "packed-ownership/size-unbounded", "packed-need-event/no-wrap-adjust",
    ]

    @Test func everySpecHasATest() {
        #expect(Set(Catalogue.all.map(\.name)) == Self.tested)
    }

    @Test func everyPropertyHasABrokenVariant() {
        for p in Catalogue.properties {
            #expect(Catalogue.variants.contains { $0.property == p.name }, "\(p.name) has no broken variant")
        }
    }

    /// `Rule.proof` names the property behind each rule; every name must exist here.
    @Test func ruleCatalogueNamesExistingProperties() {
        let names = Set(Catalogue.properties.map(\.name))
        for rule in Rule.all where !rule.proof.hasPrefix("none") {
            let head = rule.proof.components(separatedBy: " (").first ?? rule.proof
            for n in head.components(separatedBy: ", ") {
                #expect(names.contains(n), "\(rule.id.rawValue) cites proof '\(n)', which is not a property")
            }
        }
    }

    @Test func onlySelectsAPropertyWithItsVariantsOrOneVariant() {
        #expect(Catalogue.select("ring-ownership").map(\.name).first == "ring-ownership")
        #expect(Catalogue.select("ring-ownership").count == 1 + RingOwnership.variants.count)
        #expect(Catalogue.select("need-event/off-by-one").map(\.name) == ["need-event/off-by-one"])
        #expect(Catalogue.select("no-such-property").isEmpty)
    }
}
}
