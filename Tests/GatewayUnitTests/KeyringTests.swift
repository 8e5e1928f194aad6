import Foundation
import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

@Suite struct KeyringTests {
    static func keyring(_ ids: [String]) throws -> Keyring {
        try Keyring(parsing: ids.map { Keyring.generateKeyLine(id: $0) }.joined(separator: ","))
    }

    @Test func sealedSecretOpensOnlyForItsOwnRowAndField() throws {
        let keyring = try Self.keyring(["a"])
        let here = Keyring.Binding(field: "refresh_token", tenant: "t", client: "c", connection: "default")
        let sealed = try keyring.seal("5Aep861secret", for: here)
        #expect(!sealed.contains("5Aep861secret"))
        #expect(try keyring.open(sealed, for: here) == "5Aep861secret")
        #expect(throws: SealError.self) {
            try keyring.open(sealed, for: .init(field: "refresh_token", tenant: "t", client: "c", connection: "other"))
        }
        #expect(throws: SealError.self) {
            try keyring.open(sealed, for: .init(field: "access_token", tenant: "t", client: "c", connection: "default"))
        }
        #expect(throws: SealError.self) {
            try keyring.open(
                sealed, for: .init(field: "refresh_token", tenant: "u", client: "c", connection: "default"))
        }
    }

    @Test func olderKeysStillOpenAfterANewKeyIsPutFirst() throws {
        let old = try Self.keyring(["old"])
        let binding = Keyring.Binding(field: "client_secret", tenant: "t", client: "c")
        let sealed = try old.seal("s3cret", for: binding)
        let oldLine = Keyring.generateKeyLine(id: "x")  // unrelated, to show ordering does not matter
        let rotated = try Keyring(
            parsing: Keyring.generateKeyLine(id: "new") + "," + oldLine + "," + Self.line(of: old))
        #expect(try rotated.open(sealed, for: binding) == "s3cret")
        #expect(Keyring.keyID(of: try rotated.seal("s3cret", for: binding)) == "new")
        let withoutOld = try Keyring(parsing: Keyring.generateKeyLine(id: "new"))
        #expect(throws: SealError.self) { try withoutOld.open(sealed, for: binding) }
    }

    static func line(of keyring: Keyring) -> String {
        keyring.primary.id + ":" + keyring.primary.key.withUnsafeBytes { Data($0).base64EncodedString() }
    }

    @Test func tamperedCiphertextDoesNotOpen() throws {
        let keyring = try Self.keyring(["a"])
        let binding = Keyring.Binding(field: "f", tenant: "t", client: "c")
        var sealed = Array(try keyring.seal("value", for: binding))
        let index = sealed.count - 5
        sealed[index] = sealed[index] == "A" ? "B" : "A"
        #expect(throws: SealError.self) { try keyring.open(String(sealed), for: binding) }
    }
}
