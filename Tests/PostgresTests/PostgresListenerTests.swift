import Foundation
import Logging
import Postgres
import Synchronization
import TestSupport
import Testing

@Suite("PostgresListener")
struct PostgresListenerTests {
    @Test func notificationArrivesWithChannelAndPayload() async throws {
        let url = try await SharedPostgres.freshDatabase()
        let received = Recorder<(String, String, ContinuousClock.Instant)>()
        let reconnects = Counter()
        let listener = PostgresListener(
            url: url, channels: ["grants_changed", "tenants"], logger: testLogger,
            onNotification: { received.append(($0, $1, .now)) },
            onReconnect: { reconnects.increment() })
        listener.start()
        defer { listener.stop() }
        #expect(await eventually(within: 5) { listener.isConnected })

        let pool = PostgresPool(configuration: .init(url: url), logger: testLogger)
        defer { Task { await pool.close() } }
        let payload = "tenant-7 Grüße 🚀"
        let sent = ContinuousClock.now
        _ = try await pool.query("SELECT pg_notify($1, $2)", ["grants_changed", payload])
        _ = try await pool.query("SELECT pg_notify($1, $2)", ["tenants", ""])
        _ = try await pool.query("SELECT pg_notify($1, $2)", ["not_listened", "x"])
        #expect(await eventually(within: 1) { received.count >= 2 })
        let all = received.all
        #expect(all.map(\.0) == ["grants_changed", "tenants"])
        #expect(all.map(\.1) == [payload, ""])
        if let first = all.first {
            print("notify latency: \(String(format: "%.1f", toSeconds(first.2 - sent) * 1000)) ms")
        }
        #expect(reconnects.value == 0)

        let stopStart = ContinuousClock.now
        listener.stop()
        let stopTook = seconds(since: stopStart)
        print("listener stop took \(String(format: "%.3f", stopTook)) s")
        #expect(stopTook < 0.5)
        #expect(!listener.isConnected)
        listener.stop()  // idempotent
    }

    @Test func listenerReconnectsAfterTheServerRestartsAndReportsIt() async throws {
        let cluster = try await startPrivateCluster()
        defer { cluster.destroy() }
        let received = Recorder<(String, String)>()
        let reconnects = Counter()
        let listener = PostgresListener(
            url: cluster.url, channels: ["events"], logger: testLogger,
            onNotification: { received.append(($0, $1)) },
            onReconnect: { reconnects.increment() })
        listener.start()
        defer { listener.stop() }
        #expect(await eventually(within: 5) { listener.isConnected })

        try await onThread { try cluster.stopServer() }
        #expect(await eventually(within: 2) { !listener.isConnected })
        try await onThread { try cluster.startServer() }
        let start = ContinuousClock.now
        #expect(await eventually(within: 10) { listener.isConnected })
        print("listener reconnected \(String(format: "%.3f", seconds(since: start))) s after the server was up")
        #expect(reconnects.value == 1)

        let pool = PostgresPool(configuration: .init(url: cluster.url), logger: testLogger)
        defer { Task { await pool.close() } }
        _ = try await pool.query("SELECT pg_notify('events', $1)", ["after-restart"])
        #expect(await eventually(within: 1) { received.count == 1 })
        #expect(received.all.first?.0 == "events")
        #expect(received.all.first?.1 == "after-restart")
    }

    @Test func listenerStopsPromptlyWhileTheServerIsUnreachable() async throws {
        let port = try freeLocalPort()
        let listener = PostgresListener(
            url: "postgresql://postgres@127.0.0.1:\(port)/postgres", channels: ["events"], logger: testLogger,
            onNotification: { _, _ in }, onReconnect: {})
        listener.start()
        try await Task.sleep(for: .milliseconds(700))  // a few failed attempts with backoff
        #expect(!listener.isConnected)
        let start = ContinuousClock.now
        listener.stop()
        #expect(seconds(since: start) < 0.5)
    }

    @Test func onlySafeChannelNamesAreAccepted() {
        #expect(PostgresListener.isValidChannelName("grants_changed_2"))
        #expect(!PostgresListener.isValidChannelName(""))
        #expect(!PostgresListener.isValidChannelName("Grants"))
        #expect(!PostgresListener.isValidChannelName("a\"; DROP TABLE x; --"))
        #expect(!PostgresListener.isValidChannelName("with space"))
        #expect(!PostgresListener.isValidChannelName("é"))
        #expect(!PostgresListener.isValidChannelName(String(repeating: "a", count: 64)))
        #expect(PostgresListener.isValidChannelName(String(repeating: "a", count: 63)))
        let capture = LogCapture()
        let logger = capture.logger(label: "listener")
        let listener = PostgresListener(
            url: "postgresql://127.0.0.1:1/x", channels: ["ok", "Not OK", "x\"y"], logger: logger,
            onNotification: { _, _ in }, onReconnect: {})
        #expect(listener.channels == ["ok"])
        let rejected = capture.records.filter { $0.level == .error }.compactMap { $0.metadata["channel"]?.description }
        #expect(rejected == ["Not OK", "x\"y"])
    }
}
