import Codecs
import Foundation
import Logging
import Synchronization
import TokenGatewayDomain
import TokenGatewayStore

/// Background work that keeps tokens ready so callers never wait for Salesforce:
/// - **refresh ahead**: a cached token that callers asked for since it was fetched is renewed before its remaining
///   lifetime falls to the largest `min_ttl_seconds` asked of it, with a margin (`renewAt`); a token nobody asked
///   for is left to expire;
/// - **keep-alive**: an active `authorization_code` connection whose refresh token went unused for the keep-alive
///   period is refreshed, so "expire refresh token if not used for N" never kills an idle connection.
///
/// Both use the same claim as any refresh (`TokenService.refresh(background: true)`), so a token is renewed once
/// across replicas: a replica that finds another's lease gives way and later reads the stored token. At most
/// `concurrency` renewals run at once per replica; a renewal takes a client's call slot only if one is free, never
/// waits for one, and never holds anything a request needs. Failures are recorded on the connection (`last_error`),
/// counted, and backed off (in memory for refresh ahead, in the row for keep-alive); there is no tight loop.
public final class TokenLifecycle: Sendable {
    /// Why a background refresh ran.
    public enum Reason: String, Sendable { case ahead, keepalive }

    let tokens: TokenService
    let store: GatewayStore
    let cache: TokenCache
    let metrics: Metrics
    let logger: Logger
    /// `TOKEN_GATEWAY_REFRESH_AHEAD_SECONDS`.
    let margin: Double
    /// `TOKEN_GATEWAY_KEEPALIVE_SECONDS`.
    let keepalive: Double
    /// Most background renewals at once.
    let concurrency: Int
    private let running = Mutex<[ConnectionKey: Task<Void, Never>]>([:])
    private let loop = Mutex<Task<Void, Never>?>(nil)

    /// Creates the engine; nothing runs before `start()`.
    public init(
        tokens: TokenService, store: GatewayStore, cache: TokenCache, metrics: Metrics, logger: Logger,
        refreshAheadSeconds: Double, keepaliveSeconds: Double, concurrency: Int
    ) {
        self.tokens = tokens
        self.store = store
        self.cache = cache
        self.metrics = metrics
        self.logger = logger
        self.margin = refreshAheadSeconds
        self.keepalive = keepaliveSeconds
        self.concurrency = max(1, concurrency)
    }

    /// How often the keep-alive sweep runs: a tenth of the period, between 1 s and 1 min, so a connection is
    /// refreshed soon after it falls due.
    var sweepInterval: Double { min(60, max(1, keepalive / 10)) }

    /// Starts the loop: refresh ahead every second, the keep-alive sweep every `sweepInterval` (the first one after
    /// a random part of it, so replicas started together do not sweep in a burst).
    public func start() {
        let task = Task { [self] in
            var nextSweep = TokenService.now + Double.random(in: 0.2...1) * sweepInterval
            while !Task.isCancelled {
                renewDueTokens()
                if TokenService.now >= nextSweep {
                    let full = await sweepKeepalive()
                    nextSweep = TokenService.now + (full ? 1 : sweepInterval * Double.random(in: 0.8...1.2))
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        loop.withLock { $0 = task }
    }

    /// Stops the loop and waits up to `grace` for renewals in flight (each ends within the upstream timeout).
    public func stop(grace: Duration) async {
        loop.withLock { $0?.cancel() }
        let deadline = ContinuousClock.now + grace
        while !running.withLock({ $0.isEmpty }) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Renewals in flight (for tests).
    public var inFlight: Int { running.withLock { $0.count } }

    private var freeSlots: Int { concurrency - running.withLock { $0.count } }

    func renewDueTokens() {
        let free = freeSlots
        guard free > 0 else { return }
        for (key, demand) in cache.dueForRenewal(now: TokenService.now, margin: margin, limit: free) {
            launch(key, reason: .ahead, demand: demand)
        }
    }

    /// Claims a batch of connections due for keep-alive and renews them; true when the batch was full (more may be
    /// due, so the next sweep comes sooner).
    func sweepKeepalive() async -> Bool {
        let free = freeSlots
        guard free > 0 else { return false }
        do {
            let keys = try await store.claimKeepalive(
                keepaliveSeconds: keepalive, limit: free,
                holdSeconds: tokens.upstreamTimeout + TokenService.leaseMarginSeconds + 60)
            for key in keys { launch(key, reason: .keepalive, demand: nil) }
            return keys.count == free
        } catch {
            logger.debug("keep-alive sweep skipped", metadata: ["error": "\(error)"])
            return false
        }
    }

    private func launch(_ key: ConnectionKey, reason: Reason, demand: Double?) {
        running.withLock { tasks in
            guard tasks[key] == nil else { return }
            tasks[key] = Task { [self] in
                await renew(key, reason: reason, demand: demand)
                _ = running.withLock { $0.removeValue(forKey: key) }
            }
        }
    }

    /// One background renewal, counted by reason and outcome (`renewed`, `stored`: another replica had renewed it,
    /// `skipped`: another owner is renewing it or the client has no free call slot, `failed`).
    func renew(_ key: ConnectionKey, reason: Reason, demand: Double?) async {
        let now = TokenService.now
        let need = TokenNeed(
            minTTL: reason == .ahead ? (demand ?? 0) + margin : .greatestFiniteMagnitude, force: false, started: now,
            forceGrace: 0)
        do {
            let result = try await tokens.refresh(key, need: need, keyID: nil, background: true)
            let outcome = result.map { $0.calledUpstream ? "renewed" : "stored" } ?? "skipped"
            metrics.backgroundRefresh(reason: reason.rawValue, outcome: outcome)
        } catch {
            metrics.backgroundRefresh(reason: reason.rawValue, outcome: "failed")
            logger.warning(
                "background refresh failed",
                metadata: [
                    "connection": "\(key)", "reason": "\(reason.rawValue)",
                    "error": "\((error as? GatewayError)?.code.rawValue ?? "\(error)")",
                ])
            switch reason {
            case .ahead: cache.renewalFailed(key, now: TokenService.now)
            case .keepalive: try? await store.backgroundFailed(key)
            }
        }
    }
}
