import Codecs
import Foundation
import HTTPClient
import Logging
import Synchronization
import TokenGatewayDomain
import TokenGatewayStore

/// Delivers the webhook outbox in the background, never on a request's path: claims due deliveries one at a time
/// (`GatewayStore.claimDelivery`, `SKIP LOCKED`, so each attempt is made by one replica), sends each signed through
/// the shared libcurl client (no redirects, `WebhookDelivery.attemptTimeout` per attempt) and stores what
/// `WebhookDelivery.finish` decides.
///
/// At most `concurrency` attempts run at once on a replica, at most `perWebhook` of them for one webhook, so a
/// receiver that hangs holds two slots for ten seconds at worst and delays no other webhook. It looks for due
/// deliveries every second, and at once when an event is written (`GatewayNotification.webhookPending`) or an
/// attempt ends. Pending rows survive any restart: they are only ever removed once delivered or given up.
public final class WebhookDispatcher: Sendable {
    let store: GatewayStore
    let http: HTTPClient
    let metrics: Metrics
    let logger: Logger
    /// Most attempts at once on this replica.
    let concurrency: Int
    /// Most attempts at once to one webhook on this replica.
    let perWebhook: Int
    private let origin = UUID().uuidString.prefix(8).lowercased()
    private let attempts = Atomic<Int>(0)
    private let woken = Atomic<Bool>(false)
    /// Attempts in flight, by webhook id, each with its task.
    private let running = Mutex<[String: [Int: Task<Void, Never>]]>([:])
    private let loop = Mutex<Task<Void, Never>?>(nil)
    private let pending = Mutex(0.0)

    /// Creates the dispatcher and registers `token_gateway_webhook_events_pending`; nothing runs before `start()`.
    public init(
        store: GatewayStore, http: HTTPClient, metrics: Metrics, logger: Logger, concurrency: Int = 8,
        perWebhook: Int = 2
    ) {
        self.store = store
        self.http = http
        self.metrics = metrics
        self.logger = logger
        self.concurrency = max(1, concurrency)
        self.perWebhook = max(1, perWebhook)
        metrics.gauge("token_gateway_webhook_events_pending") { [weak self] in self?.pending.withLock { $0 } ?? 0 }
    }

    /// Starts the loop: due deliveries now and after every wake-up, the pending count every 5 s.
    public func start() {
        let task = Task { [self] in
            var nextCount = ContinuousClock.now
            while !Task.isCancelled {
                await dispatchDue()
                if ContinuousClock.now >= nextCount {
                    await countPending()
                    nextCount = ContinuousClock.now + .seconds(5)
                }
                var ticks = 0
                while ticks < 10 && !woken.exchange(false, ordering: .acquiringAndReleasing) && !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(100))
                    ticks += 1
                }
            }
        }
        loop.withLock { $0 = task }
    }

    /// Looks for due deliveries within 100 ms instead of at the next poll.
    public func wake() { woken.store(true, ordering: .releasing) }

    /// Stops claiming, waits up to `grace` for attempts in flight, then cancels the rest (their deliveries are
    /// retried later, here or on another replica).
    public func stop(grace: Duration) async {
        loop.withLock { $0?.cancel() }
        let deadline = ContinuousClock.now + grace
        while inFlight > 0 && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        for tasks in running.withLock({ $0.values }) { for task in tasks.values { task.cancel() } }
        let cancelled = ContinuousClock.now + .seconds(2)
        while inFlight > 0 && ContinuousClock.now < cancelled { try? await Task.sleep(for: .milliseconds(20)) }
    }

    /// Attempts in flight on this replica.
    public var inFlight: Int { running.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    func countPending() async {
        do {
            let count = try await store.pendingDeliveries()
            pending.withLock { $0 = Double(count) }
        } catch {
            logger.debug("webhook pending count skipped", metadata: ["error": "\(error)"])
        }
    }

    /// Claims and starts due deliveries while a slot is free.
    func dispatchDue() async {
        while !Task.isCancelled {
            let (free, busy) = running.withLock { tasks in
                (
                    concurrency - tasks.values.reduce(0) { $0 + $1.count },
                    tasks.filter { $0.value.count >= perWebhook }.map(\.key).sorted()
                )
            }
            guard free > 0 else { return }
            let number = attempts.wrappingAdd(1, ordering: .relaxed).newValue
            let owner = "\(origin)-\(number)"
            let job: WebhookJob
            do {
                guard let claimed = try await store.claimDelivery(owner: owner, excluding: busy) else { return }
                job = claimed
            } catch {
                logger.debug("webhook claim skipped", metadata: ["error": "\(error)"])
                return
            }
            // The task removes itself under the same lock, so it cannot do so before it has been added.
            running.withLock { tasks in
                tasks[job.webhookID, default: [:]][number] = Task { [self] in
                    await attempt(job, owner: owner)
                    running.withLock { tasks in
                        tasks[job.webhookID]?[number] = nil
                        if tasks[job.webhookID]?.isEmpty == true { tasks[job.webhookID] = nil }
                    }
                    wake()
                }
            }
        }
    }

    /// One signed attempt and its bookkeeping.
    func attempt(_ job: WebhookJob, owner: String) async {
        let started = ContinuousClock.now
        let outcome = await send(job)
        var delivery = job.delivery
        let action = delivery.finish(
            owner: owner, outcome: outcome, now: job.claimedAt + (ContinuousClock.now - started).seconds)
        let label: String
        switch action {
        case .delivered: label = "delivered"
        case .retry: label = "failed"
        case .giveUp: label = "gave_up"
        case .ignore: label = WebhookDelivery.errorText(outcome) == nil ? "delivered" : "failed"
        }
        metrics.webhookDelivery(outcome: label)
        var metadata: Logger.Metadata = [
            "webhook": "\(job.webhookID)", "event": "\(job.eventID)", "attempt": "\(job.delivery.attempts)",
            "outcome": "\(label)",
        ]
        if let error = WebhookDelivery.errorText(outcome) { metadata["error"] = "\(error)" }
        if case .retry(let seconds) = action { metadata["retry_in_seconds"] = "\(seconds)" }
        logger.log(level: label == "delivered" ? .debug : .warning, "webhook delivery", metadata: metadata)
        do {
            try await store.finishDelivery(job, owner: owner, action: action, outcome: outcome)
        } catch {
            // The claim lapses and the delivery is attempted again: at least once.
            logger.warning("could not record a webhook delivery", metadata: ["error": "\(error)"])
        }
    }

    /// POSTs the stored body with the Standard Webhooks headers, signed for this attempt's timestamp.
    func send(_ job: WebhookJob) async -> WebhookDelivery.Outcome {
        let timestamp = Int(Date().timeIntervalSince1970)
        guard let secret = job.secret,
            let signature = WebhookSecret.signature(
                secret: secret, id: job.eventID, timestamp: timestamp, body: job.payload)
        else {
            return .noAnswer(reason: "the webhook's secret does not open with TOKEN_GATEWAY_ENCRYPTION_KEYS")
        }
        let request = HTTPClientRequest(
            method: "POST", url: job.url,
            headers: [
                ("Content-Type", "application/json"), ("webhook-id", job.eventID),
                ("webhook-timestamp", String(timestamp)), ("webhook-signature", signature),
            ],
            body: Array(job.payload.utf8), timeout: .seconds(WebhookDelivery.attemptTimeout))
        do {
            return .answered(status: try await http.send(request).status)
        } catch let error as HTTPClientError {
            return .noAnswer(reason: Self.reason(error.kind))
        } catch {
            return .noAnswer(reason: "the attempt was cut short by a gateway shutdown")
        }
    }

    /// `last_delivery.error` for a call that got no answer; never the URL or curl's text.
    static func reason(_ kind: HTTPClientError.Kind) -> String {
        switch kind {
        case .timeout: "no answer within \(Int(WebhookDelivery.attemptTimeout)) s"
        case .connectTimeout: "could not connect in time"
        case .couldNotConnect: "the connection was refused or the host did not resolve"
        case .tls: "the TLS handshake failed (certificate not trusted?)"
        case .responseTooLarge: "the answer was larger than 1 MiB"
        case .invalidURL: "the URL was refused by the HTTP client"
        case .shutDown: "the attempt was cut short by a gateway shutdown"
        case .other: "the connection failed before a complete answer"
        }
    }
}

extension TokenService {
    /// Raises `client.rejected` for a refusal outside a refresh transaction (`/exchange`, `/callback`); a failure
    /// to store it is logged, and the request's answer stays the refusal.
    func raiseClientRejected(_ key: ConnectionKey, _ failure: GatewayError) async {
        do { try await store.clientRejected(key, failure: failure) } catch {
            logger.warning("could not raise client.rejected", metadata: ["error": "\(error)"])
        }
    }
}
