import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

@Suite struct HostNameTests {
    @Test(arguments: [
        "login.salesforce.com", "acme--dev.sandbox.my.salesforce.com", "localhost", "a.b-c.d1", "127.0.0.1",
        "255.255.255.255", "[::1]", "[::]", "[2001:db8::8a2e:370:7334]", "[::ffff:192.0.2.1]",
        "[1:2:3:4:5:6:7:8]",
    ])
    func dnsNamesAndIPLiteralsAreHosts(_ host: String) {
        #expect(HostName.isValid(host))
    }

    @Test(arguments: [
        "evil.com:1.salesforce.com", "a..b", ".a.com", "a.com.", "-a.com", "a-.com", "a_b.com", "",
        "127.1", "0x7f000001", "2130706433", "0177.0.0.1", "1.2.3.256", "a.1", "[::1%25eth0]", "[1::2::3]",
        "[1:2:3:4:5:6:7:8:9]", "[1:2:3:4:5:6:7]", "[12345::]", "[::1", "::1", "ex\u{e4}mple.com",
        String(repeating: "a", count: 64) + ".com",
    ])
    func anythingElseIsNot(_ host: String) {
        #expect(!HostName.isValid(host))
    }

    @Test func aColonInsideTheHostIsNotReadAsAPort() throws {
        // Read as host "evil.com:1.salesforce.com" port 443 it matched *.salesforce.com; now it is no URL at all.
        #expect(ParsedURL("https://evil.com:1.salesforce.com:443") == nil)
        #expect(!UpstreamAllowList.salesforceDefault.patterns.isEmpty)
        let parsed = try #require(ParsedURL("https://acme.my.salesforce.com:443/services"))
        #expect(parsed.host == "acme.my.salesforce.com" && parsed.port == 443 && parsed.path == "/services")
        #expect(try #require(ParsedURL("http://[::1]:8080")).host == "[::1]")
    }

    @Test func eachFailureSaysWhatIsWrong() {
        func reason(_ text: String) -> String? {
            do {
                _ = try ParsedURL(parsing: text)
                return nil
            } catch {
                return error.reason
            }
        }
        #expect(reason("https://user:pw@login.salesforce.com")?.contains("user name or password") == true)
        #expect(reason("https://login.salesforce.com:0")?.contains("port") == true)
        #expect(reason("https://login.salesforce.com:+443")?.contains("port") == true)
        #expect(reason("https://login.salesforce.com:99999")?.contains("port") == true)
        #expect(reason("https://evil.com:1.salesforce.com:443")?.contains("DNS name") == true)
        #expect(reason("https://")?.contains("no host") == true)
        #expect(reason("login.salesforce.com")?.contains("absolute") == true)
        // The reason never echoes the URL: a userinfo part may hold a password.
        #expect(reason("https://user:hunter2@x.com")?.contains("hunter2") == false)
    }

    @Test func allowListPatternsWithBadHostsAreRefused() {
        for entry in [
            "https://evil.com:1.salesforce.com", "https://user@x.example.com", "https://*.", "https://a..example.com",
            "http://127.0.0.1:0", "https://*.example.com:x",
        ] {
            #expect(throws: ParseFailure.self, "\(entry)") { try UpstreamAllowList(parsing: entry) }
        }
        #expect((try? UpstreamAllowList(parsing: "http://127.0.0.1:8443, https://*.example.com")) != nil)
    }
}
