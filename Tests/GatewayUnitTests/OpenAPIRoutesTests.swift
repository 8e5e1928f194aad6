import Codecs
import Foundation
import HTTPClient
import Logging
import Postgres
import Testing
import TokenGatewayAPI
import TokenGatewayDomain
import TokenGatewayService
import TokenGatewayStore

@testable import token_gateway

/// `openapi.yaml` must describe exactly the routes the gateway's router serves, each with the credential its entry
/// in `GatewayRoutes.table` takes, and every operation that takes a credential must answer its errors with the
/// `Error` schema.
///
/// The YAML is read with a small line scanner instead of a YAML library (the package has none). It relies on the
/// layout `openapi.yaml` keeps: paths are the 2-space-indented keys under `paths:` that start with `/`, methods the
/// 4-space-indented keys under them, `security:` and `responses:` 6-space-indented keys of an operation, status
/// codes 8-space-indented keys under `responses:`, and reusable responses 4-space-indented keys under
/// `components:` → `responses:`. The scanner reports any other 4-space key under a path, so a layout change fails
/// loudly instead of hiding a route.
@Suite struct OpenAPIRoutesTests {
    @Test func openAPIListsExactlyTheRoutesTheRouterServes() async throws {
        let document = try Self.document()
        #expect(document.problems.isEmpty, "openapi.yaml scanner problems: \(document.problems)")

        let served = try await Self.servedRoutes()
        #expect(served.count == GatewayRoutes.table.count)
        let difference = Self.difference(documented: document.operations.map(\.route), served: served)
        #expect(
            difference.missing.isEmpty, "served by the router but missing from openapi.yaml: \(difference.missing)")
        #expect(difference.extra.isEmpty, "in openapi.yaml but not served by the router: \(difference.extra)")
        #expect(
            difference.duplicates.isEmpty,
            "listed more than once in openapi.yaml: \(difference.duplicates)")
    }

    @Test func routeComparisonNoticesARemovedOrChangedOperation() async throws {
        let text = try Self.openAPIText()
        let served = try await Self.servedRoutes()
        // Measured relative to the file as it is, so that this test pins only the scanner's sensitivity.
        let baseline = Self.difference(documented: OpenAPIDocument(text: text).operations.map(\.route), served: served)

        // Remove the whole /metrics path item: GET /metrics must show up as missing.
        let withoutMetrics = OpenAPIDocument(text: Self.removingPathItem("/metrics", from: text))
        let removed = Self.difference(documented: withoutMetrics.operations.map(\.route), served: served)
        #expect(Set(removed.missing) == Set(baseline.missing).union(["GET /metrics"]))
        #expect(removed.extra == baseline.extra)

        // Turn PATCH into PUT on the client path: one missing, one extra.
        let patched = text.replacingOccurrences(of: "\n    patch:\n", with: "\n    put:\n")
        #expect(patched != text)
        let changed = Self.difference(
            documented: OpenAPIDocument(text: patched).operations.map(\.route), served: served)
        #expect(Set(changed.missing) == Set(baseline.missing).union(["PATCH /tenants/{tenant}/clients/{client}"]))
        #expect(Set(changed.extra) == Set(baseline.extra).union(["PUT /tenants/{tenant}/clients/{client}"]))
    }

    @Test func everyOperationDeclaresTheCredentialItsRouteTakes() throws {
        let document = try Self.document()
        #expect(!document.operations.isEmpty)
        for operation in document.operations {
            let route = operation.route
            guard let served = GatewayRoutes.table.first(where: { Self.route($0) == route }) else {
                Issue.record("\(route) is documented but not in GatewayRoutes.table")
                continue
            }
            let expected: [String]
            switch served.access {
            case .anyone: expected = []
            case .tenantKey: expected = ["tenantKey"]
            case .admin: expected = ["adminToken"]
            }
            #expect(operation.security == expected, "\(route): security \(String(describing: operation.security))")
        }
    }

    @Test func everyOperationTakingACredentialAnswersErrorsWithTheErrorSchema() throws {
        let document = try Self.document()
        let credentialed = document.operations.filter { !($0.security ?? []).isEmpty }
        #expect(credentialed.count == GatewayRoutes.table.filter { $0.access != .anyone }.count)
        for operation in credentialed {
            let route = operation.route
            let errors = operation.responses.filter { $0.key.hasPrefix("4") || $0.key.hasPrefix("5") }
            #expect(errors["401"] != nil, "\(route) does not document 401")
            #expect(errors["403"] != nil, "\(route) does not document 403")
            for (status, lines) in errors.sorted(by: { $0.key < $1.key }) {
                let referencesError = document.referencesErrorSchema(lines)
                #expect(referencesError, "\(route) \(status) does not reference #/components/schemas/Error")
            }
        }
    }

    @Test func errorSchemaCheckNoticesAResponseWithoutIt() throws {
        let text = try Self.openAPIText()
        // Point every Unauthorized response at the Health schema instead of Error.
        let marker = "    Unauthorized:\n"
        let start = try #require(text.range(of: marker))
        let rest = text[start.upperBound...]
        let errorRef = try #require(rest.range(of: "#/components/schemas/Error'"))
        var broken = text
        broken.replaceSubrange(errorRef, with: "#/components/schemas/Health'")
        let document = OpenAPIDocument(text: broken)
        let token = try #require(document.operations.first { $0.route == "POST /token" })
        let unauthorized = try #require(token.responses["401"])
        let unauthorizedReferencesError = document.referencesErrorSchema(unauthorized)
        #expect(!unauthorizedReferencesError)
        let forbidden = try #require(token.responses["403"])
        let forbiddenReferencesError = document.referencesErrorSchema(forbidden)
        #expect(forbiddenReferencesError)
    }

    // MARK: - Helpers

    static func openAPIText() throws -> String {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // GatewayUnitTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()  // repository top
            .appendingPathComponent("openapi.yaml")
        return try String(contentsOf: url, encoding: .utf8)
    }

    static func document() throws -> OpenAPIDocument {
        OpenAPIDocument(text: try openAPIText())
    }

    static func route(_ route: GatewayRoutes.Route) -> String {
        "\(route.method) \(route.pattern)"
    }

    /// "METHOD /pattern" of every route of a router built as `serve` builds it, from the router's own list.
    /// Nothing here does I/O: the pool connects on first use, and no request is made.
    static func servedRoutes() async throws -> [String] {
        let logger = Logger(label: "openapi-routes-test")
        let configuration = try GatewayConfiguration.make([
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/unused",
            "TOKEN_GATEWAY_ADMIN_TOKEN": String(repeating: "0123456789abcdef", count: 2),
            "TOKEN_GATEWAY_ENCRYPTION_KEYS": Keyring.generateKeyLine(id: "k1"),
        ])
        let pool = PostgresPool(configuration: PostgresConfiguration(url: configuration.databaseURL), logger: logger)
        let http = try HTTPClient(configuration: HTTPClientConfiguration(), logger: logger)
        let store = GatewayStore(pool: pool, keyring: configuration.keyring)
        let metrics = Metrics()
        let cache = TokenCache()
        let salesforce = SalesforceTokenEndpoint(http: http, metrics: metrics, logger: logger)
        let tokens = TokenService(
            store: store, cache: cache, salesforce: salesforce, metrics: metrics, logger: logger,
            forceRefreshGraceSeconds: configuration.forceRefreshGraceSeconds,
            keyUpstreamLimitPerMinute: configuration.keyUpstreamLimitPerMinute)
        let api = GatewayAPI(
            configuration: configuration.apiSettings, store: store,
            keys: KeyRegistry(adminToken: configuration.adminToken),
            cache: cache, tokens: tokens, salesforce: salesforce, metrics: metrics, logger: logger,
            readiness: { (true, nil) })
        let routes = api.makeRouter().routes.map { "\($0.method) \($0.pattern)" }
        http.shutdown()
        await pool.close()
        return routes
    }

    struct Difference {
        var missing: [String]
        var extra: [String]
        var duplicates: [String]
    }

    static func difference(documented: [String], served: [String]) -> Difference {
        let documentedSet = Set(documented)
        let servedSet = Set(served)
        var seen = Set<String>()
        let duplicates = documented.filter { !seen.insert($0).inserted }
        return Difference(
            missing: servedSet.subtracting(documentedSet).sorted(),
            extra: documentedSet.subtracting(servedSet).sorted(),
            duplicates: duplicates.sorted())
    }

    /// Drops a path item (its key line and every more-indented line after it) from the YAML text.
    static func removingPathItem(_ path: String, from text: String) -> String {
        var kept: [Substring] = []
        var skipping = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "  \(path):" {
                skipping = true
                continue
            }
            if skipping, !OpenAPIDocument.isBlankOrComment(line), OpenAPIDocument.indent(of: line) <= 2 {
                skipping = false
            }
            if !skipping { kept.append(line) }
        }
        return kept.joined(separator: "\n")
    }
}

/// The parts of `openapi.yaml` the tests look at, read line by line.
struct OpenAPIDocument {
    struct Operation {
        var method: String
        var path: String
        /// Scheme names from the operation's `security:`; `[]` for `security: []`; nil when absent.
        var security: [String]?
        /// Status code → the lines of that response.
        var responses: [String: [Substring]]
        var route: String { "\(method) \(path)" }
    }

    static let methods: Set<String> = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
    static let pathItemFields: Set<String> = ["parameters", "summary", "description", "servers", "$ref"]

    var operations: [Operation] = []
    /// Reusable responses: name → its lines.
    var componentResponses: [String: [Substring]] = [:]
    /// Layout surprises the scanner met.
    var problems: [String] = []

    init(text: String) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let paths = Self.section(named: "paths", in: lines)
        if paths.isEmpty { problems.append("no top-level paths: section") }
        var currentPath: String?
        var index = 0
        while index < paths.count {
            let line = paths[index]
            index += 1
            if Self.isBlankOrComment(line) { continue }
            let indent = Self.indent(of: line)
            guard let key = Self.key(of: line) else { continue }
            if indent == 2 {
                currentPath = key.hasPrefix("/") ? key : nil
                if currentPath == nil { problems.append("2-space key under paths: that is not a path: \(key)") }
            } else if indent == 4, let path = currentPath {
                if Self.methods.contains(key) {
                    let block = Self.block(after: index - 1, in: paths, deeperThan: 4)
                    operations.append(Self.operation(method: key.uppercased(), path: path, lines: block))
                } else if !Self.pathItemFields.contains(key) {
                    problems.append("unexpected key \(key) under \(path)")
                }
            }
        }
        let components = Self.section(named: "components", in: lines)
        if let start = components.firstIndex(where: { Self.indent(of: $0) == 2 && Self.key(of: $0) == "responses" }) {
            let responses = Self.block(after: start, in: components, deeperThan: 2)
            for (offset, line) in responses.enumerated() where Self.indent(of: line) == 4 {
                if let name = Self.key(of: line) {
                    componentResponses[name] = Self.block(after: offset, in: responses, deeperThan: 4)
                }
            }
        }
    }

    /// Whether a response's lines reference the Error schema, directly or through one `components/responses` entry.
    func referencesErrorSchema(_ lines: [Substring]) -> Bool {
        for line in lines {
            if line.contains("'#/components/schemas/Error'") || line.contains("\"#/components/schemas/Error\"") {
                return true
            }
            if let range = line.range(of: "#/components/responses/") {
                let name = line[range.upperBound...].filter { $0 != "'" && $0 != "\"" }
                    .trimmingCharacters(in: .whitespaces)
                if let target = componentResponses[name],
                    target.contains(where: { $0.contains("#/components/schemas/Error'") })
                {
                    return true
                }
            }
        }
        return false
    }

    private static func operation(method: String, path: String, lines: [Substring]) -> Operation {
        var security: [String]?
        var responses: [String: [Substring]] = [:]
        for (offset, line) in lines.enumerated() where indent(of: line) == 6 {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed == "security: []" {
                security = []
            } else if trimmed == "security:" {
                security = block(after: offset, in: lines, deeperThan: 6)
                    .map { $0.trimmingCharacters(in: .whitespaces) }
                    .filter { $0.hasPrefix("- ") }
                    .compactMap { entry in entry.dropFirst(2).split(separator: ":").first.map(String.init) }
            } else if trimmed == "responses:" {
                let body = block(after: offset, in: lines, deeperThan: 6)
                for (statusOffset, statusLine) in body.enumerated() where indent(of: statusLine) == 8 {
                    if let status = key(of: statusLine) {
                        responses[status] = block(after: statusOffset, in: body, deeperThan: 8)
                    }
                }
            }
        }
        return Operation(method: method, path: path, security: security, responses: responses)
    }

    /// The lines of a top-level `name:` section, up to the next top-level key.
    private static func section(named name: String, in lines: [Substring]) -> [Substring] {
        guard let start = lines.firstIndex(of: Substring("\(name):")) else { return [] }
        var end = start + 1
        while end < lines.count, isBlankOrComment(lines[end]) || indent(of: lines[end]) > 0 { end += 1 }
        return Array(lines[(start + 1)..<end])
    }

    /// The lines after `lines[index]` that are blank or indented more than `indent`.
    private static func block(after index: Int, in lines: [Substring], deeperThan indent: Int) -> [Substring] {
        var result: [Substring] = []
        var next = index + 1
        while next < lines.count, isBlankOrComment(lines[next]) || Self.indent(of: lines[next]) > indent {
            result.append(lines[next])
            next += 1
        }
        return result
    }

    /// The key of a `key:` or `key: value` line, unquoted; nil for list items and other lines.
    private static func key(of line: Substring) -> String? {
        let trimmed = line.drop(while: { $0 == " " })
        guard !trimmed.hasPrefix("- "), let colon = trimmed.firstIndex(of: ":") else { return nil }
        let after = trimmed[trimmed.index(after: colon)...]
        guard after.isEmpty || after.hasPrefix(" ") else { return nil }
        var key = String(trimmed[..<colon])
        if key.count >= 2, let first = key.first, first == key.last, first == "'" || first == "\"" {
            key = String(key.dropFirst().dropLast())
        }
        return key
    }

    static func indent(of line: Substring) -> Int {
        line.prefix(while: { $0 == " " }).count
    }

    static func isBlankOrComment(_ line: Substring) -> Bool {
        let trimmed = line.drop(while: { $0 == " " })
        return trimmed.isEmpty || trimmed.hasPrefix("#")
    }
}
