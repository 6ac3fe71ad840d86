// swift-tools-version:6.2
import PackageDescription

/// Settings shared by every target of ours (not by dependencies): Swift 6 mode, the upcoming features the
/// Swift server anchors enable, and warnings as errors.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "P8",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "p8", targets: ["p8"]),
        .executable(name: "p8ctl", targets: ["p8ctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // The wire formats as values: routes and config parsers, GRIP instructions, publish items, Grip-Sig.
        // No I/O.
        .target(
            name: "GRIP",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto")
            ],
            swiftSettings: swiftSettings
        ),
        // libzmq headers and link (no pkgConfig: libzmq's .pc drags in Kerberos flags SwiftPM rejects).
        .systemLibrary(
            name: "CZeroMQ",
            providers: [.apt(["libzmq3-dev"])]
        ),
        // SQLite through GRDB: migrations (from migrations/ via the Migrations symlink), channel logs,
        // held-request records.
        .target(
            name: "Store",
            dependencies: [
                "GRIP",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The PostgreSQL schema (migrations/postgresql) is its own resource folder, kept out of SQLite's.
            exclude: ["Migrations/postgresql"],
            resources: [.process("Migrations"), .copy("PostgreSQLSchema")],
            swiftSettings: swiftSettings
        ),
        // Store's benchmark (`swift run -c release p8-store-bench`) and the child process of its crash test.
        .executableTarget(
            name: "p8-store-bench",
            dependencies: [
                "GRIP",
                "Store",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/StoreBenchmark",
            swiftSettings: swiftSettings
        ),
        // The handler: publish intake, subscriptions and fan-out, held-session bookkeeping. No NIO.
        .target(
            name: "Publish",
            dependencies: [
                "GRIP",
                "Store",
                "CZeroMQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The connection side: NIO listeners, routing, forwarding to backends. The only target importing NIO.
        .target(
            name: "Proxy",
            dependencies: [
                "GRIP",
                "Publish",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The composition root: reads p-8.conf and routes, builds and runs the services.
        .target(
            name: "Runner",
            dependencies: [
                "GRIP",
                "Store",
                "Publish",
                "Proxy",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "p8",
            dependencies: [
                "Runner",
                "Proxy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // The operator CLI: reads and maintains the database directly (read-only where it only inspects).
        .executableTarget(
            name: "p8ctl",
            dependencies: [
                "GRIP",
                "Store",
                "Runner",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // What the test targets share: a temporary directory, a child-process launcher on posix_spawn, one bounded
        // `eventually` with one default limit, and markers to assert that nothing more arrives.
        .target(
            name: "P8TestSupport",
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GRIPTests",
            // Runner for the config file reader (ConfigFileTests).
            dependencies: ["GRIP", "Runner", "P8TestSupport"],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StoreTests",
            dependencies: [
                "P8TestSupport",
                "Store",
                "GRIP",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The publish hub against a real store, through the held-connection seam; the ZeroMQ sockets with
        // real libzmq clients (and p8 itself, through Runner).
        .testTarget(
            name: "PublishTests",
            dependencies: [
                "P8TestSupport",
                "Publish",
                "Store",
                "GRIP",
                "Runner",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Runs the built p8ctl against real databases.
        .testTarget(
            name: "P8CtlTests",
            dependencies: [
                "P8TestSupport",
                "Store",
                "GRIP",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ProxyTests",
            dependencies: [
                "P8TestSupport",
                "GRIP",
                "Proxy",
                "Runner",
                "Store",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
    ]
)
