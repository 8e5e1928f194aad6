import Crypto
import Foundation
import HTTPServer
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

/// A webhook receiver for tests: the project's HTTP server on 127.0.0.1 (port 0) that records every request and
/// answers from a script (`204` once the script is used up).
final class WebhookReceiver: Sendable {
    /// One request as it arrived.
    struct Received: Sendable {
        var id: String?
        var timestamp: String?
        var signature: String?
        var contentType: String?
        var body: String
        var at: ContinuousClock.Instant
        var json: JSONValue? { try? JSONValue.parse(Array(body.utf8)) }
        var type: String? { json?["type"]?.stringValue }
    }

    /// How to answer a request.
    enum Answer: Sendable {
        case status(Int)
        /// Answer 204 only after this long (a receiver that hangs).
        case hang(Duration)
    }

    private struct State {
        var received: [Received] = []
        var script: [Answer] = []
        var always: Answer?
    }

    private let state = Mutex(State())
    private let server: HTTPServer

    private init(server: HTTPServer) { self.server = server }

    /// Starts a receiver on a free loopback port.
    static func start() throws -> WebhookReceiver {
        let box = Handler()
        let server = HTTPServer(
            configuration: HTTPServerConfiguration(host: "127.0.0.1", port: 0, threads: 1),
            handler: box, logger: GatewayHarness.logger())
        let receiver = WebhookReceiver(server: server)
        box.receiver.withLock { $0 = receiver }
        try server.start()
        return receiver
    }

    var url: String { "http://127.0.0.1:\(server.port)/hooks/tgw" }
    /// The pattern that admits this receiver and nothing else.
    var allowPattern: String { "http://127.0.0.1:\(server.port)" }

    /// Answers the next requests in this order, then 204.
    func script(_ answers: [Answer]) { state.withLock { $0.script = answers } }
    /// Answers every request this way until changed (`nil`: back to the script, then 204).
    func always(_ answer: Answer?) { state.withLock { $0.always = answer } }

    var received: [Received] { state.withLock { $0.received } }

    /// The requests carrying events of `type`.
    func events(_ type: String) -> [Received] { received.filter { $0.type == type } }

    func stop() async { await server.shutdown(gracePeriod: .milliseconds(200)) }

    fileprivate func handle(_ request: HTTPRequest) -> HTTPHandlerResult {
        let received = Received(
            id: request.headers["webhook-id"], timestamp: request.headers["webhook-timestamp"],
            signature: request.headers["webhook-signature"], contentType: request.headers["Content-Type"],
            body: String(decoding: request.body, as: UTF8.self), at: .now)
        let answer = state.withLock { state -> Answer in
            state.received.append(received)
            if let always = state.always { return always }
            return state.script.isEmpty ? .status(204) : state.script.removeFirst()
        }
        switch answer {
        case .status(let status): return .response(HTTPResponse(status: status))
        case .hang(let duration):
            return .deferred {
                try? await Task.sleep(for: duration)
                return HTTPResponse(status: 204)
            }
        }
    }

    private final class Handler: HTTPHandler {
        let receiver = Mutex<WebhookReceiver?>(nil)
        func handle(_ request: HTTPRequest) -> HTTPHandlerResult {
            guard let receiver = receiver.withLock({ $0 }) else { return .response(HTTPResponse(status: 503)) }
            return receiver.handle(request)
        }
    }

    /// Verifies a request the Standard Webhooks way, independently of the gateway's code: HMAC-SHA256 keyed with
    /// the base64-decoded part of `secret` after `whsec_`, over `<id>.<timestamp>.<body>`, compared with every
    /// `v1,` signature of the header; and the timestamp within 5 minutes of now.
    static func verifies(_ received: Received, secret: String) -> Bool {
        guard secret.hasPrefix("whsec_"), let key = Data(base64Encoded: String(secret.dropFirst(6))),
            let id = received.id, let timestamp = received.timestamp, let seconds = Double(timestamp),
            abs(Date().timeIntervalSince1970 - seconds) < 300, let header = received.signature
        else { return false }
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data("\(id).\(timestamp).\(received.body)".utf8), using: SymmetricKey(data: key))
        let expected = "v1," + Data(mac).base64EncodedString()
        return header.split(separator: " ").contains { $0 == expected }
    }
}

extension GatewayHarness {
    /// Creates a webhook of `tenant` pointing at `url`; returns the creation reply (with the secret).
    func webhook(tenant: String = "acme", url: String, events: [String]? = nil) async throws -> Reply {
        let list = events.map { ",\"events\":[" + $0.map { "\"\($0)\"" }.joined(separator: ",") + "]" } ?? ""
        return try await call("POST", "/tenants/\(tenant)/webhooks", json: #"{"url":"\#(url)"\#(list)}"#)
    }

    /// The usual start: tenant `acme` with a key, the authorized connection `default` of client `crm`, and a
    /// webhook to `url`. Returns the key and the webhook's id and secret.
    func connectedWithWebhook(url: String, events: [String]? = nil) async throws
        -> (key: String, id: String, secret: String)
    {
        let key = try await tenantWithKey()
        try await authorizationCodeClient()
        #expect(try await exchange(key: key).status == 200)
        let created = try await webhook(url: url, events: events)
        #expect(created.status == 201, "\(created.text)")
        return (key, try #require(created["id"]), try #require(created["secret"]))
    }

    /// Rows of `table` in this harness's database.
    func rows(_ table: String) async throws -> Int {
        let url = databaseURL
        let text = try await onThread { try TemporaryPostgres.psql(url: url, "SELECT count(*) FROM \(table)") }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// Makes the connection need a person: the user's refresh tokens are revoked at the fake, and a forced
    /// `/token` gets `409 reauthorization_required`.
    func breakConnection(key: String, client: String = "crm", connection: String = "default") async throws {
        fake.revokeAll(username: "ops@acme.example")
        let refused = try await token(
            key: key, client: client, connection: connection, extra: #","min_ttl_seconds":86400"#)
        #expect(refused.status == 409 && refused["error"] == "reauthorization_required", "\(refused.text)")
    }
}

/// Runs `body` with a started receiver and always stops it.
func withReceiver(_ body: (WebhookReceiver) async throws -> Void) async throws {
    let receiver = try WebhookReceiver.start()
    do {
        try await body(receiver)
    } catch {
        await receiver.stop()
        throw error
    }
    await receiver.stop()
}

/// Runs `body` with a receiver and a harness whose webhook allow-list admits the receiver (unless `extra` sets
/// it), and stops both.
func withWebhookHarness(
    extra: [String: String] = [:], logger: Logger? = nil,
    _ body: (GatewayHarness, WebhookReceiver) async throws -> Void
) async throws {
    try await withReceiver { receiver in
        var settings = extra
        settings["TOKEN_GATEWAY_WEBHOOK_ALLOWLIST"] = extra["TOKEN_GATEWAY_WEBHOOK_ALLOWLIST"] ?? receiver.allowPattern
        try await withHarness(extra: settings, logger: logger) { try await body($0, receiver) }
    }
}
