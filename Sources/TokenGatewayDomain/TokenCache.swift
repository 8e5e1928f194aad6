import Codecs
import Foundation
import Synchronization

/// Names one connection's token: tenant, client, connection.
public struct ConnectionKey: Sendable, Hashable, CustomStringConvertible {
    /// The tenant's id.
    public var tenant: String
    /// The client's id within the tenant.
    public var client: String
    /// The connection's id within the client.
    public var connection: String
    /// Creates the key from its three ids.
    public init(tenant: String, client: String, connection: String) {
        self.tenant = tenant
        self.client = client
        self.connection = connection
    }
    /// `tenant/client/connection`, for logs.
    public var description: String { "\(tenant)/\(client)/\(connection)" }
}

/// An access token as the gateway hands it out. Times are seconds since the epoch.
public struct CachedToken: Sendable, Equatable {
    /// The bearer token itself; a secret, never logged.
    public var accessToken: String
    /// The org's instance URL the token is valid for.
    public var instanceURL: String
    /// Salesforce's identity URL of the token's user.
    public var identityURL: String
    /// The scopes Salesforce granted, space-separated; nil when it did not say.
    public var scope: String?
    /// The token type Salesforce returned (normally `Bearer`).
    public var tokenType: String
    /// Salesforce's `issued_at`, in seconds.
    public var issuedAt: Double
    /// When the gateway takes the token to expire.
    public var expiresAt: Double
    /// When the gateway received it from Salesforce (for the force-refresh grace).
    public var fetchedAt: Double

    /// Seconds the token has left at `now`; negative once expired.
    public func remaining(now: Double) -> Double { expiresAt - now }

    /// Creates the value from each of its stored properties.
    public init(
        accessToken: String, instanceURL: String, identityURL: String, scope: String? = nil, tokenType: String,
        issuedAt: Double, expiresAt: Double, fetchedAt: Double
    ) {
        self.accessToken = accessToken
        self.instanceURL = instanceURL
        self.identityURL = identityURL
        self.scope = scope
        self.tokenType = tokenType
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.fetchedAt = fetchedAt
    }
}

extension CachedToken {
    /// The token of a Salesforce answer: `expires_at` = Salesforce's `issued_at` + the client's TTL, or earlier
    /// when introspection said so (`introspectedExp`, seconds since the epoch).
    public init(_ answer: SalesforceToken, ttlSeconds: Int, fetchedAt: Double, introspectedExp: Int64? = nil) {
        self.init(
            accessToken: answer.accessToken, instanceURL: answer.instanceURL, identityURL: answer.identityURL,
            scope: answer.scope, tokenType: answer.tokenType, issuedAt: Double(answer.issuedAtMillis) / 1000,
            expiresAt: TokenExpiry.expiresAt(
                issuedAtMillis: answer.issuedAtMillis, tokenTTLSeconds: ttlSeconds, introspectedExp: introspectedExp),
            fetchedAt: fetchedAt)
    }

    /// When a token that callers ask for with at most `askedTTL` seconds left should be renewed in the background:
    /// `margin` seconds before its remaining lifetime falls to `askedTTL`, but never before half of its lifetime.
    public func renewAt(askedTTL: Double, margin: Double) -> Double {
        max(issuedAt + (expiresAt - issuedAt) / 2, expiresAt - askedTTL - margin)
    }
}

/// The in-memory token cache: a hit touches neither PostgreSQL nor Salesforce. Each entry also remembers the
/// largest `min_ttl_seconds` asked of its token since it was fetched (its demand), so that tokens in use are
/// renewed ahead of time and tokens nobody asks for are left to expire.
public final class TokenCache: Sendable {
    struct Entry {
        var token: CachedToken {
            didSet { hitBody = nil }
        }
        /// The answer body of a cache hit on `token`, rendered once (`hit(_:need:now:render:)`); nil until asked.
        var hitBody: [UInt8]?
        /// The largest `min_ttl_seconds` asked of this token; nil when nobody asked since it was fetched.
        var demand: Double?
        /// No background renewal before this time (after a failed one).
        var retryAt: Double = 0
        var failures: Int = 0
    }

    private let entries = Mutex<[ConnectionKey: Entry]>([:])

    /// An empty cache.
    public init() {}

    /// The cached token of `key`, without recording demand (for reads that are not a caller's request).
    public func get(_ key: ConnectionKey) -> CachedToken? { entries.withLock { $0[key]?.token } }

    /// What one locked lookup of a request's hit found (`hit(_:need:now:render:)`).
    public enum Hit: Sendable {
        /// The token satisfies the request: the answer body, rendered once per cached token.
        case served([UInt8])
        /// A `force_refresh` found a token too old: the caller drops it (`remove(_:ifAccessToken:)`).
        case drop(accessToken: String)
        /// Nothing usable cached.
        case miss
    }

    /// A request's hit in one locked lookup: records the demand (`need.minTTL`), makes the fast path's choice
    /// (`TokenNeed.cacheChoice`) and, when the token serves, gives its answer body, rendered by `render` the first
    /// time and kept in the entry until its token changes.
    public func hit(_ key: ConnectionKey, need: TokenNeed, now: Double, render: (CachedToken) -> [UInt8]) -> Hit {
        entries.withLock { entries in
            guard let index = entries.index(forKey: key) else { return .miss }
            return Self.hit(&entries.values[index], need: need, now: now, render: render)
        }
    }

    private static func hit(_ entry: inout Entry, need: TokenNeed, now: Double, render: (CachedToken) -> [UInt8])
        -> Hit
    {
        entry.demand = max(entry.demand ?? 0, need.minTTL)
        switch need.cacheChoice(entry.token, now: now) {
        case .serve:
            if let body = entry.hitBody { return .served(body) }
            let body = render(entry.token)
            entry.hitBody = body
            return .served(body)
        case .drop: return .drop(accessToken: entry.token.accessToken)
        case .pass: return .miss
        }
    }

    /// Caches a new token; `demand` is the `min_ttl_seconds` of the request it was fetched for (nil for a
    /// background renewal: nobody has asked for the new token yet).
    public func put(_ key: ConnectionKey, _ token: CachedToken, demand: Double? = nil) {
        entries.withLock { entries in
            guard var entry = entries[key], entry.token.accessToken == token.accessToken else {
                entries[key] = Entry(token: token, demand: demand)
                return
            }
            // The same token again (read back from the database): keep what was asked of it and its back-off.
            entry.token = token
            if let demand { entry.demand = max(entry.demand ?? 0, demand) }
            entries[key] = entry
        }
    }

    /// Drops the entry only if it still holds `token` (a newer one fetched meanwhile stays).
    public func remove(_ key: ConnectionKey, ifAccessToken token: String) {
        entries.withLock { if $0[key]?.token.accessToken == token { $0[key] = nil } }
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

    /// Drops every entry.
    public func removeAll() { entries.withLock { $0.removeAll() } }

    /// How many tokens are cached.
    public var count: Int { entries.withLock { $0.count } }

    /// Tokens in use whose renewal is due at `now`, with the demand to renew them for, soonest first.
    public func dueForRenewal(now: Double, margin: Double, limit: Int) -> [(key: ConnectionKey, demand: Double)] {
        let due = entries.withLock { entries in
            entries.compactMap { key, entry -> (ConnectionKey, Double, Double)? in
                guard let demand = entry.demand, now >= entry.retryAt, entry.token.remaining(now: now) > 0 else {
                    return nil
                }
                let at = entry.token.renewAt(askedTTL: demand, margin: margin)
                return now >= at ? (key, demand, at) : nil
            }
        }
        return due.sorted { $0.2 < $1.2 }.prefix(limit).map { ($0.0, $0.1) }
    }

    /// Backs off the background renewal of `key` after a failure (5 s, doubling, at most 5 min).
    public func renewalFailed(_ key: ConnectionKey, now: Double) {
        entries.withLock { entries in
            guard var entry = entries[key] else { return }
            entry.failures += 1
            entry.retryAt = now + min(300, 5 * pow(2, Double(entry.failures - 1)))
            entries[key] = entry
        }
    }
}
