import Codecs
import Foundation
import Logging
import TokenGatewayAPI
import TokenGatewayDomain
import TokenGatewayService
import TokenGatewayStore

/// Everything `token-gateway serve` needs, validated. Built from settings named like the environment variables.
struct GatewayConfiguration: Sendable {
    var databaseURL: String
    var adminToken: String
    var keyring: Keyring
    var listenHost: String = "0.0.0.0"
    var listenPort: Int = 8080
    var publicURL: String?
    var upstreamAllowList: UpstreamAllowList = .salesforceDefault
    /// Where webhooks may point (`TOKEN_GATEWAY_WEBHOOK_ALLOWLIST`); nil: any https URL whose host is a DNS name.
    var webhookAllowList: UpstreamAllowList?
    var upstreamTimeoutSeconds: Double = 15
    var upstreamConnectTimeoutSeconds: Double = 5
    var maxBodyBytes: Int = 65536
    var forceRefreshGraceSeconds: Double = 5
    var log = LogSettings()
    var threads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)
    var databasePoolSize: Int = 10
    var maxConnections: Int = 10_000
    var idleTimeoutSeconds: Int = 60
    var headerTimeoutSeconds: Int = 10
    var shutdownGraceSeconds: Double = 10
    var keyUpstreamLimitPerMinute: Int = 120
    /// Most concurrent Salesforce calls per client on one replica.
    var upstreamConcurrencyPerClient: Int = 8
    /// Longest wait for a free database connection before a request gets `503` (busy, not unreachable).
    var databaseAcquireTimeoutSeconds: Double = 2
    /// Renew a token in use this long before its remaining lifetime falls to the largest `min_ttl_seconds` asked.
    var refreshAheadSeconds: Double = 30
    /// Refresh an idle `authorization_code` connection whose refresh token went unused this long.
    var keepaliveSeconds: Double = 86400
    /// Most background refreshes at once per replica.
    var backgroundConcurrency: Int = 4

    /// How log lines are written.
    enum LogFormat: String, Sendable { case json, text }

    /// How the process logs; every command that logs reads these, and only from here.
    struct LogSettings: Sendable, Equatable {
        var format: LogFormat = .json
        var level: Logger.Level = .info

        /// Validates `TOKEN_GATEWAY_LOG_FORMAT` and `TOKEN_GATEWAY_LOG_LEVEL`; the error names the setting.
        static func make(_ values: [String: String]) throws(ConfigurationError) -> LogSettings {
            var settings = LogSettings()
            if let format = setting("TOKEN_GATEWAY_LOG_FORMAT", in: values) {
                guard let parsed = LogFormat(rawValue: format) else {
                    throw ConfigurationError(setting: "TOKEN_GATEWAY_LOG_FORMAT", reason: "must be json or text")
                }
                settings.format = parsed
            }
            if let level = setting("TOKEN_GATEWAY_LOG_LEVEL", in: values) {
                guard let parsed = Logger.Level(rawValue: level) else {
                    let levels = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
                    throw ConfigurationError(setting: "TOKEN_GATEWAY_LOG_LEVEL", reason: "must be one of \(levels)")
                }
                settings.level = parsed
            }
            return settings
        }
    }

    /// The trimmed value of setting `name`; nil when it is absent or blank.
    static func setting(_ name: String, in values: [String: String]) -> String? {
        guard let raw = values[name]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
        return raw
    }

    /// Validates `DATABASE_URL` alone (all that `token-gateway migrate` needs besides the log settings).
    static func databaseURL(_ values: [String: String]) throws(ConfigurationError) -> String {
        guard let url = setting("DATABASE_URL", in: values) else {
            throw ConfigurationError(
                setting: "DATABASE_URL", reason: "is required (e.g. postgresql://user@host:5432/db)")
        }
        return url
    }

    /// A numeric setting: a number (of seconds) or a whole number, with its range and the field it sets.
    enum NumericSetting {
        case number(ClosedRange<Double>, WritableKeyPath<GatewayConfiguration, Double>)
        case whole(ClosedRange<Int>, WritableKeyPath<GatewayConfiguration, Int>)
    }

    /// Every numeric setting, in the order they are checked.
    static var numericSettings: [(String, NumericSetting)] {
        [
            ("TOKEN_GATEWAY_UPSTREAM_TIMEOUT_SECONDS", .number(0.1...300, \.upstreamTimeoutSeconds)),
            ("TOKEN_GATEWAY_UPSTREAM_CONNECT_TIMEOUT_SECONDS", .number(0.1...60, \.upstreamConnectTimeoutSeconds)),
            ("TOKEN_GATEWAY_FORCE_REFRESH_GRACE_SECONDS", .number(0...300, \.forceRefreshGraceSeconds)),
            ("TOKEN_GATEWAY_SHUTDOWN_GRACE_SECONDS", .number(0...600, \.shutdownGraceSeconds)),
            ("TOKEN_GATEWAY_DB_ACQUIRE_TIMEOUT_SECONDS", .number(0.05...60, \.databaseAcquireTimeoutSeconds)),
            ("TOKEN_GATEWAY_REFRESH_AHEAD_SECONDS", .number(0...86400, \.refreshAheadSeconds)),
            ("TOKEN_GATEWAY_KEEPALIVE_SECONDS", .number(10...31_536_000, \.keepaliveSeconds)),
            ("TOKEN_GATEWAY_MAX_BODY_BYTES", .whole(1024...16_777_216, \.maxBodyBytes)),
            ("TOKEN_GATEWAY_THREADS", .whole(1...256, \.threads)),
            ("TOKEN_GATEWAY_DB_POOL_SIZE", .whole(1...200, \.databasePoolSize)),
            ("TOKEN_GATEWAY_MAX_CONNECTIONS", .whole(1...100_000, \.maxConnections)),
            ("TOKEN_GATEWAY_IDLE_TIMEOUT_SECONDS", .whole(1...3600, \.idleTimeoutSeconds)),
            ("TOKEN_GATEWAY_HEADER_TIMEOUT_SECONDS", .whole(1...3600, \.headerTimeoutSeconds)),
            ("TOKEN_GATEWAY_KEY_UPSTREAM_LIMIT_PER_MINUTE", .whole(1...1_000_000, \.keyUpstreamLimitPerMinute)),
            ("TOKEN_GATEWAY_UPSTREAM_CONCURRENCY_PER_CLIENT", .whole(1...1000, \.upstreamConcurrencyPerClient)),
            ("TOKEN_GATEWAY_BACKGROUND_CONCURRENCY", .whole(1...256, \.backgroundConcurrency)),
        ]
    }

    /// Validates `values` (keyed by environment variable name) into a configuration; the error names the setting.
    static func make(_ values: [String: String]) throws(ConfigurationError) -> GatewayConfiguration {
        func value(_ name: String) -> String? { setting(name, in: values) }
        func parsed<Number: LosslessStringConvertible & Comparable>(
            _ name: String, _ range: ClosedRange<Number>, _ what: String
        ) throws(ConfigurationError) -> Number? {
            guard let raw = value(name) else { return nil }
            guard let parsed = Number(raw), range.contains(parsed) else {
                throw ConfigurationError(
                    setting: name, reason: "must be \(what) from \(range.lowerBound) to \(range.upperBound)")
            }
            return parsed
        }

        let databaseURL = try databaseURL(values)
        guard let adminToken = value("TOKEN_GATEWAY_ADMIN_TOKEN") else {
            throw ConfigurationError(setting: "TOKEN_GATEWAY_ADMIN_TOKEN", reason: "is required")
        }
        guard adminToken.count >= 32, Set(adminToken).count >= 12 else {
            throw ConfigurationError(
                setting: "TOKEN_GATEWAY_ADMIN_TOKEN",
                reason: "is too weak: use at least 32 characters, at least 12 of them different"
                    + " (e.g. `openssl rand -hex 32`)")
        }
        guard let keys = value("TOKEN_GATEWAY_ENCRYPTION_KEYS") else {
            throw ConfigurationError(
                setting: "TOKEN_GATEWAY_ENCRYPTION_KEYS",
                reason: "is required (generate one with `token-gateway keygen`)")
        }
        let keyring: Keyring
        do { keyring = try Keyring(parsing: keys) } catch {
            throw ConfigurationError(setting: "TOKEN_GATEWAY_ENCRYPTION_KEYS", reason: error.reason)
        }
        var configuration = GatewayConfiguration(databaseURL: databaseURL, adminToken: adminToken, keyring: keyring)

        if let listen = value("TOKEN_GATEWAY_LISTEN") {
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
                (0...65535).contains(port), colon != listen.startIndex
            else {
                throw ConfigurationError(
                    setting: "TOKEN_GATEWAY_LISTEN", reason: "must be host:port, e.g. 0.0.0.0:8080")
            }
            configuration.listenHost = String(listen[..<colon])
            configuration.listenPort = port
        }
        if let publicURL = value("TOKEN_GATEWAY_PUBLIC_URL") {
            let parsed: ParsedURL
            do { parsed = try ParsedURL(parsing: publicURL) } catch {
                throw ConfigurationError(setting: "TOKEN_GATEWAY_PUBLIC_URL", reason: error.reason)
            }
            guard parsed.scheme == "https" || parsed.scheme == "http", parsed.query == nil, !publicURL.contains("#")
            else {
                throw ConfigurationError(
                    setting: "TOKEN_GATEWAY_PUBLIC_URL", reason: "must be an http(s) URL without a query")
            }
            configuration.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        }
        if let list = value("TOKEN_GATEWAY_UPSTREAM_ALLOWLIST") {
            do { configuration.upstreamAllowList = try UpstreamAllowList(parsing: list) } catch {
                throw ConfigurationError(setting: "TOKEN_GATEWAY_UPSTREAM_ALLOWLIST", reason: error.reason)
            }
        }
        if let list = value("TOKEN_GATEWAY_WEBHOOK_ALLOWLIST") {
            do { configuration.webhookAllowList = try UpstreamAllowList(parsing: list) } catch {
                throw ConfigurationError(setting: "TOKEN_GATEWAY_WEBHOOK_ALLOWLIST", reason: error.reason)
            }
        }
        configuration.log = try LogSettings.make(values)
        for (name, setting) in numericSettings {
            switch setting {
            case .number(let range, let field):
                if let number = try parsed(name, range, "a number") { configuration[keyPath: field] = number }
            case .whole(let range, let field):
                if let count = try parsed(name, range, "a whole number") { configuration[keyPath: field] = count }
            }
        }
        return configuration
    }

    init(databaseURL: String, adminToken: String, keyring: Keyring) {
        self.databaseURL = databaseURL
        self.adminToken = adminToken
        self.keyring = keyring
    }
}

extension GatewayConfiguration {
    /// The part of the settings the HTTP API reads.
    var apiSettings: GatewayAPI.Settings {
        GatewayAPI.Settings(
            maxBodyBytes: maxBodyBytes, publicURL: publicURL, upstreamAllowList: upstreamAllowList,
            webhookAllowList: webhookAllowList)
    }
}

/// A setting that cannot be used; `description` is the one line printed before refusing to start.
struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    let setting: String
    let reason: String
    var description: String { "configuration error: \(setting) \(reason)" }
}
