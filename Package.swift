// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "token-gateway",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "token-gateway", targets: ["token-gateway"]),
        .executable(name: "fake-salesforce", targets: ["fake-salesforce"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
    ],
    targets: [
        // C libraries from Debian, reached through typed shims (Swift cannot call variadic C functions).
        .systemLibrary(
            name: "CMicroHTTPD", pkgConfig: "libmicrohttpd", providers: [.apt(["libmicrohttpd-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CLibCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),

        // Codecs (percent, form, hex, base64url, JSON reading, writing and escaping) and the termination-signal wait:
        // no dependencies; the wrappers and every layer above may import them.
        .target(name: "Codecs"),
        .target(name: "Signals"),

        // Swift wrappers: the only code that imports C.
        .target(
            name: "HTTPServer",
            dependencies: ["CMicroHTTPD", "Codecs", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "Postgres",
            dependencies: ["CLibPQ", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "HTTPClient",
            dependencies: ["CLibCurl", "Codecs", .product(name: "Logging", package: "swift-log")]),

        // The layers above the C fence. Each may import only what its line says (and the Swift packages listed):
        //   Codecs              nothing: percent, hex, base64url, JSON reading and writing.
        //   TokenGatewayDomain  Codecs, Crypto, Logging. Tenants, keys, clients, grants, tokens, refresh
        //                       decisions, the lease state machine, typed errors. No HTTP, no SQL.
        //   TokenGatewayStore   Domain, Postgres. All SQL, migrations and the typed NOTIFY messages; the only
        //                       module above the fence that imports Postgres.
        //   TokenGatewayService Domain, Store, HTTPClient. The refresh engine, Salesforce calls, the token
        //                       lifecycle, webhook deliveries, metrics.
        //   TokenGatewayAPI     Domain, Store, Service, HTTPServer. Routes, request parsing, authentication,
        //                       the request chain (metrics, logging) and the error-to-HTTP mapping.
        //   token-gateway       everything: configuration and wiring.
        .target(
            name: "TokenGatewayDomain",
            dependencies: [
                "Codecs",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "TokenGatewayStore",
            dependencies: [
                "Codecs", "TokenGatewayDomain", "Postgres", .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "TokenGatewayService",
            dependencies: [
                "Codecs", "TokenGatewayDomain", "TokenGatewayStore", "HTTPClient",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "TokenGatewayAPI",
            dependencies: [
                "Codecs", "TokenGatewayDomain", "TokenGatewayStore", "TokenGatewayService", "HTTPServer",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // A fake of Salesforce's OAuth endpoints for tests, the demo and the benchmarks.
        .target(
            name: "FakeSalesforce",
            dependencies: [
                "HTTPServer",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        .executableTarget(
            name: "token-gateway",
            dependencies: [
                "Codecs", "TokenGatewayDomain", "TokenGatewayStore", "TokenGatewayService", "TokenGatewayAPI",
                "HTTPServer", "HTTPClient", "Signals",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "fake-salesforce",
            dependencies: [
                "FakeSalesforce", "Signals",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // Test helpers: throwaway PostgreSQL clusters, free ports, bounded waits, threads, timing, log capture.
        .target(
            name: "TestSupport",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            path: "Tests/TestSupport"),
        .testTarget(name: "CodecsTests", dependencies: ["Codecs"]),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "TestSupport"]),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "TestSupport"]),
        .testTarget(name: "HTTPClientTests", dependencies: ["HTTPClient", "HTTPServer", "TestSupport"]),
        .testTarget(
            name: "GatewayUnitTests",
            dependencies: [
                "Codecs", "TokenGatewayDomain", "TokenGatewayStore", "TokenGatewayService", "TokenGatewayAPI",
                "token-gateway", "HTTPServer", "Postgres", "HTTPClient", "TestSupport",
            ]),
        .testTarget(name: "FakeSalesforceTests", dependencies: ["FakeSalesforce", "HTTPClient", "TestSupport"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "Codecs", "TokenGatewayDomain", "TokenGatewayStore", "TokenGatewayService", "TokenGatewayAPI",
                "token-gateway", "FakeSalesforce", "HTTPClient", "HTTPServer", "Postgres", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
