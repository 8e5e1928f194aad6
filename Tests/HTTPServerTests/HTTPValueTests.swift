import Foundation
import Testing

@testable import HTTPServer

@Suite("HTTP values")
struct HTTPValueTests {
    @Test func headersAreCaseInsensitiveAndKeepOrder() {
        var headers = HTTPHeaders([("Content-Type", "a")])
        headers.add("X-Thing", "1")
        headers.add("x-thing", "2")
        #expect(headers["content-type"] == "a")
        #expect(headers["X-THING"] == "1")
        #expect(headers.values(for: "x-Thing") == ["1", "2"])
        #expect(headers["missing"] == nil)
        #expect(headers.map { $0.0 } == ["Content-Type", "X-Thing", "x-thing"])
        headers.replaceOrAdd("X-THING", "3")
        #expect(headers.values(for: "x-thing") == ["3"])
    }

    @Test func queryItemsAreFormDecoded() {
        let request = HTTPRequest(
            method: "GET", path: "/", query: "a=1&b=hello+world&c=%E2%9C%93&d&e=x%3Dy=z&&f=%zz%4&g=%2B")
        let items = request.queryItems()
        #expect(items.map { $0.0 } == ["a", "b", "c", "d", "e", "f", "g"])
        #expect(items.map { $0.1 } == ["1", "hello world", "✓", "", "x=y=z", "%zz%4", "+"])
        #expect(HTTPRequest(method: "GET", path: "/").queryItems().isEmpty)
    }

    @Test func errorBodyIsValidJSONWhateverTheMessage() throws {
        let message = "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} emoji 🎉 sep \u{2028}"
        let response = HTTPResponse.error(status: 400, code: "invalid_request", message: message)
        #expect(response.status == 400)
        #expect(response.headers["Content-Type"] == "application/json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: String])
        #expect(object == ["error": "invalid_request", "message": message])
    }

    @Test func jsonResponseReplacesContentType() {
        let response = HTTPResponse.json(status: 201, Array("{}".utf8), headers: ["content-type": "text/plain"])
        #expect(response.headers.values(for: "Content-Type") == ["application/json"])
    }

    @Test func requestIDsAreValidatedAndGenerated() {
        #expect(RequestID.accept("Ab0._:-") == "Ab0._:-")
        #expect(RequestID.accept("") == nil)
        #expect(RequestID.accept("with space") == nil)
        #expect(RequestID.accept("é") == nil)
        #expect(RequestID.accept(String(repeating: "x", count: 129)) == nil)
        let a = RequestID.generate()
        #expect(a.count == 32)
        #expect(RequestID.accept(a) == a)
        #expect(a != RequestID.generate())
    }

    @Test func defaultConfigurationMatchesTheDocumentedDefaults() {
        let configuration = HTTPServerConfiguration()
        #expect(configuration.host == "0.0.0.0")
        #expect(configuration.port == 8080)
        #expect(configuration.threads == HTTPServerConfiguration.onlineCores)
        #expect(configuration.maxConnections == 10_000)
        #expect(configuration.connectionTimeoutSeconds == 60)
        #expect(configuration.headerTimeoutSeconds == 10)
        #expect(configuration.maxBodyBytes == 65536)
    }
}
