import Foundation

// The fuzz targets of P-8's parsers of outside input, built into one libFuzzer binary by scripts/fuzz.sh
// (with the GRIP sources and p8ctl's time parser compiled into this module). `P8_FUZZ_TARGET` names the
// target; each one checks properties of what it parses, and a property that does not hold stops the run
// through `require`, so libFuzzer saves the input as a crash.

/// Every target by name.
let fuzzTargets: [String: @Sendable ([UInt8]) -> Void] = [
    "json": fuzzJSON,
    "tnetstring": fuzzTNetString,
    "json-patch": fuzzJSONPatch,
    "publish-json": fuzzPublishJSON,
    "publish-tnetstring": fuzzPublishTNetString,
    "instruct-headers": fuzzInstructHeaders,
    "instruct-json": fuzzInstructJSON,
    "routes": fuzzRoutes,
    "config": fuzzConfig,
    "ws-events": fuzzWebSocketEvents,
    "ws-control": fuzzWebSocketControl,
    "grip-sig": fuzzGripSignature,
    "ctl-time": fuzzCtlTime,
]

let selectedTarget: @Sendable ([UInt8]) -> Void = {
    let name = ProcessInfo.processInfo.environment["P8_FUZZ_TARGET"] ?? ""
    guard let target = fuzzTargets[name] else {
        let names = fuzzTargets.keys.sorted().joined(separator: " ")
        FileHandle.standardError.write(Data("P8_FUZZ_TARGET must be one of: \(names)\n".utf8))
        exit(2)
    }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = start.map { Array(UnsafeRawBufferPointer(start: $0, count: count)) } ?? []
    selectedTarget(bytes)
    return 0
}

/// Stops the run when a property of a parser does not hold (libFuzzer keeps the input).
func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition {
        fatalError("property does not hold: \(message())")
    }
}

/// Splits an input into fields at NUL bytes (seeds are written that way), at most `count` fields.
func fields(_ bytes: [UInt8], count: Int) -> [[UInt8]] {
    bytes.split(separator: 0, maxSplits: count - 1, omittingEmptySubsequences: false).map(Array.init)
}

func text(_ bytes: [UInt8]) -> String {
    String(decoding: bytes, as: UTF8.self)
}
