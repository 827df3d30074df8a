/// The work one poll of a ring may do, counted in descriptor reads, with the capture's stop
/// condition checked as it goes: a hostile driver can make a poll cost at most this much, however
/// its chains loop or its indirect tables grow.
struct WorkBudget {
    enum Exceeded: Error { case bound, stopped }

    private(set) var remaining: Int
    private var untilCheck = WorkBudget.checkEvery
    let stop: () -> Bool
    static let checkEvery = 1024

    init(_ units: Int, stop: @escaping () -> Bool) { remaining = units; self.stop = stop }

    mutating func spend() throws(Exceeded) {
        remaining -= 1
        if remaining < 0 { throw .bound }
        untilCheck -= 1
        if untilCheck == 0 {
            untilCheck = WorkBudget.checkEvery
            if stop() { throw .stopped }
        }
    }
}
