// swift-tools-version:6.0
import PackageDescription

// Layers (each imports only those below it):
//   conformance (CLI)
//   Checker | Proofs | Recorder | TraceTools (stats, mutate)
//   PolledSemantics (judging polled observations, over the exact ring model)
//   VirtqueueModel | VhostModel | TraceFormat
//   VirtioProtocol (constants, layouts, rule catalogue)
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
        .target(name: "VirtioProtocol"),
        .target(name: "VirtqueueModel", dependencies: ["VirtioProtocol"]),
        .target(name: "VhostModel", dependencies: ["VirtioProtocol"]),
        .target(name: "TraceFormat", dependencies: ["VirtioProtocol"]),
        .target(name: "PolledSemantics", dependencies: ["VirtioProtocol", "VirtqueueModel", "TraceFormat"]),
        .target(name: "Checker", dependencies: ["VirtioProtocol", "VirtqueueModel", "PolledSemantics", "VhostModel", "TraceFormat"]),
        .target(name: "Simulator", dependencies: ["VirtioProtocol", "VirtqueueModel", "VhostModel", "TraceFormat"]),
        .systemLibrary(name: "CZ3", pkgConfig: "z3", providers: [.apt(["libz3-dev"])]),
        .target(name: "Proofs", dependencies: ["CZ3", "VirtioProtocol", "VirtqueueModel", "VhostModel", "TraceFormat"]),
        .target(name: "CSupport"),
        .target(name: "Recorder", dependencies: ["CSupport", "VirtioProtocol", "TraceFormat", "Checker"]),
        .target(name: "TraceTools", dependencies: ["VirtioProtocol", "VirtqueueModel", "TraceFormat", "PolledSemantics"]),
        .executableTarget(
            name: "conformance",
            dependencies: [
                "VirtioProtocol", "VirtqueueModel", "VhostModel", "TraceFormat", "Checker", "Simulator", "Proofs", "Recorder", "TraceTools",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "TestSupport", path: "Tests/Support"),
        .testTarget(name: "VirtqueueModelTests", dependencies: ["VirtqueueModel", "Simulator"]),
        .testTarget(name: "PolledSemanticsTests", dependencies: ["PolledSemantics", "VirtqueueModel", "VirtioProtocol"],
                    // The exhaustive interleaving enumeration runs in debug builds too: optimize it.
                    swiftSettings: [.unsafeFlags(["-O"])]),
        .testTarget(name: "VhostModelTests", dependencies: ["VhostModel"]),
        .testTarget(name: "TraceFormatTests", dependencies: ["TraceFormat", "Simulator"]),
        .testTarget(name: "CheckerTests", dependencies: ["Checker", "TraceFormat", "VirtqueueModel", "Simulator", "TestSupport"]),
        .testTarget(name: "ProofsTests", dependencies: ["Proofs", "Checker", "TraceFormat", "TestSupport"]),
        .testTarget(name: "RecorderTests", dependencies: ["Recorder", "Checker", "TraceFormat", "TraceTools"]),
        .testTarget(name: "TraceToolsTests", dependencies: ["TraceTools", "Checker", "TraceFormat", "Simulator", "VirtioProtocol"]),
    ],
    swiftLanguageModes: [.v6]
)
