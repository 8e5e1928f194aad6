import Foundation
import Synchronization

/// Names one connection's token: tenant, client, connection.
public struct ConnectionKey: Sendable, Hashable, CustomStringConvertible {
    public var tenant: String
    public var client: String
    public var connection: String
    public init(tenant: String, client: String, connection: String) {
        self.tenant = tenant
        self.client = client
        self.connection = connection
    }
    public var description: String { "\(tenant)/\(client)/\(connection)" }
}

/// An access token as the gateway hands it out. Times are seconds since the epoch.
public struct CachedToken: Sendable, Equatable {
    public var accessToken: String
    public var instanceURL: String
    public var identityURL: String
    public var scope: String?
    public var tokenType: String
    public var issuedAt: Double
    public var expiresAt: Double
    /// When the gateway received it from Salesforce (for the force-refresh grace).
    public var fetchedAt: Double

    public func remaining(now: Double) -> Double { expiresAt - now }
}

extension CachedToken {
    /// The token of a Salesforce answer: `expires_at` = Salesforce's `issued_at` + the client's TTL.
    public init(_ answer: SalesforceToken, ttlSeconds: Int, fetchedAt: Double) {
        let issuedAt = Double(answer.issuedAtMillis) / 1000
        self.init(
            accessToken: answer.accessToken, instanceURL: answer.instanceURL, identityURL: answer.identityURL,
            scope: answer.scope, tokenType: answer.tokenType, issuedAt: issuedAt,
            expiresAt: issuedAt + Double(ttlSeconds), fetchedAt: fetchedAt)
    }
}

/// The in-memory token cache: a hit touches neither PostgreSQL nor Salesforce.
public final class TokenCache: Sendable {
    private let entries = Mutex<[ConnectionKey: CachedToken]>([:])

    public init() {}

    public func get(_ key: ConnectionKey) -> CachedToken? { entries.withLock { $0[key] } }

    public func put(_ key: ConnectionKey, _ token: CachedToken) { entries.withLock { $0[key] = token } }

    /// Drops the entry only if it still holds `token` (a newer one fetched meanwhile stays).
    public func remove(_ key: ConnectionKey, ifAccessToken token: String) {
        entries.withLock { if $0[key]?.accessToken == token { $0[key] = nil } }
    }

    /// Drops entries matching a tenant, optionally a client and a connection (empty strings match all).
    public func invalidate(tenant: String, client: String = "", connection: String = "") {
        entries.withLock { entries in
            for key in entries.keys
            where key.tenant == tenant && (client.isEmpty || key.client == client)
                && (connection.isEmpty || key.connection == connection)
            {
                entries[key] = nil
            }
        }
    }

    public func removeAll() { entries.withLock { $0.removeAll() } }

    public var count: Int { entries.withLock { $0.count } }
}
