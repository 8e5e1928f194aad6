/// Where a request's body ends, judged from its headers before any handler runs (RFC 9112 §6.1-6.3).
///
/// libmicrohttpd 0.9.75 prefers `Transfer-Encoding` over `Content-Length`, reads the first of several
/// `Content-Length`s, and waits for the end of the stream after an unknown transfer coding. A proxy in front
/// may decide otherwise, and the bytes one of them counts as body the other reads as the next request (request
/// smuggling). So any framing two parsers could read differently is refused, and the connection closed.
enum RequestFraming {
    /// nil when the framing is unambiguous; otherwise the refusal (400 or 501). Its answer carries
    /// `Connection: close`; queued before the body is read, it also makes libmicrohttpd close the connection
    /// without reading another byte.
    static func refusal(_ headers: HTTPHeaders) -> HTTPRefusal? {
        // The common case, one Content-Length or none and no Transfer-Encoding, without building a list.
        if headers.occurrences(of: "Transfer-Encoding") == 0 && headers.occurrences(of: "Content-Length") <= 1 {
            return nil
        }
        let encodings = headers.values(for: "Transfer-Encoding")
        let lengths = headers.values(for: "Content-Length")
        if !encodings.isEmpty && !lengths.isEmpty {
            return .badFraming(
                status: 400, reason: "Content-Length and Transfer-Encoding together are ambiguous; send one.")
        }
        let codings = encodings.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
            .map { $0.trimmingASCIIWhitespace().lowercased() }
        if !encodings.isEmpty && codings != ["chunked"] {
            return .badFraming(
                status: 501, reason: "The only Transfer-Encoding served is chunked; send chunked or Content-Length.")
        }
        if Set(lengths.map { $0.trimmingASCIIWhitespace() }).count > 1 {
            return .badFraming(status: 400, reason: "The request has Content-Length headers that differ; send one.")
        }
        return nil
    }

}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs (HTTP's optional whitespace).
    fileprivate func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
