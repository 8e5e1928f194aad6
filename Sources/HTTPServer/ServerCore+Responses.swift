internal import CMicroHTTPD
import Synchronization

/// A libmicrohttpd response kept by its connection after it was sent, so that the next answer with the same
/// status, headers and body (a cache hit asked again on a kept-alive connection) only swaps its `X-Request-Id`.
struct ReusableResponse: @unchecked Sendable {
    // @unchecked: `pointer` is an MHD_Response* used only by the worker thread that owns the connection (requests
    // of one connection are answered one after another there), and destroyed in its CLOSED notification.
    let pointer: OpaquePointer
    let status: Int
    let headers: HTTPHeaders
    let body: [UInt8]
    var requestID: String

    func serves(_ response: HTTPResponse) -> Bool {
        status == response.status && body == response.body && headers.sameEntries(as: response.headers)
    }
}

extension ServerCore {
    /// Builds (or reuses) libmicrohttpd's response for `response` and queues it on `connection`.
    func send(_ response: HTTPResponse, requestID: String, on connection: OpaquePointer) throws {
        guard (100...999).contains(response.status) else {
            throw HTTPServerError("queue response", "status \(response.status) is out of range")
        }
        // Not while draining (answers then carry Connection: close), nor for an answer that sets Connection.
        let watched = Self.watched(connection)
        let reusable = watched != nil && !draining.load(ordering: .relaxed) && !response.headers.contains("Connection")
        if reusable, let watched, var last = watched.lastResponse.withLock({ $0 }), last.serves(response) {
            _ = MHD_del_response_header(last.pointer, "X-Request-Id", last.requestID)
            try check(MHD_add_response_header(last.pointer, "X-Request-Id", requestID), "add header X-Request-Id")
            last.requestID = requestID
            watched.lastResponse.withLock { $0 = last }
            try check(MHD_queue_response(connection, UInt32(response.status), last.pointer), "queue response")
            return
        }
        let mhdResponse = try build(response, requestID: requestID)
        var kept = false
        defer { if !kept { MHD_destroy_response(mhdResponse) } }
        try check(MHD_queue_response(connection, UInt32(response.status), mhdResponse), "queue response")
        if reusable, let watched {
            kept = true
            let previous = watched.lastResponse.withLock { last in
                defer {
                    last = ReusableResponse(
                        pointer: mhdResponse, status: response.status, headers: response.headers, body: response.body,
                        requestID: requestID)
                }
                return last
            }
            if let previous { MHD_destroy_response(previous.pointer) }
        }
    }

    /// A new libmicrohttpd response with the body, the handler's headers and the server's own.
    private func build(_ response: HTTPResponse, requestID: String) throws -> OpaquePointer {
        let created = response.body.withUnsafeBytes { bytes in
            // MUST_COPY: MHD keeps its own copy, so the Swift array may go away at once.
            MHD_create_response_from_buffer(
                bytes.count, UnsafeMutableRawPointer(mutating: bytes.baseAddress), .RESPMEM_MUST_COPY)
        }
        let mhdResponse = try check(created, "create response")
        do {
            for (name, value) in response.headers {
                if HTTPHeaders.namesEqual(name, "Content-Length") || HTTPHeaders.namesEqual(name, "X-Request-Id")
                    || HTTPHeaders.namesEqual(name, "Transfer-Encoding")
                {
                    continue
                }
                try check(MHD_add_response_header(mhdResponse, name, value), "add header \(name)")
            }
            try check(MHD_add_response_header(mhdResponse, "X-Request-Id", requestID), "add header X-Request-Id")
            if !response.headers.contains("X-Content-Type-Options") {
                try check(
                    MHD_add_response_header(mhdResponse, "X-Content-Type-Options", "nosniff"),
                    "add header X-Content-Type-Options")
            }
            if draining.load(ordering: .relaxed) && response.headers["Connection"] == nil {
                try check(MHD_add_response_header(mhdResponse, "Connection", "close"), "add header Connection")
            }
        } catch {
            MHD_destroy_response(mhdResponse)
            throw error
        }
        return mhdResponse
    }
}
