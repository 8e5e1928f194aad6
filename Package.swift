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

        // Codecs (percent, form, hex, base64url, JSON escaping) and the termination-signal wait: no dependencies.
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

        // The domain: tenants, clients, connections, grants, cache, crypto, routes. No C imports.
        .target(
            name: "TokenGatewayCore",
            dependencies: [
                "Codecs", "HTTPServer", "Postgres", "HTTPClient",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
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
                "TokenGatewayCore", "Postgres", "HTTPClient", "Signals",
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
            name: "TokenGatewayCoreTests", dependencies: ["TokenGatewayCore", "Postgres", "HTTPClient", "TestSupport"]),
        .testTarget(name: "FakeSalesforceTests", dependencies: ["FakeSalesforce", "HTTPClient", "TestSupport"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "TokenGatewayCore", "FakeSalesforce", "HTTPClient", "HTTPServer", "Postgres", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
