internal import CLibCurl
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A non-blocking HTTP/1.1 and HTTP/2 client on libcurl's multi interface: one poller thread of its own drives
/// every call, idle connections are kept for reuse, TLS certificates are always verified, redirects are not
/// followed and only http and https are spoken.
public final class HTTPClient: Sendable {
    private let configuration: HTTPClientConfiguration
    private let poller: CurlPoller

    /// Starts the poller thread; throws when curl cannot be initialised.
    public init(configuration: HTTPClientConfiguration, logger: Logger) throws {
        try check(CurlGlobal.initialization)
        self.configuration = configuration
        self.poller = try CurlPoller(maxCachedConnections: configuration.maxCachedConnections, logger: logger)
    }

    deinit {
        poller.shutdown()
    }

    /// Sends `request` and returns the response (any status). Throws `HTTPClientError`, or `CancellationError`
    /// when the calling task is cancelled first.
    public func send(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        let transfer = try CurlTransfer(request: request, configuration: configuration, id: poller.nextID())
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                transfer.continuation = continuation
                poller.submit(transfer)
            }
        } onCancel: {
            poller.cancel(transfer.id)
        }
    }

    /// Fails pending calls with `.shutDown`, closes the cached connections and joins the poller thread.
    /// Idempotent; later `send` calls fail with `.shutDown`.
    public func shutdown() {
        poller.shutdown()
    }

    /// How many TCP connections the client has opened so far (a measure of keep-alive reuse).
    public var connectionsOpened: Int {
        poller.connectionsOpened.load(ordering: .relaxed)
    }
}

/// curl_global_init, run exactly once: a static let is initialised lazily and thread-safely by Swift.
enum CurlGlobal {
    static let initialization: CURLcode = curl_global_init(Int(CURL_GLOBAL_ALL))
}

/// Owns the multi handle and the thread that drives it.
///
/// `@unchecked Sendable`: `multi` and `active` are touched only by the poller thread, except
/// `curl_multi_wakeup`, which curl documents as callable from any thread and which is only called under
/// `state`'s lock while the handle is open; everything else shared sits in the `Mutex` or is atomic.
final class CurlPoller: @unchecked Sendable {
    private struct State {
        var queued: [CurlTransfer] = []
        var cancelled: [UInt64] = []
        var shuttingDown = false
        var thread: pthread_t?
    }

    /// The multi handle (`CURLM*`), freed by the poller thread when it stops (or by `init` if it never started).
    private let multi: UnsafeMutableRawPointer
    private let state = Mutex(State())
    private let ids = Atomic<UInt64>(0)
    let connectionsOpened = Atomic<Int>(0)
    private let logger: Logger
    /// Transfers inside the multi handle, by easy handle; poller thread only.
    private var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]

    init(maxCachedConnections: Int, logger: Logger) throws(HTTPClientError) {
        guard let multi = curl_multi_init() else {
            throw .notSent(.other, "curl_multi_init failed")
        }
        self.multi = multi
        self.logger = logger
        do throws(HTTPClientError) {
            try check(tgw_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, max(1, maxCachedConnections)))
            try startThread()
        } catch {
            curl_multi_cleanup(multi)
            throw error
        }
    }

    private func startThread() throws(HTTPClientError) {
        // Retained for the thread's lifetime; the thread releases it when its loop ends.
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(
            &thread, nil,
            { context in
                // Unmanaged: balances the passRetained in startThread.
                guard let context else { return nil }
                let poller = Unmanaged<CurlPoller>.fromOpaque(context).takeRetainedValue()
                poller.run()
                return nil
            }, context)
        guard created == 0 else {
            Unmanaged<CurlPoller>.fromOpaque(context).release()
            throw .notSent(.other, "pthread_create failed (\(created))")
        }
        state.withLock { $0.thread = thread }
    }

    func nextID() -> UInt64 {
        ids.wrappingAdd(1, ordering: .relaxed).newValue
    }

    /// Queues a configured transfer and wakes the poller; fails it at once after shutdown or cancellation.
    func submit(_ transfer: CurlTransfer) {
        enum Outcome { case queued, shutDown, cancelled }
        let outcome: Outcome = state.withLock { state in
            if state.shuttingDown { return .shutDown }
            // The cancellation handler runs after the flag is set, so checking it under the lock closes the race
            // with `cancel`: either the handler's id finds the transfer queued, or the flag is seen here.
            if Task.isCancelled { return .cancelled }
            state.queued.append(transfer)
            curl_multi_wakeup(multi)
            return .queued
        }
        switch outcome {
        case .queued: break
        case .shutDown: transfer.finish(.failure(HTTPClientError.shutDown(mayHaveReachedServer: false)))
        case .cancelled: transfer.finish(.failure(CancellationError()))
        }
    }

    /// Asks the poller to abort the transfer `id` (if it is still running) and fail it with `CancellationError`.
    func cancel(_ id: UInt64) {
        state.withLock { state in
            guard !state.shuttingDown else { return }
            state.cancelled.append(id)
            curl_multi_wakeup(multi)
        }
    }

    /// Stops the poller: it fails every pending transfer with `.shutDown`; joins the thread (unless called on it).
    func shutdown() {
        let thread: pthread_t? = state.withLock { state in
            if !state.shuttingDown {
                state.shuttingDown = true
                curl_multi_wakeup(multi)
            }
            defer { state.thread = nil }
            return state.thread
        }
        guard let thread else { return }
        if pthread_equal(thread, pthread_self()) != 0 {
            pthread_detach(thread)
        } else {
            pthread_join(thread, nil)
        }
    }

    // MARK: Poller thread

    private func run() {
        logger.debug("HTTP client poller started")
        while true {
            let (queued, cancelled, stopping) = state.withLock { state in
                defer {
                    state.queued.removeAll()
                    state.cancelled.removeAll()
                }
                return (state.queued, state.cancelled, state.shuttingDown)
            }
            if stopping {
                stop(failing: queued)
                return
            }
            for transfer in queued { start(transfer) }
            for id in cancelled { abort(id) }

            var running: Int32 = 0
            let performed = curl_multi_perform(multi, &running)
            if performed != CURLM_OK {
                logger.error("curl_multi_perform failed", metadata: ["code": "\(performed.rawValue)"])
            }
            collectFinished()

            let polled = curl_multi_poll(multi, nil, 0, 1000, nil)
            if polled != CURLM_OK {
                logger.error("curl_multi_poll failed", metadata: ["code": "\(polled.rawValue)"])
                usleep(10_000)  // do not spin if polling keeps failing
            }
        }
    }

    private func start(_ transfer: CurlTransfer) {
        do throws(HTTPClientError) {
            try check(curl_multi_add_handle(multi, transfer.easy))
            active[transfer.easy] = transfer
        } catch {
            transfer.close()
            transfer.finish(.failure(error))
        }
    }

    private func abort(_ id: UInt64) {
        // An id not found belongs to a transfer that has already finished: nothing to do.
        guard let transfer = active.values.first(where: { $0.id == id }) else { return }
        remove(transfer)
        transfer.close()
        logger.debug("upstream call cancelled", metadata: ["target": "\(transfer.logTarget)"])
        transfer.finish(.failure(CancellationError()))
    }

    private func collectFinished() {
        var left: Int32 = 0
        while let message = curl_multi_info_read(multi, &left) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                let transfer = active[easy]
            else { continue }
            // Read everything from the message before remove_handle: the message is freed with the handle's state.
            let code = tgw_curl_msg_result(message)
            let result = transfer.outcome(code)
            let opened = transfer.newConnections()
            connectionsOpened.add(opened, ordering: .relaxed)
            remove(transfer)
            transfer.close()
            log(transfer, result, newConnections: opened)
            transfer.finish(result)
        }
    }

    private func remove(_ transfer: CurlTransfer) {
        let removed = curl_multi_remove_handle(multi, transfer.easy)
        if removed != CURLM_OK {
            logger.error("curl_multi_remove_handle failed", metadata: ["code": "\(removed.rawValue)"])
        }
        active[transfer.easy] = nil
    }

    private func stop(failing queued: [CurlTransfer]) {
        for transfer in queued {
            transfer.finish(.failure(HTTPClientError.shutDown(mayHaveReachedServer: false)))
        }
        for transfer in Array(active.values) {
            let sent = transfer.callSite(failed: false).connected
            remove(transfer)
            transfer.close()
            transfer.finish(.failure(HTTPClientError.shutDown(mayHaveReachedServer: sent)))
        }
        let cleaned = curl_multi_cleanup(multi)
        if cleaned != CURLM_OK {
            logger.error("curl_multi_cleanup failed", metadata: ["code": "\(cleaned.rawValue)"])
        }
        logger.debug("HTTP client poller stopped")
    }

    private func log(_ transfer: CurlTransfer, _ result: Result<HTTPClientResponse, any Error>, newConnections: Int) {
        let elapsed = ContinuousClock.now - transfer.started
        var metadata: Logger.Metadata = [
            "target": "\(transfer.logTarget)",
            "ms": "\(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)",
            "new_connections": "\(newConnections)",
        ]
        switch result {
        case .success(let response):
            metadata["status"] = "\(response.status)"
            logger.debug("upstream call finished", metadata: metadata)
        case .failure(let error):
            metadata["error"] = "\(error)"
            logger.debug("upstream call failed", metadata: metadata)
        }
    }
}
