import Crypto
import Foundation
import _CryptoExtras

/// The claims of a JWT bearer assertion whose RS256 signature has been checked.
struct JWTAssertion: Sendable, Equatable {
    var issuer: String
    var subject: String
    var audiences: [String]
    var expiresAt: Double
    var jwtID: String?

    /// Why an assertion was refused before its claims could be judged.
    enum Failure: Error, Equatable {
        /// Not three base64url parts, not JSON, `alg` other than RS256, or missing claims.
        case malformed
        /// The signature does not verify with the given key.
        case badSignature
    }

    /// The issuer, read without checking the signature, to find the key that must verify it.
    static func unverifiedIssuer(of assertion: String) -> String? {
        let parts = assertion.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Encoding.base64URLDecode(parts[1]),
            let claims = Encoding.jsonObject(payload)
        else { return nil }
        return claims["iss"] as? String
    }

    /// Parses an assertion and verifies its RS256 (PKCS#1 v1.5, SHA-256) signature with `key`.
    static func verify(_ assertion: String, key: _RSA.Signing.PublicKey) throws(Failure) -> JWTAssertion {
        let parts = assertion.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3,
            let headerBytes = Encoding.base64URLDecode(parts[0]),
            let header = Encoding.jsonObject(headerBytes),
            let payloadBytes = Encoding.base64URLDecode(parts[1]),
            let claims = Encoding.jsonObject(payloadBytes),
            let signatureBytes = Encoding.base64URLDecode(parts[2])
        else { throw .malformed }
        guard header["alg"] as? String == "RS256" else { throw .malformed }
        let signingInput = Array((parts[0] + "." + parts[1]).utf8)
        let signature = _RSA.Signing.RSASignature(rawRepresentation: signatureBytes)
        guard key.isValidSignature(signature, for: SHA256.hash(data: signingInput), padding: .insecurePKCS1v1_5)
        else { throw .badSignature }

        let audiences: [String]
        if let single = claims["aud"] as? String {
            audiences = [single]
        } else if let many = claims["aud"] as? [Any] {
            audiences = many.compactMap { $0 as? String }
        } else {
            throw .malformed
        }
        guard let issuer = claims["iss"] as? String, let subject = claims["sub"] as? String,
            let expiresAt = Encoding.number(claims["exp"])
        else { throw .malformed }
        return JWTAssertion(
            issuer: issuer, subject: subject, audiences: audiences, expiresAt: expiresAt,
            jwtID: claims["jti"] as? String)
    }

    /// Builds a signed assertion, as a client would (used by tests and the demo).
    static func sign(claims: [String: Any], header: [String: Any] = ["alg": "RS256"], key: _RSA.Signing.PrivateKey)
        throws -> String
    {
        let signingInput = Encoding.base64URL(Encoding.json(header)) + "." + Encoding.base64URL(Encoding.json(claims))
        let signature = try key.signature(
            for: SHA256.hash(data: Array(signingInput.utf8)), padding: .insecurePKCS1v1_5)
        return signingInput + "." + Encoding.base64URL(signature.rawRepresentation)
    }
}
