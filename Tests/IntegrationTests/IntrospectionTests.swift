import FakeSalesforce
import Foundation
import HTTPClient
import Logging
import Synchronization
import TestSupport
import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

/// `SalesforceTokenEndpoint.introspect` against the fake Salesforce over real HTTP on 127.0.0.1 (no gateway, no
/// database): the expiry it reads, each typed failure, the metric, and no secret in errors or logs.
@Suite struct IntrospectionTests {
    static let secret = "introspect-secret-0123456789"

    /// The fake, the endpoint (with its own metrics and a log kept in memory) and a client-credentials client.
    final class Setup: Sendable {
        let fake: FakeSalesforce
        let http: HTTPClient
        let metrics = Metrics()
        let log = LogLines()
        let endpoint: SalesforceTokenEndpoint
        let client: Client

        init(sessionTimeoutSeconds: Int = 900) throws {
            var quiet = Logger(label: "fake")
            quiet.logLevel = .critical
            fake = try FakeSalesforce.start(logger: quiet)
            fake.register(
                FakeConnectedApp(
                    clientID: "3MVG9introspect", clientSecret: IntrospectionTests.secret,
                    clientCredentialsUser: "svc@example.com", sessionTimeoutSeconds: sessionTimeoutSeconds))
            http = try HTTPClient(configuration: HTTPClientConfiguration(totalTimeout: .seconds(10)), logger: quiet)
            let log = self.log
            var logger = Logger(label: "gateway") { label in
                JSONLogHandler(label: label, sink: { line in log.lines.withLock { $0.append(line) } })
            }
            logger.logLevel = .trace
            endpoint = SalesforceTokenEndpoint(http: http, metrics: metrics, logger: logger)
            client = Client(
                tenant: "acme", id: "svc", grantType: .clientCredentials, loginURL: fake.baseURL + "/",
                clientID: "3MVG9introspect", clientSecret: IntrospectionTests.secret, privateKey: nil, redirectURI: nil,
                scopes: nil, username: nil, audience: nil, tokenTTLSeconds: 3600)
        }

        func newToken() async throws -> SalesforceToken {
            try await endpoint.requestToken(.clientCredentials, client: client)
        }

        func stop() async {
            http.shutdown()
            await fake.shutdown()
        }

        /// Introspects, expecting a failure: the failure, or nil when it succeeded.
        func failure(_ token: String, client: Client? = nil, timeout: Duration? = nil) async -> IntrospectionFailure? {
            do {
                _ = try await endpoint.introspect(accessToken: token, client: client ?? self.client, timeout: timeout)
                return nil
            } catch {
                return error
            }
        }

        /// The rendered metric line of one outcome.
        func metricLine(_ outcome: String) -> String? {
            metrics.render().split(separator: "\n").map(String.init)
                .first { $0.hasPrefix("token_gateway_introspections_total{outcome=\"\(outcome)\"}") }
        }
    }

    /// The gateway's log lines, kept in memory.
    final class LogLines: Sendable {
        let lines = Mutex<[String]>([])
    }

    static func with(sessionTimeoutSeconds: Int = 900, _ body: (Setup) async throws -> Void) async throws {
        let setup = try Setup(sessionTimeoutSeconds: sessionTimeoutSeconds)
        do {
            try await body(setup)
            await setup.stop()
        } catch {
            await setup.stop()
            throw error
        }
    }

    @Test func aNewTokensExpiryIsTheFakesAndTheEarlierOneWins() async throws {
        try await Self.with(sessionTimeoutSeconds: 900) { setup in
            let token = try await setup.newToken()
            let exp = try await setup.endpoint.introspect(accessToken: token.accessToken, client: setup.client)
            let expiry = try #require(setup.fake.accessTokenExpiry(token.accessToken))
            #expect(exp == Int64(expiry.timeIntervalSince1970))
            #expect(exp == token.issuedAtMillis / 1000 + 900)
            // The session (900 s) is shorter than token_ttl_seconds (3600): introspection decides.
            #expect(
                TokenExpiry.expiresAt(issuedAtMillis: token.issuedAtMillis, tokenTTLSeconds: 3600, introspectedExp: exp)
                    == Double(exp))
            // A TTL shorter than the session decides instead.
            #expect(
                TokenExpiry.expiresAt(issuedAtMillis: token.issuedAtMillis, tokenTTLSeconds: 60, introspectedExp: exp)
                    == Double(token.issuedAtMillis) / 1000 + 60)
            #expect(setup.fake.stats.introspectionCallsByClient == ["3MVG9introspect": 1])
            #expect(setup.metrics.introspections(outcome: .active) == 1)
            #expect(setup.metricLine("active") == #"token_gateway_introspections_total{outcome="active"} 1"#)
            #expect(setup.metricLine("error") == #"token_gateway_introspections_total{outcome="error"} 0"#)
        }
    }

    @Test func aRevokedOrExpiredTokenIsInactive() async throws {
        try await Self.with(sessionTimeoutSeconds: 1) { setup in
            let revoked = try await setup.newToken()
            setup.fake.revokeAll(username: "svc@example.com")
            let inactive = await setup.failure(revoked.accessToken)
            #expect(inactive == .inactive)
            let expiring = try await setup.newToken()
            let expiry = try #require(setup.fake.accessTokenExpiry(expiring.accessToken))
            try await Task.sleep(for: .seconds(max(0, expiry.timeIntervalSinceNow) + 0.1))
            let expired = await setup.failure(expiring.accessToken)
            #expect(expired == .inactive)
            #expect(setup.metricLine("inactive") == #"token_gateway_introspections_total{outcome="inactive"} 2"#)
            #expect(setup.metrics.introspections(outcome: .active) == 0)
        }
    }

    @Test func aWrongSecretIsRefusedAndNeverShown() async throws {
        try await Self.with { setup in
            let token = try await setup.newToken()
            var wrong = setup.client
            wrong.clientSecret = "wrong-secret-9876543210"
            let failure = await setup.failure(token.accessToken, client: wrong)
            guard case .refused(let details) = failure else {
                Issue.record("expected refused, got \(String(describing: failure))")
                return
            }
            #expect(details.status == 401 && details.error == "invalid_client")
            #expect(setup.metrics.introspections(outcome: .refused) == 1)
            let logged = setup.log.lines.withLock { $0 }
            #expect(!logged.isEmpty)
            for text in logged + [String(describing: failure), String(reflecting: failure)] {
                for secret in ["wrong-secret-9876543210", IntrospectionTests.secret, token.accessToken] {
                    #expect(!text.contains(secret), "a secret in: \(text.prefix(200))")
                }
            }
        }
    }

    @Test func faultsAndTimeoutsBecomeTypedFailures() async throws {
        try await Self.with { setup in
            let token = try await setup.newToken()
            setup.fake.injectIntrospectionFaults([
                .serverError, .garbage, .throttle(retryAfterSeconds: 3), .latency(milliseconds: 1500),
            ])
            var failures: [IntrospectionFailure?] = []
            for _ in 0..<3 {
                failures.append(await setup.failure(token.accessToken))
            }
            #expect(failures[0] == .serverError(status: 500))
            #expect(failures[1] == .unreadable(status: 200))
            guard case .refused(let throttled) = failures[2] else {
                Issue.record("expected refused, got \(String(describing: failures[2]))")
                return
            }
            #expect(throttled.status == 429)
            let started = ContinuousClock.now
            let hung = await setup.failure(token.accessToken, timeout: .milliseconds(500))
            #expect(hung == .timeout)
            #expect(ContinuousClock.now - started < .milliseconds(1400))
            // After the faults, the same call works again.
            #expect(try await setup.endpoint.introspect(accessToken: token.accessToken, client: setup.client) > 0)
            #expect(setup.fake.stats.introspectionCalls == 5)
            #expect(setup.metrics.introspections(outcome: .error) == 2)
            #expect(setup.metrics.introspections(outcome: .refused) == 1)
            #expect(setup.metrics.introspections(outcome: .timeout) == 1)
            #expect(setup.metrics.introspections(outcome: .active) == 1)
        }
    }

    @Test func anUnreachableSalesforceOrAMissingSecretFailsWithoutACall() async throws {
        try await Self.with { setup in
            var closed = setup.client
            closed.loginURL = "http://127.0.0.1:\(try freeLocalPort())"
            let unreachable = await setup.failure("00Dx!AQtoken", client: closed)
            #expect(unreachable == .unreachable)
            #expect(setup.metrics.introspections(outcome: .error) == 1)

            var noSecret = setup.client
            noSecret.clientSecret = nil
            let skipped = await setup.failure("00Dx!AQtoken", client: noSecret)
            #expect(skipped == .noClientSecret)
            #expect(setup.fake.stats.introspectionCalls == 0)
            #expect(IntrospectionOutcome.allCases.map { setup.metrics.introspections(outcome: $0) } == [0, 0, 0, 0, 1])
        }
    }
}
