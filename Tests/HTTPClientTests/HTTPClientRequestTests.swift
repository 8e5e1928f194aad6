import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import HTTPClient

/// Requests and form bodies against a real local server.
@Suite struct HTTPClientRequestTests {
    // MARK: Form encoding

    @Test func formEncodeKeepsUnreservedAndEscapesEverythingElse() {
        #expect(
            HTTPClientRequest.formEncode([("a", "1+2=3&4%5"), ("b c", "é.~-_Zz09")])
                == "a=1%2B2%3D3%264%255&b%20c=%C3%A9.~-_Zz09")
        #expect(HTTPClientRequest.formEncode([]) == "")
        #expect(HTTPClientRequest.formEncode([("k", "")]) == "k=")
        #expect(
            HTTPClientRequest.formEncode([("x", "/?#[]@!$'()*,;:")])
                == "x=%2F%3F%23%5B%5D%40%21%24%27%28%29%2A%2C%3B%3A")
    }

    @Test func formRequestIsAPostWithTheFormContentType() {
        let request = HTTPClientRequest.form(
            url: "http://x/token", fields: [("a", "b")], headers: [("Accept", "application/json")])
        #expect(request.method == "POST")
        #expect(request.headers.first(where: { $0.0 == "Content-Type" })?.1 == "application/x-www-form-urlencoded")
        #expect(request.headers.contains(where: { $0 == ("Accept", "application/json") }))
        #expect(request.body == Array("a=b".utf8))
    }

    @Test func durationsBecomeAtLeastOneMillisecondForCurl() {
        #expect(Duration.milliseconds(300).curlMilliseconds == 300)
        #expect(Duration.seconds(15).curlMilliseconds == 15000)
        #expect(Duration.microseconds(10).curlMilliseconds == 1)
        #expect(Duration.zero.curlMilliseconds == 1)
        #expect(Duration.seconds(-3).curlMilliseconds == 1)
    }

    // MARK: Requests against a real server

    @Test func formPostDeliversTheExactEncodedBodyAndContentType() async throws {
        let fields = [
            ("grant_type", "refresh_token"),
            ("refresh_token", "5Aep861+abc=def&x%y/z"),
            ("client_id", "3MVG9.ü€ 😀"),
            ("a b", "c.d-e_f~g"),
            ("empty", ""),
        ]
        try await withClientAndServer { client, server in
            let response = try await client.send(.form(url: server.url + "/echo", fields: fields))
            #expect(response.status == 200)
            let received = try #require(server.requests.last)
            #expect(received.method == "POST")
            #expect(received.path == "/echo")
            #expect(received.header("Content-Type") == "application/x-www-form-urlencoded")
            #expect(received.body == Array(HTTPClientRequest.formEncode(fields).utf8))
            let decoded = formDecode(String(decoding: received.body, as: UTF8.self))
            #expect(decoded.map(\.0) == fields.map(\.0))
            #expect(decoded.map(\.1) == fields.map(\.1))
            #expect(response.body == received.body)
        }
    }

    @Test func getReturnsStatusHeadersAndBody() async throws {
        try await withClientAndServer { client, server in
            let response = try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/headers"))
            #expect(response.status == 201)
            #expect(response.body == Array("hello".utf8))
            #expect(response.header("x-custom-header") == "Value-1")
            #expect(response.header("X-LOWER") == "two")
            #expect(response.headers.contains(where: { $0 == ("x-lower", "two") }), "names as received")
            #expect(response.headers.filter { $0.0 == "Set-Cookie" }.map(\.1) == ["a=1", "b=2"])
            #expect(response.header("Content-Length") == "5")
            #expect(response.header("missing") == nil)
            #expect(server.requests.last?.method == "GET")
            #expect(server.requests.last?.body == [])
        }
    }

    @Test func errorStatusesAreResponsesNotErrors() async throws {
        try await withClientAndServer { client, server in
            let notFound = try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/status/404"))
            #expect(notFound.status == 404)
            let failed = try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/status/503"))
            #expect(failed.status == 503)
            #expect(failed.body == Array("status 503".utf8))
        }
    }

    @Test func redirectsAreNotFollowed() async throws {
        try await withClientAndServer { client, server in
            let response = try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/redirect"))
            #expect(response.status == 302)
            #expect(response.header("Location") == "/echo")
            #expect(server.requests.count == 1)
        }
    }

    @Test func otherMethodsCarryTheirBodies() async throws {
        try await withClientAndServer { client, server in
            let put = try await client.send(
                HTTPClientRequest(
                    method: "PUT", url: server.url + "/echo", headers: [("Content-Type", "text/plain")],
                    body: Array("put body".utf8)))
            #expect(put.body == Array("put body".utf8))
            _ = try await client.send(HTTPClientRequest(method: "DELETE", url: server.url + "/thing"))
            let emptyPost = try await client.send(HTTPClientRequest(method: "POST", url: server.url + "/echo"))
            #expect(emptyPost.status == 200)
            let received = server.requests
            #expect(received.map(\.method) == ["PUT", "DELETE", "POST"])
            #expect(received[0].header("Content-Type") == "text/plain")
            #expect(received[2].header("Content-Length") == "0")
            #expect(received[2].body == [])
        }
    }

    @Test func largePostSendsNoExpectHeaderAndTheConfiguredUserAgent() async throws {
        let configuration = HTTPClientConfiguration(userAgent: "tgw-test/1")
        let body = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }  // includes NUL bytes
        try await withClientAndServer(configuration) { client, server in
            let start = ContinuousClock.now
            let response = try await client.send(
                HTTPClientRequest(
                    method: "POST", url: server.url + "/echo", headers: [("Content-Type", "application/octet-stream")],
                    body: body))
            timing("200 KB POST echoed", seconds(since: start))
            #expect(response.body == body)
            let received = try #require(server.requests.last)
            #expect(received.header("Expect") == nil)
            #expect(received.header("User-Agent") == "tgw-test/1")
            #expect(received.body == body)
        }
    }
}
