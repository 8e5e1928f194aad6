import Codecs
import Crypto
import Foundation
import Synchronization

/// Who called: the admin, or a tenant API key.
public enum Caller: Sendable, Equatable {
    case admin
    case key(id: String, tenant: String)

    /// How the audit log names the caller.
    public var actor: String {
        switch self {
        case .admin: "admin"
        case .key(let id, _): "key:\(id)"
        }
    }
}

/// Tenant API keys, held in memory as SHA-256 hashes so the hot path checks a key without the database.
/// Keys look like `tgw_<16 hex id>_<43 base64url chars>` (32 random bytes); only the hash is stored anywhere.
public final class KeyRegistry: Sendable {
    struct Entry: Sendable {
        var tenant: String
        var hash: [UInt8]
        /// The key bytes last presented that matched `hash`: the next presentation of the same key is checked by a
        /// constant-time comparison instead of SHA-256. Gone with the entry (key deleted, registry reloaded).
        var matched: [UInt8]? = nil
    }

    struct Usage {
        var lastUsed: [String: Double] = [:]
        var issued: [String: (tenant: String, count: Int)] = [:]
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let usage = Mutex(Usage())
    /// Key ids the database did not know, with when that was seen: repeated guesses are refused without a query.
    private let unknown = Mutex<[String: Double]>([:])
    static let unknownMemorySeconds = 60.0
    private let adminHash: [UInt8]

    /// An empty registry that accepts `adminToken` as the admin credential.
    public init(adminToken: String) {
        adminHash = Array(SHA256.hash(data: Array(adminToken.utf8)))
    }

    /// A new key: its id, the key to show once, and the hash to store.
    public static func generate() -> (id: String, key: String, hash: String) {
        var idBytes = [UInt8](repeating: 0, count: 8)
        var secret = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in idBytes.indices { idBytes[index] = generator.next() }
        for index in secret.indices { secret[index] = generator.next() }
        let id = Hex.encode(idBytes)
        let key = "tgw_\(id)_" + Base64URL.encode(secret)
        return (id, key, hexHash(key))
    }

    /// The lowercase hex SHA-256 of `text`: how an API key is stored.
    public static func hexHash(_ text: String) -> String {
        Hex.encode(SHA256.hash(data: Array(text.utf8)))
    }

    /// The key id inside a presented key, if it has the shape of one.
    public static func keyID(of presented: String) -> String? { keyID(of: Array(presented.utf8)[...]) }

    /// The result of checking a bearer credential in memory.
    public enum Check: Sendable, Equatable {
        case admin
        case key(id: String, tenant: String)
        /// Shaped like a key this replica does not hold yet (made on another replica a moment ago): ask the database.
        case unknownKey(id: String)
        case invalid
    }

    /// Checks `Authorization: Bearer ...` in constant time against the admin token and the key hashes.
    public func check(authorization: String?) -> Check {
        guard let presented = Self.bearerCredential(authorization) else { return .invalid }
        let id = Self.keyID(of: presented)
        // A key already matched: the same bytes again, compared in constant time (no hash on the hot path).
        if let id, let entry = entries.withLock({ $0[id] }), let matched = entry.matched,
            Self.constantTimeEqual(presented, matched)
        {
            return .key(id: id, tenant: entry.tenant)
        }
        let hash = Array(SHA256.hash(data: presented))
        if Self.constantTimeEqual(hash, adminHash) { return .admin }
        guard let id else { return .invalid }
        guard let entry = entries.withLock({ $0[id] }) else {
            let now = WallClock.now
            if let seen = unknown.withLock({ $0[id] }), now - seen < Self.unknownMemorySeconds { return .invalid }
            return .unknownKey(id: id)
        }
        guard Self.constantTimeEqual(hash, entry.hash) else { return .invalid }
        // Remembered only if the entry is still the one checked (a concurrent delete or reload wins).
        entries.withLock { entries in
            if entries[id]?.hash == entry.hash { entries[id]?.matched = Array(presented) }
        }
        return .key(id: id, tenant: entry.tenant)
    }

    /// Checks a presented key against a hash read from the database, and remembers it when it matches.
    public func admit(authorization: String?, id: String, tenant: String, hexHash: String) -> Bool {
        guard let presented = Self.bearerCredential(authorization) else { return false }
        let hash = Array(SHA256.hash(data: presented))
        guard let stored = Hex.decode(hexHash), Self.constantTimeEqual(hash, stored) else { return false }
        entries.withLock { $0[id] = Entry(tenant: tenant, hash: stored) }
        return true
    }

    /// The bytes after `Bearer ` (scheme case-insensitive, surrounding spaces dropped), without Foundation on the hot path.
    static func bearerCredential(_ header: String?) -> ArraySlice<UInt8>? {
        guard let header else { return nil }
        let bytes = Array(header.utf8)
        let scheme: [UInt8] = Array("bearer ".utf8)
        guard bytes.count > scheme.count,
            zip(bytes.prefix(scheme.count), scheme).allSatisfy({ ($0 | 0x20) == $1 || ($0 == 0x20 && $1 == 0x20) })
        else { return nil }
        var credential = bytes[scheme.count...]
        while let first = credential.first, first == 0x20 || first == 0x09 { credential = credential.dropFirst() }
        while let last = credential.last, last == 0x20 || last == 0x09 { credential = credential.dropLast() }
        return credential.isEmpty ? nil : credential
    }

    /// The key id inside presented key bytes.
    static func keyID(of presented: ArraySlice<UInt8>) -> String? {
        guard presented.count == 4 + 16 + 1 + 43, presented.starts(with: Array("tgw_".utf8)),
            presented[presented.startIndex + 20] == UInt8(ascii: "_")
        else { return nil }
        let id = presented[(presented.startIndex + 4)..<(presented.startIndex + 20)]
        guard id.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else { return nil }
        return String(decoding: id, as: UTF8.self)
    }

    static func constantTimeEqual<A: RandomAccessCollection<UInt8>, B: RandomAccessCollection<UInt8>>(
        _ a: A, _ b: B
    ) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }

    /// Replaces the whole registry (at start, after the listener reconnects, and periodically).
    public func replaceAll(_ keys: [(id: String, tenant: String, hash: String)]) {
        var fresh: [String: Entry] = [:]
        for key in keys {
            if let bytes = Hex.decode(key.hash) { fresh[key.id] = Entry(tenant: key.tenant, hash: bytes) }
        }
        entries.withLock { $0 = fresh }
    }

    /// Adds or replaces key `id` of `tenant`; a `hexHash` that is not hex is ignored.
    public func insert(id: String, tenant: String, hexHash: String) {
        guard let bytes = Hex.decode(hexHash) else { return }
        entries.withLock { $0[id] = Entry(tenant: tenant, hash: bytes) }
    }

    /// Remembers that the database has no key `id` (bounded: the memory is cleared past 10,000 ids).
    public func rememberUnknown(id: String, now: Double = WallClock.now) {
        unknown.withLock { unknown in
            if unknown.count >= 10_000 { unknown.removeAll() }
            unknown[id] = now
        }
    }

    /// Forgets key `id`, once it is deleted from the database (here or on another replica).
    public func remove(id: String) { _ = entries.withLock { $0.removeValue(forKey: id) } }

    /// Forgets every key of `tenant`.
    public func removeTenant(_ tenant: String) {
        entries.withLock { entries in entries = entries.filter { $0.value.tenant != tenant } }
    }

    /// Notes a use of a key; written to `last_used_at` in batches, not per request.
    public func markUsed(id: String, now: Double) { usage.withLock { $0.lastUsed[id] = now } }

    /// Notes a token handed out through a key (the audit log's per-key counts).
    public func tokenIssued(id: String, tenant: String) {
        usage.withLock { $0.issued[id, default: (tenant, 0)].count += 1 }
    }

    /// Takes the usage noted since the last call.
    public func drainUsage() -> (lastUsed: [String: Double], issued: [String: (tenant: String, count: Int)]) {
        usage.withLock { usage in
            defer { usage = Usage() }
            return (usage.lastUsed, usage.issued)
        }
    }
}
