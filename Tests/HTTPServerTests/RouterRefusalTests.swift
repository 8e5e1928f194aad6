import Testing

@testable import HTTPServer

@Suite("Router refusals and literal table")
struct RouterRefusalTests {
    @Test func theApplicationSuppliesTheBodiesAndTheDefaultIsPlainText() {
        var plain = Router()
        plain.add("GET", "/a") { _, _ in .response(HTTPResponse(status: 200)) }
        guard case .response(let missing) = plain.handle(HTTPRequest(method: "GET", path: "/b")),
            case .response(let wrong) = plain.handle(HTTPRequest(method: "PUT", path: "/a"))
        else {
            Issue.record("expected answers")
            return
        }
        #expect(missing.status == 404)
        #expect(missing.headers["Content-Type"]?.hasPrefix("text/plain") == true)
        #expect(!String(decoding: missing.body, as: UTF8.self).contains("{"))
        #expect(wrong.status == 405)
        #expect(wrong.headers["Allow"] == "GET")
        var custom = Router(refusals: { _ in HTTPResponse(status: 299, body: Array("mine".utf8)) })
        custom.add("GET", "/a") { _, _ in .response(HTTPResponse(status: 200)) }
        guard case .response(let own) = custom.handle(HTTPRequest(method: "GET", path: "/b")) else {
            Issue.record("expected an answer")
            return
        }
        // The router keeps the status of the refusal whatever the application's response says.
        #expect(own.status == 404)
        #expect(own.body == Array("mine".utf8))
    }

    @Test func literalPathsByTableAgreeWithTheScan() {
        var router = Router()
        router.add("GET", "/tenants/{tenant}") { _, p in .response(HTTPResponse(status: 200, body: Array("p".utf8))) }
        router.add("GET", "/tenants/search") { _, _ in .response(HTTPResponse(status: 200, body: Array("l".utf8))) }
        router.add("GET", "/tenants/search") { _, _ in .response(HTTPResponse(status: 200, body: Array("2".utf8))) }
        func text(_ path: String, _ method: String = "GET") -> String {
            guard case .response(let response) = router.handle(HTTPRequest(method: method, path: path)) else {
                return "-"
            }
            return response.status == 200 ? String(decoding: response.body, as: UTF8.self) : "\(response.status)"
        }
        #expect(text("/tenants/search") == "l")  // the first literal route added, over the earlier parameter one
        #expect(text("/tenants/%73earch") == "l")  // encoded: found by the scan, same route
        #expect(text("/tenants/acme") == "p")
        #expect(text("/tenants/search", "HEAD") == "l")
        #expect(text("/tenants/search", "POST") == "405")
    }
}
