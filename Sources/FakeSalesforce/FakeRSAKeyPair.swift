import Crypto
import Foundation
import _CryptoExtras

/// A fresh RSA key pair for the JWT bearer grant in tests and the demo: register `publicKeyPEM` with an app,
/// give `privateKeyPEM` to the client, or sign assertions here.
public struct FakeRSAKeyPair: Sendable {
    private let privateKey: _RSA.Signing.PrivateKey

    /// Generates a 2048-bit key pair.
    public init() throws {
        privateKey = try _RSA.Signing.PrivateKey(keySize: .bits2048)
    }

    /// The public key as PEM (SPKI, `BEGIN PUBLIC KEY`).
    public var publicKeyPEM: String { privateKey.publicKey.pemRepresentation }

    /// The private key as PEM (PKCS#8, `BEGIN PRIVATE KEY`).
    public var privateKeyPEM: String { privateKey.pemRepresentation }

    /// Signs a JWT with RS256 (or the given header, to build wrong assertions in tests).
    public func signAssertion(claims: [String: any Sendable], header: [String: any Sendable] = ["alg": "RS256"])
        throws -> String
    {
        try JWTAssertion.sign(claims: claims, header: header, key: privateKey)
    }

    /// Signs the claims a Salesforce client sends: `iss` client id, `sub` username, `aud`, `exp` now + `lifetime`.
    public func signAssertion(
        clientID: String, username: String, audience: String = "https://login.salesforce.com",
        lifetimeSeconds: Double = 180, jwtID: String? = nil, now: Date = Date()
    ) throws -> String {
        var claims: [String: any Sendable] = [
            "iss": clientID, "sub": username, "aud": audience,
            "exp": Int(now.timeIntervalSince1970 + lifetimeSeconds),
        ]
        if let jwtID { claims["jti"] = jwtID }
        return try signAssertion(claims: claims)
    }
}
