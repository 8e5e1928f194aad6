internal import CMicroHTTPD
import Synchronization

/// A `MHD_Connection*` that may cross threads.
struct ConnectionHandle: @unchecked Sendable {
    // @unchecked: a plain C pointer. libmicrohttpd allows MHD_resume_connection from any thread, and the pointer
    // stays valid while the connection is suspended, which is the only time it leaves its worker thread.
    let pointer: OpaquePointer
}

/// Per-request state, created by the URI-log callback, stored in `*con_cls` as a retained `Unmanaged`
/// reference and released in the request-completed callback.
final class RequestContext: Sendable {
    enum Phase {
        /// Headers are being read; the access handler has not run yet.
        case new
        /// The handler ran once (headers done); body chunks may follow.
        case receiving
        /// A deferred answer is being computed; the connection is suspended.
        case suspended(ConnectionHandle)
        /// The deferred answer is ready; queue it on the next handler call.
        case ready(HTTPResponse)
        /// A response has been queued.
        case answered
    }

    struct State {
        var phase: Phase = .new
        /// Collected on the first handler call, when the headers are complete.
        var headers = HTTPHeaders()
        var body: [UInt8] = []
        var bodyTooLarge = false
        var requestID = ""
        /// Set by the request-completed callback.
        var finished = false
    }

    /// The request target exactly as received (path and query, still encoded).
    let target: String
    /// Mutated by the worker thread that owns the connection and, for deferred answers, by the Task
    /// that completes it or by shutdown; hence a lock, uncontended on the fast path.
    let state = Mutex(State())

    init(target: String) {
        self.target = target
    }

    /// Appends a body chunk up to `limit` bytes; past it, drops the body and remembers it was too large.
    func appendBody(_ chunk: UnsafeRawBufferPointer, limit: Int) {
        state.withLock { state in
            guard !state.bodyTooLarge else { return }
            if state.body.count + chunk.count > limit {
                state.bodyTooLarge = true
                state.body = []
            } else {
                state.body.append(contentsOf: chunk)
            }
        }
    }

    /// Stores a deferred answer and resumes the connection if the request is still suspended.
    /// Exactly one caller (the Task or shutdown) wins, so a connection is resumed once; the resume happens
    /// under the lock, so once any caller returns, the connection is no longer suspended.
    func complete(with response: HTTPResponse) -> Bool {
        state.withLock { state in
            guard case .suspended(let connection) = state.phase else { return false }
            state.phase = .ready(response)
            MHD_resume_connection(connection.pointer)
            return true
        }
    }
}
