import Foundation

/// Which cases the live suites (DPDK testpmd, QEMU with the Linux guest) run. By default the CI
/// matrix: every live suite with the cases that cover its distinct shapes (pair counts at both
/// ends, every guest variant through the passive recorder, one through each newer path), so that
/// the README's test command stays within CI's 20 minutes on a 2-core machine. `CONFORMANCE_LIVE=full`
/// runs every case (about twice as long).
public enum LiveMatrix {
    public static var full: Bool { ProcessInfo.processInfo.environment["CONFORMANCE_LIVE"] == "full" }

    /// `all` under CONFORMANCE_LIVE=full, else the cases `ci` keeps.
    public static func cases<T>(_ all: [T], ci: (T) -> Bool) -> [T] { full ? all : all.filter(ci) }
}
