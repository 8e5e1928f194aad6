import Codecs
import Synchronization
import TokenGatewayDomain
import TokenGatewayStore

/// Coalesces concurrent token requests for one connection in this process: the first request (the leader) runs
/// the work; the others (followers) wait for its result and take it only if it meets their own `TokenNeed`.
/// A follower whose need the result does not meet (a larger `min_ttl_seconds`, or `force_refresh` and a token
/// older than the grace period), or whose leader was refused for its own key's limit, runs the work itself with
/// its own need and key, so the key charged for a Salesforce call is always the key of the request that caused it.
/// Across replicas the refresh lease serializes what this cannot.
public final class SingleFlight: Sendable {
    /// What the work returns: a token and whether this run's Salesforce call produced it.
    public typealias Result = (token: CachedToken, calledUpstream: Bool)
    /// The work: get a token meeting `need`, charging `keyID` for any Salesforce call.
    public typealias Work = @Sendable (_ need: TokenNeed, _ keyID: String) async throws -> Result

    private let inflight = Mutex<[ConnectionKey: Task<Result, any Error>]>([:])

    /// Creates an empty coordinator.
    public init() {}

    /// Runs or joins the work for `key`; the source is `.upstream` only for the request whose own call produced
    /// the token.
    public func run(
        _ key: ConnectionKey, need: TokenNeed, keyID: String, now: @Sendable () -> Double, work: @escaping Work
    ) async throws -> (CachedToken, IssuedToken.Source) {
        let (task, leader) = inflight.withLock { inflight -> (Task<Result, any Error>, Bool) in
            if let running = inflight[key] { return (running, false) }
            let task = Task { try await work(need, keyID) }
            inflight[key] = task
            return (task, true)
        }
        if leader {
            defer { inflight.withLock { if $0[key] == task { $0[key] = nil } } }
            let result = try await task.value
            return (result.token, result.calledUpstream ? .upstream : .cache)
        }
        do {
            let result = try await task.value
            if need.accepts(result.token, now: now()) { return (result.token, .cache) }
        } catch let error as GatewayError where error.code == .rateLimited {
            // The leader's key hit its limit; this request's key may not have.
        }
        let own = try await work(need, keyID)
        return (own.token, own.calledUpstream ? .upstream : .cache)
    }
}
