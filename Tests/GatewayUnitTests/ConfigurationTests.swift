import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

@Suite struct ConfigurationTests {
    static let key = "k1:" + String(repeating: "A", count: 43) + "="
    static let valid: [String: String] = [
        "DATABASE_URL": "postgresql://u@127.0.0.1/db",
        "TOKEN_GATEWAY_ADMIN_TOKEN": "0123456789abcdef0123456789abcdef",
        "TOKEN_GATEWAY_ENCRYPTION_KEYS": key,
    ]

    func error(_ changes: [String: String?]) -> ConfigurationError? {
        var values = Self.valid
        for (name, value) in changes { values[name] = value }
        do {
            _ = try GatewayConfiguration.make(values)
            return nil
        } catch {
            return error
        }
    }

    @Test func defaultsApplyWhenOnlyTheRequiredSettingsAreGiven() throws {
        let configuration = try GatewayConfiguration.make(Self.valid)
        #expect(configuration.listenHost == "0.0.0.0")
        #expect(configuration.listenPort == 8080)
        #expect(configuration.maxBodyBytes == 65536)
        #expect(configuration.forceRefreshGraceSeconds == 5)
        #expect(configuration.upstreamTimeoutSeconds == 15)
        #expect(configuration.upstreamConnectTimeoutSeconds == 5)
        #expect(configuration.keyring.primary.id == "k1")
        #expect(configuration.webhookAllowList == nil)
    }

    @Test func missingOrWeakAdminTokenIsRefusedNamingTheSetting() {
        #expect(error(["TOKEN_GATEWAY_ADMIN_TOKEN": nil])?.setting == "TOKEN_GATEWAY_ADMIN_TOKEN")
        let weak = error(["TOKEN_GATEWAY_ADMIN_TOKEN": String(repeating: "x", count: 31)])
        #expect(weak?.setting == "TOKEN_GATEWAY_ADMIN_TOKEN")
        #expect(weak?.description.contains("32") == true)
    }

    @Test(arguments: [
        String(repeating: "a", count: 40), String(repeating: "changeme", count: 5),
        String(repeating: "0123456789a", count: 4),
    ])
    func longAdminTokensWithFewerThanTwelveDistinctCharactersAreRefused(_ token: String) {
        let weak = error(["TOKEN_GATEWAY_ADMIN_TOKEN": token])
        #expect(weak?.setting == "TOKEN_GATEWAY_ADMIN_TOKEN")
        #expect(weak?.description.contains("12") == true)
        #expect(weak?.description.contains(token) == false)
        #expect(error(["TOKEN_GATEWAY_ADMIN_TOKEN": String(repeating: "0123456789ab", count: 3)]) == nil)
    }

    @Test(arguments: [
        "nocolon", "k1:notbase64!!", "k1:AAAA",
        "k1:\(String(repeating: "A", count: 43))=,k1:\(String(repeating: "B", count: 43))=", "bad id:AAAA",
    ])
    func malformedKeysAreRefused(_ keys: String) {
        let failure = error(["TOKEN_GATEWAY_ENCRYPTION_KEYS": keys])
        #expect(failure?.setting == "TOKEN_GATEWAY_ENCRYPTION_KEYS")
        // The line never echoes key material.
        #expect(failure?.description.contains("AAAA") == false)
    }

    @Test func missingDatabaseURLAndBadNumbersAreRefused() {
        #expect(error(["DATABASE_URL": nil])?.setting == "DATABASE_URL")
        #expect(error(["TOKEN_GATEWAY_LISTEN": "8080"])?.setting == "TOKEN_GATEWAY_LISTEN")
        #expect(error(["TOKEN_GATEWAY_MAX_BODY_BYTES": "lots"])?.setting == "TOKEN_GATEWAY_MAX_BODY_BYTES")
        #expect(
            error(["TOKEN_GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "-1"])?.setting == "TOKEN_GATEWAY_UPSTREAM_TIMEOUT_SECONDS"
        )
        #expect(error(["TOKEN_GATEWAY_UPSTREAM_ALLOWLIST": "ftp://x"])?.setting == "TOKEN_GATEWAY_UPSTREAM_ALLOWLIST")
        #expect(error(["TOKEN_GATEWAY_WEBHOOK_ALLOWLIST": "ftp://x"])?.setting == "TOKEN_GATEWAY_WEBHOOK_ALLOWLIST")
        #expect(error(["TOKEN_GATEWAY_LOG_FORMAT": "xml"])?.setting == "TOKEN_GATEWAY_LOG_FORMAT")
    }

    @Test func logSettingsAreValidatedWithTheRestAndKeptInTheConfiguration() throws {
        #expect(try GatewayConfiguration.make(Self.valid).log == GatewayConfiguration.LogSettings())
        var values = Self.valid
        values["TOKEN_GATEWAY_LOG_FORMAT"] = "text"
        values["TOKEN_GATEWAY_LOG_LEVEL"] = " debug "
        let log = try GatewayConfiguration.make(values).log
        #expect(log.format == .text && log.level == .debug)
        let loud = error(["TOKEN_GATEWAY_LOG_LEVEL": "loud"])
        #expect(loud?.setting == "TOKEN_GATEWAY_LOG_LEVEL")
        #expect(loud?.description.contains("trace, debug, info, notice, warning, error, critical") == true)
        // `migrate` validates only the database URL and these, the same way.
        #expect(throws: ConfigurationError.self) {
            try GatewayConfiguration.LogSettings.make(["TOKEN_GATEWAY_LOG_LEVEL": "INFO"])
        }
        #expect(throws: ConfigurationError.self) { try GatewayConfiguration.databaseURL(["DATABASE_URL": " "]) }
    }

    @Test func headerTimeoutAndConnectionLimitHaveDefaultsAndAreValidated() throws {
        let defaults = try GatewayConfiguration.make(Self.valid)
        #expect(defaults.headerTimeoutSeconds == 10)
        #expect(defaults.maxConnections == 10_000)
        var values = Self.valid
        values["TOKEN_GATEWAY_HEADER_TIMEOUT_SECONDS"] = "3"
        #expect(try GatewayConfiguration.make(values).headerTimeoutSeconds == 3)
        for bad in ["0", "soon", "3601"] {
            let failure = error(["TOKEN_GATEWAY_HEADER_TIMEOUT_SECONDS": bad])
            #expect(failure?.setting == "TOKEN_GATEWAY_HEADER_TIMEOUT_SECONDS")
        }
    }

    @Test func defaultAllowListHoldsOnlySalesforceHTTPS() throws {
        let list = UpstreamAllowList.salesforceDefault
        #expect(list.allows(try #require(ParsedURL("https://login.salesforce.com"))))
        #expect(list.allows(try #require(ParsedURL("https://acme.my.salesforce.com/"))))
        #expect(list.allows(try #require(ParsedURL("https://acme.my.site.com.force.com/path"))))
        #expect(!list.allows(try #require(ParsedURL("http://login.salesforce.com"))))
        #expect(!list.allows(try #require(ParsedURL("https://salesforce.com.evil.example"))))
        #expect(!list.allows(try #require(ParsedURL("https://127.0.0.1"))))
        #expect(!list.allows(try #require(ParsedURL("https://force.com"))))
        #expect(ParsedURL("https://user:pw@login.salesforce.com") == nil)
    }

    @Test func patternsMatchSchemeHostAndOptionalPort() throws {
        let list = try UpstreamAllowList(parsing: "http://127.0.0.1, https://*.example.com:8443")
        #expect(list.allows(try #require(ParsedURL("http://127.0.0.1:5555"))))
        #expect(!list.allows(try #require(ParsedURL("https://127.0.0.1"))))
        #expect(list.allows(try #require(ParsedURL("https://a.example.com:8443"))))
        #expect(!list.allows(try #require(ParsedURL("https://a.example.com"))))
        #expect(!list.allows(try #require(ParsedURL("https://example.com:8443"))))
    }
}
