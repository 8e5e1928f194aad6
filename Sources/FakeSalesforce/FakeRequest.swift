import Foundation

/// A request as the core sees it.
struct FakeRequest {
    var method: String
    var path: String
    var query: String
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.0.lowercased() == lowered }?.1
    }

    /// The form fields of a `application/x-www-form-urlencoded` body; nil for another content type or bad encoding.
    func formFields() -> [String: String]? {
        guard let contentType = header("Content-Type"),
            contentType.lowercased().split(separator: ";").first?.trimmingCharacters(in: .whitespaces)
                == "application/x-www-form-urlencoded"
        else { return nil }
        return Encoding.formFields(String(decoding: body, as: UTF8.self))
    }

    /// The client id and secret of an HTTP Basic `Authorization` header.
    func basicCredentials() -> (String, String)? {
        guard let authorization = header("Authorization"), authorization.lowercased().hasPrefix("basic "),
            let decoded = Data(base64Encoded: String(authorization.dropFirst(6)).trimmingCharacters(in: .whitespaces))
        else { return nil }
        let text = String(decoding: decoded, as: UTF8.self)
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let id = String(text[..<colon]).removingPercentEncoding ?? String(text[..<colon])
        let secret = String(text[text.index(after: colon)...])
        return (id, secret.removingPercentEncoding ?? secret)
    }
}
