// p8-store-bench: Store's benchmark, and the child process of its crash test.
//
//   swift run -c release p8-store-bench [--seconds S] [--directory DIR]
//       items/s appended by 1, 16 and 256 concurrent appenders (one 200-byte item per append), for
//       synchronous=normal and full, then the latency of reading 1,000 items after a cursor.
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
    var seconds = 2.0
    var directory = FileManager.default.temporaryDirectory.path
    var index = 0
    while index < arguments.count {
        switch arguments[index] {
        case "--seconds" where index + 1 < arguments.count:
            seconds = Double(arguments[index + 1]) ?? seconds
            index += 2
        case "--directory" where index + 1 < arguments.count:
            directory = arguments[index + 1]
            index += 2
        default:
            FileHandle.standardError.write(Data("usage: p8-store-bench [--seconds S] [--directory DIR]\n".utf8))
            exit(2)
        }
    }
    try await Benchmark.run(seconds: seconds, directory: directory, logger: logger)
}
