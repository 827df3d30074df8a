import VirtioProtocol

/// `Specs/scenarios.md`, generated from the catalogue (`conformance drive --catalogue`); a test
/// keeps the checked-in file equal to it.
public enum ScenarioDocs {
    public static func markdown() -> String {
        var s = """
        # `conformance drive` scenarios

        Generated from `Sources/Drive/Catalogue.swift` by `conformance drive --catalogue`; do not edit
        (a test keeps this file equal to the output). \(Catalogue.all.count) scenarios: \
        \(Catalogue.all.filter { $0.kind == .boundary }.count) valid boundaries, \
        \(Catalogue.all.filter { $0.kind == .hostileRing }.count) hostile ring inputs, \
        \(Catalogue.all.filter { $0.kind == .hostileMessage }.count) hostile vhost-user messages.

        ## How a run is judged

        Each run of a scenario writes one exact trace (profile `vhost-user`, layout `mq`) and feeds it
        to the checker as it is written. Every device rule of `Specs/rules.md` is judged on every
        trace; a finding against a device rule is a FAIL of the back-end (unless the scenario excuses
        it, saying why). Driver rules judge `drive` itself: a hostile scenario names the driver rules
        it breaks on purpose, and its trace must show exactly those (anything else, or a missing
        one, is drive's own defect: ERROR, never a verdict on the back-end).

        A trace has two vrings per `--pairs`; messages for vrings beyond them (the hostile index
        scenario's) are sent but not recorded. Guest memory is sealed memfds: region k at guest
        4 GiB x (k + 1), with gaps between regions, so an address in a gap is outside the memory table.

        Beyond the rules, a scenario makes the checks of the table below, which only an active driver
        can make (the device's writes into guest memory, when a ring starts, the RX header).

        ## How device events are placed

        The driver side of the trace is exact: every descriptor, avail entry, avail.idx, flag and
        used_event write, every kick, and every control message is written to guest memory (or the
        socket) and then appended to the trace, in program order. The device side is what the
        driver reads, as a driver reads it: a poll loads used.idx with acquire semantics; when it
        moved, the poll appends one `used_entry` per new position (read after the index, so it is the
        element the device published with it), then one `used_idx`, then one `interrupt` when the
        call eventfd, read just before used.idx, had been signalled (the device signals after it
        publishes, so that interrupt follows a publication at most the one read; read after used.idx,
        a signal for a publication made in between would be placed before that publication). With IN_ORDER a slot that did not change since the previous
        lap is not reported (the device may publish a batch by its last element only). Polls happen
        before every avail.idx publication, around every SET_VRING_ENABLE and GET_VRING_BASE, and
        continuously while the driver waits; so each device event lies after the driver events it
        depends on and before the first driver event that follows the read. A control message is
        recorded when its reply (REPLY_ACK) came, with the result the back-end gave. SET_VRING_ENABLE 0
        and GET_VRING_BASE are recorded after a poll that follows the reply, so completions the
        device made before the change took effect lie before it; SET_VRING_ENABLE 1 is recorded as
        soon as it is acknowledged, so completions the enabled ring makes at once lie after it.
        A stopped ring is still read (a device that goes on publishing after GET_VRING_BASE shows
        in the trace); a notification on it is drained without being recorded.

        ## Verdicts

        | Verdict | Meaning |
        |---|---|
        | PASS | everything the scenario exercised conformed |
        | FAIL | a device rule or a drive check was broken: rule ID, spec reference, trace event |
        | REJECTED | the back-end refused input the spec lets it refuse (answered failure, left a hostile chain unused, closed the connection and served the next one) |
        | WEDGED | no reply or no progress within the bound |
        | CRASHED | the connection closed where the spec gives no reason, or a new connection is not served after hostile input |
        | SKIPPED | the back-end does not offer what the scenario needs |
        | ERROR | drive itself failed; nothing is concluded about the back-end |

        Exit status: 0 every run PASS, REJECTED or SKIPPED (and at least one judged), 1 a run FAIL,
        WEDGED or CRASHED, 2 usage error or ERROR, 3 every run SKIPPED.

        ## Drive checks

        | Check | Requirements | Statement | Spec |
        |---|---|---|---|

        """
        for c in DriveCheck.all {
            s += "| \(c.id) | \(c.requirements.joined(separator: ", ")) | \(c.statement) | \(c.spec) |\n"
        }
        for kind in Scenario.Kind.allCases {
            let list = Catalogue.all.filter { $0.kind == kind }
            guard !list.isEmpty else { continue }
            let title: String
            switch kind {
            case .boundary: title = "Valid boundaries"
            case .hostileRing: title = "Hostile ring inputs"
            case .hostileMessage: title = "Hostile vhost-user messages"
            }
            s += "\n## \(title)\n"
            for sc in list {
                s += "\n### `\(sc.name)`\n\n\(sc.summary)\n\n"
                s += "- Requirements: \(sc.allRequirements.joined(separator: ", "))\n"
                s += "- Device rules aimed at: \(sc.rules.map(\.rawValue).joined(separator: ", "))\n"
                if !sc.checks.isEmpty { s += "- Checks: \(sc.checks.map(\.id).joined(separator: ", "))\n" }
                s += "- The device may: \(sc.allows)\n"
                s += "- The device must not: \(sc.forbids)\n"
                if !sc.planted.isEmpty { s += "- Driver rules broken on purpose: \(sc.planted.map(\.rawValue).joined(separator: ", "))\n" }
                if !sc.mayAlsoBreak.isEmpty { s += "- Driver rules the input may break as well: \(sc.mayAlsoBreak.map(\.rawValue).joined(separator: ", "))\n" }
                if !sc.excused.isEmpty { s += "- Not held against the device: \(sc.excused.map(\.rawValue).joined(separator: ", ")) (\(sc.excuse ?? ""))\n" }
                var needs = sc.needs.map { "+" + Variant.name($0) } + sc.excludes.map { "-" + Variant.name($0) }
                needs += sc.needsProtocol.map { "protocol \($0)" }
                if sc.minPairs > 1 { needs.append("\(sc.minPairs)+ pairs") }
                if !needs.isEmpty { s += "- Needs: \(needs.joined(separator: ", "))\n" }
                if !sc.matrix.isEmpty { s += "- `--all` matrix: \(sc.matrix.map { Variant.name($0) }.joined(separator: ", ")) (\(sc.variants.count) runs)\n" }
            }
        }
        s += "\n## Requirements exercised\n\n| Requirement | Scenarios |\n|---|---|\n"
        for id in Catalogue.requirementIDs {
            s += "| \(id) | \(Catalogue.scenarios(for: id).joined(separator: ", ")) |\n"
        }
        return s
    }
}
