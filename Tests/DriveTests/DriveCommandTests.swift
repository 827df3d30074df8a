import Checker
import Drive
import Foundation
import HostilePeers
import Testing
import TestSupport
import VirtioProtocol

/// The `drive` subcommand as CI runs it: exit statuses (CheckExit's meanings), JUnit with one
/// testcase per run, and `Specs/scenarios.md` kept equal to the catalogue.
@Suite(.serialized) struct DriveCommandTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func scenariosMdIsGeneratedFromTheCatalogue() throws {
        let file = try String(contentsOfFile: Self.root.path + "/Specs/scenarios.md", encoding: .utf8)
        #expect(file == ScenarioDocs.markdown(), "Specs/scenarios.md is stale: run `conformance drive --catalogue > Specs/scenarios.md`")
    }

    @Test func everyScenarioNamesRequirementsAndHostileOnesSayWhatTheDeviceMayAndMayNotDo() {
        #expect(Set(Catalogue.all.map(\.name)).count == Catalogue.all.count, "scenario names are unique")
        for s in Catalogue.all {
            #expect(!s.allRequirements.isEmpty, "\(s.name) names no requirement")
            #expect(!s.allows.isEmpty && !s.forbids.isEmpty, "\(s.name)")
            // Planted rules are the driver's; excused ones the device's.
            #expect(s.planted.allSatisfy { $0.party == .driver }, "\(s.name)")
            #expect(s.excused.allSatisfy { $0.party == .device }, "\(s.name)")
            if !s.excused.isEmpty { #expect(s.excuse != nil, "\(s.name) excuses rules without saying why") }
        }
    }

    @Test func everyRequirementAScenarioNamesIsInTheRequirementsTable() {
        let known = Set(Requirement.all.map(\.id))
        for s in Catalogue.all {
            let unknown = s.allRequirements.filter { !known.contains($0) }
            #expect(unknown.isEmpty, "\(s.name) names requirements the table does not have: \(unknown)")
        }
        // The table's drive column is computed from the catalogue: a scenario shows up under each
        // requirement it names.
        let md = RequirementTable.markdown(driveScenarios: Catalogue.scenarios(for:))
        #expect(md.contains("`index-wrap`") && md.contains("`desc-loop`"))
    }

    @Test func noBackEndIsAUsageErrorNotAVerdict() throws {
        let r = try ConformanceBinary.run(["drive", "--connect", NSTemporaryDirectory() + "no-such-\(getpid()).sock", "--scenario", "traffic"])
        #expect(r.status == CheckExit.usageOrInput, "\(r.err)")
        #expect(r.err.contains("cannot connect"))
    }

    @Test func unknownScenarioIsAUsageError() throws {
        let r = try ConformanceBinary.run(["drive", "--connect", "/tmp/x.sock", "--scenario", "no-such-scenario"])
        #expect(r.status == CheckExit.usageOrInput)
    }

    @Test func conformantBackEndExitsZeroWithJUnitPerRun() throws {
        let path = NSTemporaryDirectory() + "drive-cmd-\(getpid()).sock"
        let be = try RingBackEnd(path: path)
        defer { be.stop() }
        let r = try ConformanceBinary.run(["drive", "--connect", path, "--scenario", "full-ring", "--format", "junit"])
        #expect(r.status == CheckExit.conformant, "\(r.out)\(r.err)")
        #expect(r.out.components(separatedBy: "<testcase ").count - 1 == 1)
        #expect(!r.out.contains("<failure"))
    }

    @Test func brokenBackEndExitsOneAndJUnitNamesTheRule() throws {
        let path = NSTemporaryDirectory() + "drive-cmd-bad-\(getpid()).sock"
        let be = try RingBackEnd(path: path, faults: [.wrongUsedID])
        defer { be.stop() }
        let r = try ConformanceBinary.run(["drive", "--connect", path, "--scenario", "chain-of-n", "--format", "junit"])
        #expect(r.status == CheckExit.violation, "\(r.out)\(r.err)")
        #expect(r.out.contains("<failure type=\"FAIL\"") && r.out.contains("[VQ-USED-ID]"), "\(r.out)")
    }

    @Test func onlySkippedRunsAreIncomplete() throws {
        let path = NSTemporaryDirectory() + "drive-cmd-skip-\(getpid()).sock"
        let be = try RingBackEnd(path: path)
        be.features &= ~(1 << 28)   // no INDIRECT_DESC: indirect-single cannot run
        defer { be.stop() }
        let r = try ConformanceBinary.run(["drive", "--connect", path, "--scenario", "indirect-single", "--format", "json"])
        #expect(r.status == CheckExit.incomplete, "\(r.out)\(r.err)")
        #expect(r.out.contains("\"verdict\": \"SKIPPED\""))
    }
}
