import Testing

@testable import HTTPServer

@Suite("Router")
struct RouterTests {
    func router() -> Router {
        var router = Router(refusals: jsonRefusals)
        router.add("GET", "/tenants") { _, _ in .response(HTTPResponse(status: 200, body: Array("list".utf8))) }
        router.add("POST", "/tenants") { _, _ in .response(HTTPResponse(status: 201)) }
        router.add("GET", "/tenants/{tenant}") { _, p in
            .response(HTTPResponse(status: 200, body: Array("tenant=\(p["tenant"] ?? "-")".utf8)))
        }
        router.add("GET", "/tenants/search") { _, _ in .response(HTTPResponse(status: 200, body: Array("search".utf8)))
        }
        router.add("DELETE", "/tenants/{tenant}/clients/{client}") { _, p in
            .response(HTTPResponse(status: 204, body: Array("\(p["tenant"] ?? "-")|\(p["client"] ?? "-")".utf8)))
        }
        return router
    }

    func body(_ result: HTTPHandlerResult) -> (Int, String, HTTPHeaders) {
        guard case .response(let response) = result else { return (-1, "", HTTPHeaders()) }
        return (response.status, String(decoding: response.body, as: UTF8.self), response.headers)
    }

    @Test func parametersAreMatchedAndPercentDecoded() {
        let (status, text, _) = body(
            router().handle(HTTPRequest(method: "DELETE", path: "/tenants/ac%20me/clients/crm+sync%C3%A9")))
        #expect(status == 204)
        #expect(text == "ac me|crm+syncé")  // path segments: '+' stays '+'
    }

    @Test func anEncodedSlashStaysInsideOneParameter() {
        guard case .found(let pattern, let parameters, _) = router().match(method: "GET", path: "/tenants/a%2Fb")
        else {
            Issue.record("no match")
            return
        }
        #expect(pattern == "/tenants/{tenant}")
        #expect(parameters["tenant"] == "a/b")
        // A real slash is a segment boundary, so the two-segment tenant route does not match.
        guard case .notFound = router().match(method: "GET", path: "/tenants/a/b") else {
            Issue.record("a/b should not match /tenants/{tenant}")
            return
        }
    }

    @Test func aLiteralSegmentWinsOverAParameterWhateverTheOrder() {
        #expect(body(router().handle(HTTPRequest(method: "GET", path: "/tenants/search"))).1 == "search")
        #expect(body(router().handle(HTTPRequest(method: "GET", path: "/tenants/acme"))).1 == "tenant=acme")
    }

    @Test func unknownPathIs404WithTheErrorBody() {
        for path in ["/", "/nope", "/tenants/acme/extra", "/tenants/", "/tenants//clients/x"] {
            let (status, text, headers) = body(router().handle(HTTPRequest(method: "GET", path: path)))
            #expect(status == 404, "\(path)")
            #expect(text.contains("\"error\":\"not_found\""))
            #expect(headers["content-type"] == "application/json")
        }
    }

    @Test func wrongMethodIs405WithAllowInRegistrationOrder() {
        let (status, text, headers) = body(router().handle(HTTPRequest(method: "PUT", path: "/tenants")))
        #expect(status == 405)
        #expect(headers["Allow"] == "GET, POST")
        #expect(text.contains("\"error\":\"method_not_allowed\""))
        guard case .methodNotAllowed(let allow) = router().match(method: "POST", path: "/tenants/x/clients/y") else {
            Issue.record("expected 405")
            return
        }
        #expect(allow == ["DELETE"])
    }

    @Test func headFallsBackToGet() {
        #expect(body(router().handle(HTTPRequest(method: "HEAD", path: "/tenants"))).1 == "list")
    }

    @Test func routesAreListedInInsertionOrder() {
        #expect(
            router().routes.map { "\($0.method) \($0.pattern)" } == [
                "GET /tenants", "POST /tenants", "GET /tenants/{tenant}", "GET /tenants/search",
                "DELETE /tenants/{tenant}/clients/{client}",
            ])
    }

    @Test func emptyParameterDoesNotMatch() {
        guard case .notFound = router().match(method: "DELETE", path: "/tenants//clients/x") else {
            Issue.record("empty parameter matched")
            return
        }
    }
}
