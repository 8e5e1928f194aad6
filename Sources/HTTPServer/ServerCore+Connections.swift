internal import CMicroHTTPD

/// The connection-level half of `ServerCore`: libmicrohttpd's open and close notifications feed the
/// watchdog, and each request's framing is checked as soon as its headers are complete.
extension ServerCore {
    /// MHD_NotifyConnectionCallback: registers a new connection with the watchdog and forgets a closed one.
    static let notifyConnection: MHD_NotifyConnectionCallback = { cls, connection, socketContext, code in
        guard let cls, let connection, let socketContext else { return }
        // Unmanaged: see accessHandler.
        let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
        switch code {
        case .CONNECTION_NOTIFY_STARTED:
            let watched = core.watchdog.opened(socket: Int32(tgw_mhd_connection_socket(connection)))
            // Unmanaged: the +1 is owned by libmicrohttpd's socket context and given back on CLOSED below.
            socketContext.pointee = Unmanaged.passRetained(watched).toOpaque()
        case .CONNECTION_NOTIFY_CLOSED:
            guard let raw = socketContext.pointee else { return }
            socketContext.pointee = nil
            // Unmanaged: balances the passRetained on STARTED.
            let watched = Unmanaged<WatchedConnection>.fromOpaque(raw).takeRetainedValue()
            if let last = watched.lastResponse.withLock({ $0.take() }) { MHD_destroy_response(last.pointer) }
            core.watchdog.closed(watched)
        default:
            return
        }
    }

    /// The watchdog's record of `connection`, from its socket context; nil before STARTED or after CLOSED.
    static func watched(_ connection: OpaquePointer?) -> WatchedConnection? {
        guard let connection, let raw = tgw_mhd_socket_context(connection) else { return nil }
        // Unmanaged: borrowed; the socket context holds the +1 until the CLOSED notification.
        return Unmanaged<WatchedConnection>.fromOpaque(raw).takeUnretainedValue()
    }

    /// The first handler call of a request, its headers complete: the header deadline is met, and a request
    /// whose framing is ambiguous is answered at once, before any handler or body. Answering on this first
    /// call makes libmicrohttpd discard the rest of the input and close the connection.
    func begin(_ context: RequestContext, on connection: OpaquePointer) -> MHD_Result {
        Self.watched(connection)?.deadlines.withLock { $0.headersArrived() }
        let headers = Self.headers(of: connection)
        guard let refusal = RequestFraming.refusal(headers) else {
            // Answering now would cost keep-alive, so wait for the final call.
            context.state.withLock { $0.headers = headers }
            return .YES
        }
        let requestID = RequestID.accept(headers["X-Request-Id"]) ?? RequestID.generate()
        context.state.withLock { state in
            state.phase = .answered
            state.requestID = requestID
        }
        logger.info(
            "refused a request with ambiguous framing",
            metadata: ["request_id": "\(requestID)", "status": "\(refusal.status)"])
        return queue(response(for: refusal), requestID: requestID, on: connection)
    }
}
