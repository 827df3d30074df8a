import Foundation
import FuzzTargets
import TraceFormat
#if FUZZING
import CFuzzerDriver
#endif

/// The fuzz harness. Built two ways:
/// - normally (`swift build`): `conformance-fuzz TARGET FILE...` replays inputs through a target, so
///   `swift test` can replay every saved crash (Tests/Regressions/fuzz); `conformance-fuzz --list`.
/// - by `scripts/fuzz.sh` with `-sanitize=fuzzer -DFUZZING` into `.build-fuzz`: a libFuzzer binary
///   whose target is named by `CONFORMANCE_FUZZ_TARGET`; all other arguments are libFuzzer's.

/// The target libFuzzer drives, read once.
let fuzzTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["CONFORMANCE_FUZZ_TARGET"] ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("conformance-fuzz: set CONFORMANCE_FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    return t
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func conformanceFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = (size == 0 || data == nil) ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    fuzzTarget.run(bytes)
    return 0
}

@main
struct FuzzMain {
    static func main() {
        // In a function of its own, so that nothing main allocates is still alive when libFuzzer
        // exits from inside LLVMFuzzerRunDriver (LeakSanitizer would report it).
        if let what = infoRequest() { info(what); return }
        #if FUZZING
        _ = fuzzTarget
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in conformanceFuzzOne(data, size) })
        #else
        replay(Array(CommandLine.arguments.dropFirst()))
        #endif
    }

    static func infoRequest() -> String? {
        let args = Array(CommandLine.arguments.dropFirst())
        return args == ["--list"] || args == ["--dict"] ? args[0] : nil
    }

    /// `--list`: the targets and their input kind; `--dict`: a libFuzzer dictionary of the text form's words.
    static func info(_ what: String) {
        if what == "--list" {
            for t in FuzzTarget.allCases { print("\(t.rawValue)\t\(t.takesText ? "text" : "binary")") }
        } else {
            // The text form's words, and the integers at the edges of every field width and of the
            // integer types a value passes through (libFuzzer seldom builds 20-digit numbers itself).
            let edges = [Int64.min.description, "9223372036854775808", UInt64.max.description, "18446744073709551616",
                         "0xffffffffffffffff", "0x10000000000000000", "4294967295", "4294967296", "65535", "65536",
                         "32767", "32768", "-32768", "-32769", "255", "256"]
            for w in TextForm.vocabulary + edges { print("\"" + w.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"") }
        }
    }

    static func replay(_ args: [String]) {
        guard let name = args.first, let target = FuzzTarget(rawValue: name), args.count >= 2 else {
            FileHandle.standardError.write(Data("usage: conformance-fuzz TARGET FILE... (targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")))\n".utf8))
            exit(2)
        }
        for file in args.dropFirst() {
            guard let d = FileManager.default.contents(atPath: file) else {
                FileHandle.standardError.write(Data("conformance-fuzz: cannot read \(file)\n".utf8))
                exit(2)
            }
            target.run(Array(d))
        }
    }
}
