internal import CMicroHTTPD
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The state libmicrohttpd's callbacks reach through their `cls` pointer: the handler, the limits, and the
/// registry of suspended requests that shutdown must answer before it may stop the daemon.
final class ServerCore: Sendable {
    struct Registry {
        /// False once shutdown's grace is over: new deferred answers get 503 at once instead of suspending.
        var acceptingDeferred = true
        var suspended: [ObjectIdentifier: RequestContext] = [:]
    }

    let handler: any HTTPHandler
    let logger: Logger
    let maxBodyBytes: Int
    /// The application's bodies for the answers the server gives on its own.
    let refusalResponse: @Sendable (HTTPRefusal) -> HTTPResponse
    /// Deadlines and the connection limit of every open connection.
    let watchdog: ConnectionWatchdog
    /// Requests between the URI-log callback and the completed callback (leak check and drain wait).
    let activeRequests = Atomic<Int>(0)
    /// Set when shutdown starts: responses carry `Connection: close` so keep-alive clients go away.
    let draining = Atomic<Bool>(false)
    let registry = Mutex(Registry())
    /// The last message libmicrohttpd logged, to explain a failed start.
    let lastDaemonMessage = Mutex<String?>(nil)

    init(
        handler: any HTTPHandler, logger: Logger, maxBodyBytes: Int, watchdog: ConnectionWatchdog,
        refusalResponse: @escaping @Sendable (HTTPRefusal) -> HTTPResponse
    ) {
        self.handler = handler
        self.logger = logger
        self.maxBodyBytes = maxBodyBytes
        self.watchdog = watchdog
        self.refusalResponse = refusalResponse
        self.unavailable = HTTPRefusal.shuttingDown.completing(refusalResponse(.shuttingDown))
    }

    /// The answer for `refusal`: the application's body with the status and headers the refusal requires.
    func response(for refusal: HTTPRefusal) -> HTTPResponse {
        refusal.completing(refusalResponse(refusal))
    }

    // MARK: - C callbacks (static members: a top-level closure in main.swift would be @MainActor)

    /// MHD_AccessHandlerCallback: called after the headers, once per body chunk, and once at the end.
    static let accessHandler: MHD_AccessHandlerCallback = {
        cls, connection, url, method, _, uploadData, uploadDataSize, conCls in
        guard let cls, let connection, let uploadDataSize, let conCls else { return .NO }
        // Unmanaged: `cls` is the ServerCore that HTTPServer keeps alive until after MHD_stop_daemon returns.
        let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
        return core.access(
            connection: connection, url: url, method: method, uploadData: uploadData,
            uploadDataSize: uploadDataSize, conCls: conCls)
    }

    /// URI-log callback: the first sight of a request, with its raw target; returns the new `*con_cls`.
    static let uriLog:
        @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, OpaquePointer?) ->
            UnsafeMutableRawPointer? = { cls, uri, connection in
                guard let cls else { return nil }
                // Unmanaged: see accessHandler.
                let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
                watched(connection)?.deadlines.withLock { $0.requestLineArrived(at: .now) }
                let context = RequestContext(target: uri.map { String(cString: $0) } ?? "/")
                core.activeRequests.add(1, ordering: .relaxed)
                // Unmanaged: the +1 is owned by libmicrohttpd's `*con_cls` and given back in `requestCompleted`.
                return Unmanaged.passRetained(context).toOpaque()
            }

    /// MHD_RequestCompletedCallback: releases the context whatever way the request ended.
    static let requestCompleted: MHD_RequestCompletedCallback = { cls, connection, conCls, termination in
        guard let cls, let conCls, let raw = conCls.pointee else { return }
        conCls.pointee = nil
        watched(connection)?.deadlines.withLock { $0.requestCompleted(at: .now) }
        // Unmanaged: see accessHandler; `raw` is the +1 taken in uriLog (or access), released exactly here.
        let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
        let context = Unmanaged<RequestContext>.fromOpaque(raw).takeRetainedValue()
        core.activeRequests.subtract(1, ordering: .relaxed)
        let requestID = context.state.withLock { state in
            state.finished = true
            return state.requestID
        }
        if termination != .REQUEST_TERMINATED_COMPLETED_OK {
            core.logger.debug(
                "request ended early", metadata: ["request_id": "\(requestID)", "reason": "\(termination.rawValue)"])
        }
    }

    /// MHD_LogCallback: libmicrohttpd's own error messages, formatted and sent to the logger.
    static let daemonLog: MHD_LogCallback = { cls, format, arguments in
        guard let cls, let format, let arguments else { return }
        // Unmanaged: see accessHandler.
        let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
        var buffer = [CChar](repeating: 0, count: 512)
        _ = vsnprintf(&buffer, buffer.count, format, arguments)  // a longer message is cut, which is fine for a log
        var message = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        while message.last == "\n" { message.removeLast() }
        core.lastDaemonMessage.withLock { $0 = message }
        core.logger.notice("libmicrohttpd: \(message)")
    }

    // MARK: - Request flow

    private func access(
        connection: OpaquePointer, url: UnsafePointer<CChar>?, method: UnsafePointer<CChar>?,
        uploadData: UnsafePointer<CChar>?, uploadDataSize: UnsafeMutablePointer<Int>,
        conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    ) -> MHD_Result {
        let context: RequestContext
        if let raw = conCls.pointee {
            // Unmanaged: borrowed from `*con_cls`, which holds the +1 until requestCompleted.
            context = Unmanaged<RequestContext>.fromOpaque(raw).takeUnretainedValue()
        } else {
            // Only if the URI-log callback did not run; fall back to the decoded path MHD gives.
            context = RequestContext(target: url.map { String(cString: $0) } ?? "/")
            activeRequests.add(1, ordering: .relaxed)
            // Unmanaged: as in uriLog.
            conCls.pointee = Unmanaged.passRetained(context).toOpaque()
        }

        if uploadDataSize.pointee > 0 {
            if let uploadData {
                context.appendBody(
                    UnsafeRawBufferPointer(start: uploadData, count: uploadDataSize.pointee),
                    limit: maxBodyBytes)
            }
            uploadDataSize.pointee = 0
            return .YES
        }

        enum Step {
            case wait
            case begin
            case dispatch(body: [UInt8], tooLarge: Bool)
            case queue(HTTPResponse, requestID: String)
        }
        let step: Step = context.state.withLock { state in
            switch state.phase {
            case .new:
                state.phase = .receiving
                return .begin
            case .receiving:
                let body = state.body
                state.body = []
                return .dispatch(body: body, tooLarge: state.bodyTooLarge)
            case .suspended, .answered:
                return .wait
            case .ready(let response):
                state.phase = .answered
                return .queue(response, requestID: state.requestID)
            }
        }

        switch step {
        case .wait:
            return .YES
        case .begin:
            return begin(context, on: connection)
        case .queue(let response, let requestID):
            return queue(response, requestID: requestID, on: connection)
        case .dispatch(let body, let tooLarge):
            let request = makeRequest(
                connection: connection, context: context, method: method, body: body,
                tooLarge: tooLarge)
            context.state.withLock { $0.requestID = request.requestID }
            switch handler.handle(request) {
            case .response(let response):
                context.state.withLock { $0.phase = .answered }
                return queue(response, requestID: request.requestID, on: connection)
            case .deferred(let work):
                return suspend(context, connection: connection, requestID: request.requestID, work: work)
            }
        }
    }

    private func suspend(
        _ context: RequestContext, connection: OpaquePointer, requestID: String,
        work: @escaping @Sendable () async -> HTTPResponse
    ) -> MHD_Result {
        let suspended = registry.withLock { registry -> Bool in
            guard registry.acceptingDeferred else { return false }
            context.state.withLock { $0.phase = .suspended(ConnectionHandle(pointer: connection)) }
            registry.suspended[ObjectIdentifier(context)] = context
            // Under the registry lock, so shutdown cannot try to resume a connection not yet suspended.
            MHD_suspend_connection(connection)
            return true
        }
        guard suspended else {
            context.state.withLock { $0.phase = .answered }
            return queue(unavailable, requestID: requestID, on: connection)
        }
        Task {
            let response = await work()
            self.finish(context, with: response)
        }
        return .YES
    }

    /// Hands a deferred answer to its suspended connection; a no-op when shutdown already answered it.
    func finish(_ context: RequestContext, with response: HTTPResponse) {
        guard context.complete(with: response) else { return }
        registry.withLock { _ = $0.suspended.removeValue(forKey: ObjectIdentifier(context)) }
    }

    /// Stops new suspensions and answers every suspended request with 503; returns the requests answered.
    /// When it returns, every connection ever suspended has been resumed, so MHD_stop_daemon is safe.
    @discardableResult
    func failSuspended() -> [RequestContext] {
        let contexts = registry.withLock { registry -> [RequestContext] in
            registry.acceptingDeferred = false
            let contexts = Array(registry.suspended.values)
            registry.suspended.removeAll()
            return contexts
        }
        // A context that a Task is completing right now is still listed (the Task removes it after resuming);
        // `complete` waits for that Task's lock and then returns false.
        return contexts.filter { $0.complete(with: unavailable) }
    }

    /// The 503 of requests still suspended at shutdown.
    let unavailable: HTTPResponse

    // MARK: - Building requests and queueing responses

    private func makeRequest(
        connection: OpaquePointer, context: RequestContext, method: UnsafePointer<CChar>?, body: [UInt8],
        tooLarge: Bool
    ) -> HTTPRequest {
        let headers = context.state.withLock(\.headers)
        let target = context.target
        let path: String
        let query: String
        if let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = String(target[..<mark])
            query = String(target[target.index(after: mark)...])
        } else {
            path = target
            query = ""
        }
        var request = HTTPRequest(
            method: method.map { String(cString: $0) } ?? "GET", path: path, query: query, headers: headers,
            body: body, requestID: RequestID.accept(headers["X-Request-Id"]) ?? RequestID.generate())
        request.bodyTooLarge = tooLarge
        request.peer = PeerAddress(tgw_mhd_client_address(connection))
        return request
    }

    /// Request headers while libmicrohttpd hands them over: bytes, and Strings only for an oversized field.
    private struct Collected {
        var block = HeaderBlock()
        var oversized: [(String, String)] = []
    }

    /// The request headers of `connection`, in the order received (an oversized field, which libmicrohttpd's
    /// limits rule out, would come last).
    static func headers(of connection: OpaquePointer) -> HTTPHeaders {
        var collected = Collected()
        withUnsafeMutablePointer(to: &collected) { pointer in
            // The count it returns is -1 only for a NULL connection, which cannot reach here.
            _ = MHD_get_connection_values_n(connection, .HEADER_KIND, Self.headerIterator, pointer)
        }
        var headers = HTTPHeaders(block: collected.block)
        for (name, value) in collected.oversized { headers.add(name, value) }
        return headers
    }

    /// MHD_KeyValueIteratorN collecting request headers into the `Collected` behind `cls`.
    private static let headerIterator: MHD_KeyValueIteratorN = { cls, _, key, keySize, value, valueSize in
        guard let cls, let key else { return .YES }
        let collected = cls.assumingMemoryBound(to: Collected.self)
        let name = UnsafeRawBufferPointer(start: key, count: keySize)
        let bytes = UnsafeRawBufferPointer(start: value, count: value == nil ? 0 : valueSize)
        if !collected.pointee.block.append(name: name, value: bytes) {
            collected.pointee.oversized.append(
                (String(decoding: name, as: UTF8.self), String(decoding: bytes, as: UTF8.self)))
        }
        return .YES
    }

    /// Queues `response`; if libmicrohttpd refuses it (bad status or header), logs and queues a 500 instead.
    func queue(_ response: HTTPResponse, requestID: String, on connection: OpaquePointer) -> MHD_Result {
        do {
            try send(response, requestID: requestID, on: connection)
            return .YES
        } catch {
            logger.error("cannot send response", metadata: ["request_id": "\(requestID)", "error": "\(error)"])
        }
        do {
            try send(self.response(for: .internalError), requestID: requestID, on: connection)
            return .YES
        } catch {
            logger.error(
                "cannot send fallback response", metadata: ["request_id": "\(requestID)", "error": "\(error)"])
            return .NO  // closes the connection
        }
    }
}

/// Every libmicrohttpd result goes through here, so a failure always becomes an `HTTPServerError`.
@discardableResult
func check(_ result: MHD_Result, _ operation: String) throws -> MHD_Result {
    guard result == MHD_Result.YES else { throw HTTPServerError(operation, "libmicrohttpd refused") }
    return result
}

/// The pointer form of `check`: libmicrohttpd reports failure with NULL.
func check<Pointer>(_ pointer: Pointer?, _ operation: String, reason: String = "libmicrohttpd returned NULL")
    throws -> Pointer
{
    guard let pointer else { throw HTTPServerError(operation, reason) }
    return pointer
}
