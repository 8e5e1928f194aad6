import Foundation
import TestSupport
import Testing

@testable import HTTPServer

/// A raw request whose framing is ambiguous, and the one answer it must get.
struct FramingCase: Sendable, CustomTestStringConvertible {
    let name: String
    let raw: String
    let status: Int
    var testDescription: String { name }

    /// A request hidden after the first one; it must never be answered.
    static let hidden = "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    static let all: [FramingCase] = [
        FramingCase(
            name: "Content-Length and Transfer-Encoding: chunked",
            raw: "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "0\r\n\r\n" + hidden,
            status: 400),
        FramingCase(
            name: "two different Content-Lengths",
            raw: "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\nContent-Length: 47\r\n\r\nabc"
                + hidden,
            status: 400),
        FramingCase(
            name: "an unknown Transfer-Encoding",
            raw: "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip\r\n\r\n" + hidden,
            status: 501),
        FramingCase(
            name: "chunked after another coding",
            raw: "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + hidden,
            status: 501),
        FramingCase(
            name: "a GET with both framings",
            raw: "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                + "0\r\n\r\n" + hidden,
            status: 400),
    ]
}

/// Splits bytes read off the wire into the responses they hold (each framed by its Content-Length).
func parseResponses(_ bytes: [UInt8]) -> [WireResponse] {
    var rest = bytes[...]
    var responses: [WireResponse] = []
    while let headEnd = rest.firstRange(of: [13, 10, 13, 10]),
        var response = try? WireResponse(head: rest[..<headEnd.lowerBound])
    {
        let length = Int(response.header("Content-Length") ?? "0") ?? 0
        let bodyEnd = min(rest.endIndex, headEnd.upperBound + length)
        response.body = Array(rest[headEnd.upperBound..<bodyEnd])
        rest = rest[bodyEnd...]
        responses.append(response)
    }
    return responses
}

@Suite("HTTP hardening over real sockets")
struct HardeningTests {
    @Test(arguments: FramingCase.all)
    func ambiguousFramingGetsExactlyOneAnswerAndTheConnectionIsClosed(_ framing: FramingCase) async throws {
        try await withServer { server in
            let port = server.port
            let (bytes, closed) = try await onThread {
                let connection = try RawConnection(port: port, timeoutSeconds: 3)
                try connection.writeAll(Array(framing.raw.utf8))
                return connection.readUntilClosed()
            }
            let responses = parseResponses(bytes)
            #expect(responses.map(\.status) == [framing.status], "\(String(decoding: bytes, as: UTF8.self))")
            #expect(closed, "the connection stayed open after the answer")
            if let response = responses.first {
                #expect(
                    response.json?["error"] as? String
                        == (framing.status == 400 ? "invalid_request" : "not_implemented"))
                #expect(response.header("X-Content-Type-Options") == "nosniff")
                #expect(response.header("X-Request-Id")?.isEmpty == false)
            }
        }
    }

    @Test func chunkedBodiesAndRepeatedEqualContentLengthsAreStillServed() async throws {
        try await withServer { server in
            let port = server.port
            let responses = try await onThread {
                let connection = try RawConnection(port: port)
                try connection.writeAll(
                    Array(
                        ("POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                            + "5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n").utf8))
                let chunked = try connection.readResponse()
                try connection.writeAll(
                    Array(
                        "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
                            .utf8
                    ))
                let repeated = try connection.readResponse()
                return (chunked, repeated, try connection.request("GET", "/hello"))
            }
            #expect(responses.0.status == 200)
            #expect(responses.0.json?["length"] as? Int == 8)
            #expect(responses.1.status == 200)
            #expect(responses.1.json?["length"] as? Int == 3)
            #expect(responses.2.status == 200)
        }
    }

    @Test func everyAnswerCarriesNosniffOnce() async throws {
        try await withServer { server in
            let port = server.port
            let responses = try await onThread {
                let connection = try RawConnection(port: port)
                return try [
                    connection.request("GET", "/hello"), connection.request("GET", "/nowhere"),
                    connection.request("DELETE", "/hello"), connection.request("GET", "/bad-status"),
                    connection.request("GET", "/sleep/10"), connection.request("DELETE", "/empty"),
                    connection.request("POST", "/echo", body: Array(repeating: 65, count: 70_000)),
                ]
            }
            #expect(responses.map(\.status) == [200, 404, 405, 500, 200, 204, 200])
            for response in responses {
                #expect(
                    response.headers.filter { $0.0.lowercased() == "x-content-type-options" }.map(\.1) == ["nosniff"])
            }
        }
    }

    @Test func headOfAGetRouteReachesItAndAnswersHeadersWithoutABody() async throws {
        try await withServer { server in
            let port = server.port
            let (head, deferred, method, get) = try await onThread {
                let connection = try RawConnection(port: port)
                return (
                    try connection.request("HEAD", "/hello"), try connection.request("HEAD", "/sleep/10"),
                    try connection.request("HEAD", "/method"),
                    // Were a body sent after a HEAD answer, this response would not parse.
                    try connection.request("GET", "/hello")
                )
            }
            #expect(head.status == 200)
            #expect(head.header("Content-Length") == "5")
            #expect(head.header("Content-Type") == "text/plain")
            #expect(head.header("X-Content-Type-Options") == "nosniff")
            #expect(deferred.status == 200)
            #expect(method.status == 200)
            #expect(method.header("X-Method") == "HEAD")
            #expect(get.status == 200)
            #expect(get.text == "hello")
        }
    }
}
