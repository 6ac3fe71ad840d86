// p8-store-bench: Store's benchmark, and the child process of its crash test.
//
//   swift run -c release p8-store-bench [--seconds S] [--directory DIR] [--synchronous normal,full]
//                                       [--appenders 1,16,256] [--channels 64]
//       items/s appended by 1, 16 and 256 concurrent appenders (one 200-byte item per append, appender k on
//       channel k mod 64), for synchronous=normal and full, then the latency of reading 1,000 items after a cursor.
//   p8-store-bench crash-child DATABASE APPENDERS
//       appends until killed; after each append returns, writes "ack CHANNEL LAST-SEQUENCE BATCH" on stdout.

import Foundation
import GRIP
import Logging
import Store

let arguments = Array(CommandLine.arguments.dropFirst())
let logger = Logger(label: "p8.store.bench")

if arguments.first == "crash-child" {
    guard arguments.count == 3, let appenders = Int(arguments[2]) else {
        FileHandle.standardError.write(Data("usage: p8-store-bench crash-child DATABASE APPENDERS\n".utf8))
        exit(2)
    }
    try await CrashChild.run(databaseFile: arguments[1], appenders: appenders, logger: logger)
} else {
    let usage = """
        usage: p8-store-bench [--seconds S] [--directory DIR] [--synchronous normal,full] [--appenders 1,16,256]
                              [--channels 64]

        """
    var seconds = 2.0
    var directory = FileManager.default.temporaryDirectory.path
    var modes: [SynchronousMode] = [.normal, .full]
    var appenderCounts = [1, 16, 256]
    var channels = 64
    var index = 0
    while index + 1 < arguments.count {
        let value = arguments[index + 1]
        switch arguments[index] {
        case "--seconds": seconds = Double(value) ?? seconds
        case "--directory": directory = value
        case "--synchronous": modes = value.split(separator: ",").compactMap { SynchronousMode(rawValue: String($0)) }
        case "--appenders": appenderCounts = value.split(separator: ",").compactMap { Int($0) }
        case "--channels": channels = max(1, Int(value) ?? channels)
        default:
            FileHandle.standardError.write(Data(usage.utf8))
            exit(2)
        }
        index += 2
    }
    if index != arguments.count {
        FileHandle.standardError.write(Data(usage.utf8))
        exit(2)
    }
    try await Benchmark.run(
        seconds: seconds,
        directory: directory,
        modes: modes,
        appenderCounts: appenderCounts,
        channels: channels,
        logger: logger
    )
}
