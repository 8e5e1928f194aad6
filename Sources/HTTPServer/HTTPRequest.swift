/// One HTTP request as a handler sees it: the whole (bounded) body has arrived.
public struct HTTPRequest: Sendable {
    /// The method as sent, e.g. "GET" or "POST".
    public var method: String
    /// The path as received, still percent-encoded and without the query, e.g. "/tenants/acme".
    public var path: String
    /// The raw query without "?", "" when there is none.
    public var query: String
    /// The request headers.
    public var headers: HTTPHeaders
    /// The body; empty when `bodyTooLarge`.
    public var body: [UInt8]
    /// True when the body exceeded `HTTPServerConfiguration.maxBodyBytes`; the rest was discarded unread.
    public var bodyTooLarge: Bool
    /// The request's `X-Request-Id` when it is 1...128 characters of `[A-Za-z0-9._:-]`, else a fresh random id.
    public var requestID: String
    /// The peer's IP address, "" when unknown; formatted only when read.
    public var remoteAddress: String {
        get { peer.text }
        set { peer = .text(newValue) }
    }
    /// The peer as the socket gave it.
    var peer = PeerAddress.text("")

    /// Creates a request, for unit tests of routers and handlers.
    public init(
        method: String, path: String, query: String = "", headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [],
        requestID: String = "test"
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.bodyTooLarge = false
        self.requestID = requestID
    }

    /// The query as form-decoded `(name, value)` pairs in order ('+' is a space, `%XX` is decoded).
    public func queryItems() -> [(String, String)] {
        FormDecoding.pairs(query)
    }
}

/// Percent- and form-decoding of URL parts, tolerant of malformed input (bad escapes stay as they are).
enum FormDecoding {
    /// Splits `application/x-www-form-urlencoded` text into decoded pairs; empty pieces are skipped.
    static func pairs(_ text: String) -> [(String, String)] {
        var result: [(String, String)] = []
        for piece in text.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            if let equals = piece.firstIndex(of: UInt8(ascii: "=")) {
                let name = decode(piece[piece.startIndex..<equals], plusIsSpace: true)
                let value = decode(piece[piece.index(after: equals)...], plusIsSpace: true)
                result.append((name, value))
            } else {
                result.append((decode(piece, plusIsSpace: true), ""))
            }
        }
        return result
    }

    /// Decodes `%XX` escapes (and '+' when `plusIsSpace`); invalid UTF-8 becomes U+FFFD.
    static func decode<Bytes: Collection<UInt8>>(_ bytes: Bytes, plusIsSpace: Bool) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                let first = bytes.index(after: index)
                if first != bytes.endIndex {
                    let second = bytes.index(after: first)
                    if second != bytes.endIndex, let high = hexValue(bytes[first]), let low = hexValue(bytes[second]) {
                        output.append(high << 4 | low)
                        index = bytes.index(after: second)
                        continue
                    }
                }
                output.append(byte)
            } else if byte == UInt8(ascii: "+") && plusIsSpace {
                output.append(UInt8(ascii: " "))
            } else {
                output.append(byte)
            }
            index = bytes.index(after: index)
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes a path segment: `%XX` only, '+' stays '+'.
    static func decodePathSegment(_ segment: Substring) -> String {
        guard segment.utf8.contains(UInt8(ascii: "%")) else { return String(segment) }
        return decode(segment.utf8, plusIsSpace: false)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
