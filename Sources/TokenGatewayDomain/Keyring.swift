import Codecs
import Crypto
import Foundation

/// The encryption keys of `TOKEN_GATEWAY_ENCRYPTION_KEYS`: the first seals, every one opens what it sealed.
/// Each secret is sealed with AES-256-GCM and bound to its row and field through the associated data,
/// so a ciphertext copied to another row, or to another field of the same row, does not open.
public struct Keyring: Sendable {
    /// One encryption key and the id stored with each value it sealed.
    public struct Key: Sendable {
        /// The key's id, written in front of every ciphertext it sealed.
        public let id: String
        let key: SymmetricKey
    }

    /// The keys in configured order; never empty.
    public let keys: [Key]
    /// The key that seals new values: the first one.
    public var primary: Key { keys[0] }

    /// Parses `keyid:base64,keyid:base64,...`; each key must decode to exactly 32 bytes and ids must be unique.
    public init(parsing text: String) throws(ParseFailure) {
        var keys: [Key] = []
        for item in text.split(separator: ",") {
            let entry = item.trimmingCharacters(in: .whitespaces)
            guard let colon = entry.firstIndex(of: ":") else {
                throw ParseFailure(reason: "must be keyid:base64-of-32-bytes entries separated by commas")
            }
            let id = String(entry[..<colon])
            guard (1...32).contains(id.count),
                id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
            else { throw ParseFailure(reason: "has a key id that is not 1 to 32 of [A-Za-z0-9_-]") }
            guard let bytes = Data(base64Encoded: String(entry[entry.index(after: colon)...])), bytes.count == 32 else {
                throw ParseFailure(reason: "has key '\(id)' that is not base64 of exactly 32 bytes")
            }
            guard !keys.contains(where: { $0.id == id }) else {
                throw ParseFailure(reason: "names key id '\(id)' twice")
            }
            keys.append(Key(id: id, key: SymmetricKey(data: bytes)))
        }
        guard !keys.isEmpty else { throw ParseFailure(reason: "holds no key") }
        self.keys = keys
    }

    /// A fresh key line for `token-gateway keygen`.
    public static func generateKeyLine(id: String) -> String {
        let key = SymmetricKey(size: .bits256)
        return id + ":" + key.withUnsafeBytes { Data($0).base64EncodedString() }
    }

    /// Where a sealed value belongs; it is authenticated with the ciphertext and never stored.
    public struct Binding: Sendable {
        let text: String
        /// The binding of `field` of the row `tenant`/`client`/`connection`.
        public init(field: String, tenant: String, client: String, connection: String = "") {
            text = "token-gateway/v1|\(field)|\(tenant)|\(client)|\(connection)"
        }
    }

    /// Seals `plaintext` under the primary key: `keyid:base64(nonce ‖ ciphertext ‖ tag)`.
    public func seal(_ plaintext: String, for binding: Binding) throws -> String {
        let box = try AES.GCM.seal(
            Array(plaintext.utf8), using: primary.key, nonce: AES.GCM.Nonce(),
            authenticating: Array(binding.text.utf8))
        guard let combined = box.combined else { throw SealError.sealFailed }
        return primary.id + ":" + combined.base64EncodedString()
    }

    /// Opens a sealed value; fails when the key id is unknown, the data was changed, or it belongs to another row.
    public func open(_ sealed: String, for binding: Binding) throws -> String {
        guard let colon = sealed.firstIndex(of: ":") else { throw SealError.malformed }
        let id = sealed[..<colon]
        guard let key = keys.first(where: { $0.id == id }) else { throw SealError.unknownKey(String(id)) }
        guard let combined = Data(base64Encoded: String(sealed[sealed.index(after: colon)...])) else {
            throw SealError.malformed
        }
        do {
            let box = try AES.GCM.SealedBox(combined: combined)
            let plain = try AES.GCM.open(box, using: key.key, authenticating: Array(binding.text.utf8))
            return String(decoding: plain, as: UTF8.self)
        } catch {
            throw SealError.authenticationFailed
        }
    }

    /// The key id a sealed value was sealed with.
    public static func keyID(of sealed: String) -> String? {
        sealed.firstIndex(of: ":").map { String(sealed[..<$0]) }
    }
}

/// Why a sealed secret could not be used. Never carries the secret.
public enum SealError: Error, Sendable, CustomStringConvertible {
    case sealFailed, malformed
    case unknownKey(String)
    case authenticationFailed
    /// What went wrong, without the secret or its ciphertext.
    public var description: String {
        switch self {
        case .sealFailed: "sealing failed"
        case .malformed: "a stored secret is malformed"
        case .unknownKey(let id):
            "a stored secret was sealed with key '\(id)', which TOKEN_GATEWAY_ENCRYPTION_KEYS no longer holds"
        case .authenticationFailed:
            "a stored secret does not open: wrong key, changed data, or it belongs to another row"
        }
    }
}
