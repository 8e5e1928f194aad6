import Codecs
import Foundation

/// Finds the authorization code in what a person pasted: the raw code, the code still URL-encoded as copied from
/// the browser's address bar, or the whole redirect URL. The code is percent-decoded exactly once; a `+` stays a
/// `+` (Salesforce codes are base64-like, and `+` in them was never a space).
public enum AuthorizationCode {
    /// What `extract(_:)` found.
    public enum Extracted: Equatable, Sendable {
        case code(String)
        /// The redirect URL carries Salesforce's `error` instead of a code.
        case error(String, description: String?)
        case missing
    }

    /// The code, Salesforce's error, or `.missing`, from what a person pasted.
    public static func extract(_ input: String) -> Extracted {
        let text = input.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return .missing }
        let looksLikeURL = text.contains("://") || text.hasPrefix("?") || text.hasPrefix("/")
        let hasParameters = text.contains("code=") || text.contains("error=")
        if looksLikeURL || hasParameters {
            var query = Substring(text)
            if let mark = text.firstIndex(of: "?") { query = text[text.index(after: mark)...] }
            if let hash = query.firstIndex(of: "#") { query = query[..<hash] }
            var code: String?
            var error: String?
            var description: String?
            for pair in query.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let value = parts.count > 1 ? String(parts[1]) : ""
                switch parts[0] {
                case "code": code = Percent.decode(value)
                case "error": error = Percent.decode(value)
                case "error_description": description = Percent.formDecode(value)
                default: break
                }
            }
            if let error { return .error(error, description: description) }
            if let code, !code.isEmpty { return .code(code) }
            if looksLikeURL { return .missing }
        }
        return .code(Percent.decode(text))
    }
}

/// RFC 3339 UTC timestamps (`2026-11-29T07:00:00Z`) without a formatter object on the hot path.
public enum Timestamp {
    /// `epochSeconds` as `YYYY-MM-DDTHH:MM:SSZ`, fractions of a second dropped.
    public static func rfc3339(_ epochSeconds: Double) -> String {
        var seconds = time_t(epochSeconds.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):"
            + "\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}
