import HTTPClient
import Logging

/// A GET of /healthz through the project's own HTTP client.
enum HealthProbe {
    static func check(url: String) async -> Bool {
        guard
            let client = try? HTTPClient(
                configuration: HTTPClientConfiguration(connectTimeout: .seconds(2), totalTimeout: .seconds(3)),
                logger: Logger(label: "healthcheck"))
        else { return false }
        defer { client.shutdown() }
        let response = try? await client.send(HTTPClientRequest(method: "GET", url: url))
        return response?.status == 200
    }
}
