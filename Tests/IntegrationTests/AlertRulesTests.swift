import Foundation
import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

/// `Docker/prometheus/alerts.yml` may only use metrics a running gateway really exports.
@Suite struct AlertRulesTests {
    static func rulesText() throws -> String {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // IntegrationTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()  // repository top
            .appendingPathComponent("Docker/prometheus/alerts.yml")
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// The `token_gateway_...` names in `text`.
    static func metricNames(in text: String) -> Set<String> {
        let regex = /token_gateway_[a-z0-9_]+/
        return Set(text.matches(of: regex).map { String($0.output) })
    }

    /// Series names of a Prometheus exposition: every `# TYPE` name and every sample's name.
    static func exported(_ exposition: String) -> Set<String> {
        var names: Set<String> = []
        for line in exposition.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                names.insert(String(line.split(separator: " ")[2]))
            } else if !line.hasPrefix("#") {
                names.insert(String(line.prefix { $0 != "{" && $0 != " " }))
            }
        }
        return names
    }

    @Test func everyMetricTheAlertRulesUseIsOnARealMetricsPage() async throws {
        let used = Self.metricNames(in: try Self.rulesText())
        #expect(used.count >= 8, "\(used)")
        try await withHarness { h in
            // One refresh, so that histograms and labelled counters have samples too.
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient()
            #expect(try await h.exchange(key: key).status == 200)
            let page = try await h.call("GET", "/metrics", token: nil)
            #expect(page.status == 200)
            let exported = Self.exported(page.text)
            #expect(exported.contains("token_gateway_upstream_duration_seconds_bucket"))  // the page is real
            let missing = used.subtracting(exported)
            #expect(missing.isEmpty, "alerts.yml uses metrics /metrics does not show: \(missing.sorted())")
            #expect(!exported.contains("token_gateway_no_such_metric"))
        }
    }
}
