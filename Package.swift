// swift-tools-version:6.0
import PackageDescription

// Layers (each imports only those below it):
//   conformance (CLI)
//   LiveCheck (a trace sink that tees into the checker: record --check, check --live)
//   Checker | Proofs | Recorder | Serve | Drive (active front-end) | TraceTools (stats, mutate)
//   VhostUser (framing, typed payloads, fds, memory table, guarded reads)
//   PolledSemantics (judging polled observations, over the exact ring model)
//   VirtqueueModel | VhostModel | TraceFormat
//   VirtioProtocol (constants, layouts, rule catalogue)
// The layers the checker's event loop runs through: their code may be inlined into the modules
// that call them (the checker calls the ring model once or more per event; without this, each
// call across a module boundary copied the model's arguments and could not be specialised).
// Release only: in debug builds it gains nothing, and a dependent module that inlined a changed
// body was not always rebuilt (stale layouts seen as nonsense values in tests).
let modelSettings: [SwiftSetting] = [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]

let package = Package(
    name: "conformance",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "conformance", targets: ["conformance"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(name: "VirtioProtocol", swiftSettings: modelSettings),
        .target(name: "VirtqueueModel", dependencies: ["VirtioProtocol"], swiftSettings: modelSettings),
        .target(name: "VhostModel", dependencies: ["VirtioProtocol"], swiftSettings: modelSettings),
        .target(name: "TraceFormat", dependencies: ["VirtioProtocol"], swiftSettings: modelSettings),
        .target(name: "PolledSemantics", dependencies: ["VirtioProtocol", "VirtqueueModel", "TraceFormat"], swiftSettings: modelSettings),
        .target(name: "Checker", dependencies: ["VirtioProtocol", "VirtqueueModel", "PolledSemantics", "VhostModel", "TraceFormat"]),
        .target(name: "Simulator", dependencies: ["VirtioProtocol", "VirtqueueModel", "VhostModel", "TraceFormat"]),
        .systemLibrary(name: "CZ3", pkgConfig: "z3", providers: [.apt(["libz3-dev"])]),
        .target(name: "Proofs", dependencies: ["CZ3", "VirtioProtocol", "VirtqueueModel", "VhostModel", "TraceFormat"]),
        .target(name: "CSupport"),
        .target(name: "VhostUser", dependencies: ["CSupport", "VirtioProtocol"]),
        .target(name: "Recorder", dependencies: ["CSupport", "VirtioProtocol", "TraceFormat", "VhostUser", "PolledSemantics"]),
        .target(name: "LiveCheck", dependencies: ["Recorder", "Checker", "TraceFormat"]),
        // The reference vhost-user net back-end: control plane, worker threads, exact traces.
        .target(name: "Serve", dependencies: ["CSupport", "VirtioProtocol", "VhostModel", "TraceFormat", "VhostUser", "Checker"]),
        // The active conformance suite: a vhost-user front-end that drives a back-end through
        // scenarios and judges each run's exact trace.
        .target(name: "Drive", dependencies: ["CSupport", "VirtioProtocol", "TraceFormat", "VhostUser", "Checker"]),
        // The recorder-rate benchmark's synthetic front-end (scripts/bench-record.sh): rings in a
        // memfd filled at a set rate through `conformance record`, the back-end answering only the
        // control plane.
        .target(name: "RingLoad", dependencies: ["CSupport", "VirtioProtocol", "VhostUser", "Drive"]),
        .executableTarget(name: "conformance-ringload", dependencies: [
            "RingLoad", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "TraceTools", dependencies: ["VirtioProtocol", "VirtqueueModel", "TraceFormat", "PolledSemantics"]),
        // The fuzz harness (scripts/fuzz.sh builds it with libFuzzer into .build-fuzz; the normal
        // build makes a replayer for the saved crashes). Above every layer it drives.
        .target(name: "FuzzTargets", dependencies: ["VirtioProtocol", "TraceFormat", "Checker", "TraceTools"]),
        .target(name: "CFuzzerDriver"),
        .executableTarget(name: "conformance-fuzz", dependencies: ["FuzzTargets", "TraceFormat", "CFuzzerDriver"]),
        .executableTarget(
            name: "conformance",
            dependencies: [
                "VirtioProtocol", "VirtqueueModel", "VhostModel", "TraceFormat", "Checker", "Simulator", "Proofs", "Recorder", "LiveCheck", "TraceTools", "Serve", "Drive",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "TestSupport", path: "Tests/Support"),
        // Test peers that misbehave on purpose (guest memory, rings, raw sockets): shared by the
        // recorder's tests and the hostile-peer suite, and meant for `serve`'s tests as well.
        .target(name: "HostilePeers", dependencies: ["VhostUser", "CSupport", "VirtioProtocol", "TraceFormat", "Checker", "Drive"], path: "Tests/HostilePeers"),
        .testTarget(name: "VirtqueueModelTests", dependencies: ["VirtqueueModel", "Simulator"]),
        .testTarget(name: "PolledSemanticsTests", dependencies: ["PolledSemantics", "VirtqueueModel", "VirtioProtocol"],
                    // The exhaustive interleaving enumeration runs in debug builds too: optimize it.
                    swiftSettings: [.unsafeFlags(["-O"])]),
        .testTarget(name: "VhostModelTests", dependencies: ["VhostModel"]),
        .testTarget(name: "TraceFormatTests", dependencies: ["TraceFormat", "Simulator"]),
        .testTarget(name: "CheckerTests", dependencies: ["Checker", "TraceFormat", "TraceTools", "VirtqueueModel", "Simulator", "TestSupport", "Drive"]),
        .testTarget(name: "ProofsTests", dependencies: ["Proofs", "Checker", "TraceFormat", "TestSupport"]),
        .testTarget(name: "VhostUserTests", dependencies: ["VhostUser", "CSupport", "VirtioProtocol"]),
        .testTarget(name: "HostilePeerTests", dependencies: ["HostilePeers", "TestSupport", "Checker", "TraceFormat"]),
        .testTarget(name: "ServeTests", dependencies: ["Serve", "HostilePeers", "Checker", "TraceFormat", "TraceTools", "VhostUser", "CSupport", "VirtioProtocol", "TestSupport"]),
        .testTarget(name: "HostileTraceTests", dependencies: ["Checker", "TraceFormat", "TraceTools", "VirtqueueModel", "VirtioProtocol"]),
        .testTarget(name: "RecorderTests", dependencies: ["Recorder", "LiveCheck", "Checker", "TraceFormat", "TraceTools", "VhostUser", "CSupport", "HostilePeers", "TestSupport", "RingLoad", "Drive"]),
        // drive against a broken test back-end (fault switches) and against DPDK testpmd.
        .testTarget(name: "DriveTests", dependencies: ["Drive", "HostilePeers", "TestSupport", "Checker", "TraceFormat", "VhostUser", "CSupport", "VirtioProtocol"]),
        // Real QEMU + Linux guest captures through the recorder to testpmd (scripts/guest/).
        .testTarget(name: "LinuxGuestTests", dependencies: ["CSupport", "TraceFormat", "TraceTools", "TestSupport"]),
        .testTarget(name: "TraceToolsTests", dependencies: ["TraceTools", "Checker", "TraceFormat", "Simulator", "VirtioProtocol"]),
    ],
    swiftLanguageModes: [.v6]
)
