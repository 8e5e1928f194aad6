import Codecs
import Foundation

/// A reason some text cannot be parsed, without echoing the text (it may be a secret).
public struct ParseFailure: Error, Sendable {
    /// Why the text was refused, phrased to follow a field name.
    public let reason: String
}

/// The pieces of an absolute URL the gateway cares about. Userinfo is refused: it has no place in a Salesforce URL.
/// The host must be a DNS name or an IP literal (`HostName`), so no other parser can read a different host in it.
public struct ParsedURL: Sendable, Equatable {
    /// The scheme, lowercased.
    public var scheme: String
    /// The host, lowercased; an IPv6 literal keeps its brackets.
    public var host: String
    /// The explicit port; nil when the URL has none.
    public var port: Int?
    /// The path, empty or starting with `/`.
    public var path: String
    /// The query without its `?`; nil when there is none. A fragment is dropped.
    public var query: String?

    /// Parses `text`, or nil when `init(parsing:)` would throw.
    public init?(_ text: String) {
        guard let parsed = try? ParsedURL(parsing: text) else { return nil }
        self = parsed
    }

    /// Parses `text`; the failure's reason reads after the field name ("login_url: has a user name ...").
    public init(parsing text: String) throws(ParseFailure) {
        guard text.utf8.count <= 2048 else { throw ParseFailure(reason: "is longer than 2048 bytes") }
        guard !text.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } ?? false })
        else { throw ParseFailure(reason: "contains a space or a control character") }
        guard let schemeEnd = text.range(of: "://"),
            case let scheme = text[..<schemeEnd.lowerBound].lowercased(), !scheme.isEmpty,
            scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == ".") })
        else { throw ParseFailure(reason: "is not an absolute URL (scheme://host)") }
        var rest = text[schemeEnd.upperBound...]
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        var query: String?
        if let mark = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: mark)...])
            rest = rest[..<mark]
        }
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        guard !authority.isEmpty else { throw ParseFailure(reason: "has no host") }
        guard !authority.contains("@") else {
            throw ParseFailure(reason: "carries a user name or password before the host (user@host); remove it")
        }
        var host = authority
        var portText: Substring?
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = authority[...close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    throw ParseFailure(reason: "has a host that is not a valid DNS name or IP address")
                }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        }
        var port: Int?
        if let portText {
            guard (1...5).contains(portText.count), portText.allSatisfy({ $0.isASCII && $0.isNumber }),
                let number = Int(portText), (1...65535).contains(number)
            else { throw ParseFailure(reason: "has a port that is not a number from 1 to 65535") }
            port = number
        }
        let lowered = host.lowercased()
        guard HostName.isValid(lowered) else {
            throw ParseFailure(reason: "has a host that is not a valid DNS name or IP address")
        }
        self.scheme = scheme
        self.host = lowered
        self.port = port
        self.path = String(rest[authorityEnd...])
        self.query = query
    }
}

/// The `scheme://host[:port]` patterns a client's `login_url` must match, so nobody can aim the gateway elsewhere.
public struct UpstreamAllowList: Sendable, CustomStringConvertible {
    /// One pattern; `host` may start with `*.` (any subdomain, not the domain itself); no port means any port.
    public struct Pattern: Sendable, Equatable {
        /// The scheme to match exactly (`https` or `http`).
        public var scheme: String
        /// The host to match, lowercased, or `*.domain` for any subdomain.
        public var host: String
        /// The port to match; nil matches any port.
        public var port: Int?

        func matches(_ url: ParsedURL) -> Bool {
            guard url.scheme == scheme else { return false }
            if let port, (url.port ?? (url.scheme == "https" ? 443 : 80)) != port { return false }
            if host.hasPrefix("*.") {
                let suffix = host.dropFirst(1)
                return url.host.hasSuffix(suffix) && url.host.count > suffix.count
            }
            return url.host == host
        }
    }

    /// The patterns; a URL is allowed when it matches any of them.
    public var patterns: [Pattern]

    /// Salesforce's own https domains.
    public static let salesforceDefault = UpstreamAllowList(patterns: [
        Pattern(scheme: "https", host: "login.salesforce.com"),
        Pattern(scheme: "https", host: "test.salesforce.com"),
        Pattern(scheme: "https", host: "*.my.salesforce.com"),
        Pattern(scheme: "https", host: "*.salesforce.com"),
        Pattern(scheme: "https", host: "*.force.com"),
        Pattern(scheme: "https", host: "*.cloudforce.com"),
        Pattern(scheme: "https", host: "*.salesforce-sites.com"),
    ])

    /// A list of the given patterns.
    public init(patterns: [Pattern]) { self.patterns = patterns }

    /// Parses a comma-separated list of patterns.
    public init(parsing text: String) throws(ParseFailure) {
        var patterns: [Pattern] = []
        for item in text.split(separator: ",") {
            let entry = item.trimmingCharacters(in: .whitespaces)
            guard !entry.isEmpty else { continue }
            let wildcard = entry.contains("://*.")
            let probe = wildcard ? entry.replacingOccurrences(of: "://*.", with: "://wildcard.") : entry
            let url: ParsedURL
            do { url = try ParsedURL(parsing: probe) } catch {
                throw ParseFailure(reason: "has an entry that \(error.reason): \(entry)")
            }
            guard url.path.isEmpty || url.path == "/", url.query == nil, !entry.contains("#"),
                url.scheme == "https" || url.scheme == "http"
            else { throw ParseFailure(reason: "has an entry that is not http(s)://host[:port]: \(entry)") }
            let host = wildcard ? "*." + url.host.dropFirst("wildcard.".count) : url.host
            patterns.append(Pattern(scheme: url.scheme, host: host, port: url.port))
        }
        guard !patterns.isEmpty else { throw ParseFailure(reason: "is empty") }
        self.patterns = patterns
    }

    /// True when the URL's scheme, host and port match one pattern.
    public func allows(_ url: ParsedURL) -> Bool { patterns.contains { $0.matches(url) } }

    /// The patterns as a comma-separated list, in the form `init(parsing:)` reads.
    public var description: String {
        patterns.map { "\($0.scheme)://\($0.host)\($0.port.map { ":\($0)" } ?? "")" }.joined(separator: ",")
    }
}
