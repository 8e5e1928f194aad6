internal import CLibPQ
internal import Foundation
import Logging

/// What every connection of a pool or listener needs to (re)connect, shared and immutable.
struct ConnectionSettings: Sendable {
    let url: String
    let connectTimeoutSeconds: Int
    let redactor: Redactor
    let logger: Logger

    init(url: String, connectTimeoutSeconds: Int, logger: Logger) {
        self.url = url
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.redactor = Redactor(password: Self.password(in: url))
        self.logger = logger
    }

    /// libpq keywords and values: the URL expanded first, then our settings, which win over the URL's.
    var keywordsAndValues: [(String, String)] {
        [
            ("dbname", url),
            ("connect_timeout", String(connectTimeoutSeconds)),
            ("client_encoding", "UTF8"),
        ]
    }

    /// The password of a connection string, read by libpq's own parser (handles URI escapes and key=value);
    /// falls back to the `user:password@` part when libpq cannot parse it, so a malformed URL cannot leak it.
    static func password(in url: String) -> String? {
        var errorMessage: UnsafeMutablePointer<CChar>?
        if let options = PQconninfoParse(url, &errorMessage) {
            defer { PQconninfoFree(options) }
            var option = options
            while let keyword = option.pointee.keyword {
                if String(cString: keyword) == "password", let value = option.pointee.val {
                    return String(cString: value)
                }
                option += 1
            }
            return nil
        }
        if let errorMessage { PQfreemem(errorMessage) }
        guard let scheme = url.firstRange(of: "://") else { return nil }
        let afterScheme = url[scheme.upperBound...]
        guard let at = afterScheme.lastIndex(of: "@") else { return nil }
        let userInfo = afterScheme[..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return nil }
        return String(userInfo[userInfo.index(after: colon)...])
    }

    /// Runs `body` with C arrays of the libpq keywords and values, NULL-terminated, as `PQconnect*Params` expect.
    func withConnectionParameters<R>(
        _ body: (UnsafePointer<UnsafePointer<CChar>?>, UnsafePointer<UnsafePointer<CChar>?>) -> R
    ) -> R {
        let pairs = keywordsAndValues
        let keywords = pairs.map { strdup($0.0) }
        let values = pairs.map { strdup($0.1) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let keywordArray: [UnsafePointer<CChar>?] = keywords.map { $0.map { UnsafePointer($0) } } + [nil]
        let valueArray: [UnsafePointer<CChar>?] = values.map { $0.map { UnsafePointer($0) } } + [nil]
        return keywordArray.withUnsafeBufferPointer { k in
            valueArray.withUnsafeBufferPointer { v in
                // Safe: both buffers are non-empty (they end with the NULL terminator).
                body(k.baseAddress.unsafelyUnwrapped, v.baseAddress.unsafelyUnwrapped)
            }
        }
    }
}

/// Receives server notices (NOTICE, WARNING, ...) so libpq does not print them to stderr; logs them at debug.
final class NoticeSink {
    let logger: Logger
    init(logger: Logger) { self.logger = logger }

    /// Installs this sink on `handle`. The sink must outlive the handle: its owner finishes the handle first.
    func install(on handle: OpaquePointer) {
        // Unmanaged without retain: the owner (LibPQConnection / listener loop) keeps the sink alive for as long
        // as the PGconn exists, and PQfinish runs before the sink is released.
        let context = Unmanaged.passUnretained(self).toOpaque()
        PQsetNoticeReceiver(
            handle,
            { context, result in
                guard let context, let result else { return }
                let sink = Unmanaged<NoticeSink>.fromOpaque(context).takeUnretainedValue()
                sink.receive(result)
            }, context)
    }

    private func receive(_ result: OpaquePointer) {
        let severity = field(result, PG_DIAG_SEVERITY_NONLOCALIZED) ?? "NOTICE"
        let message = field(result, PG_DIAG_MESSAGE_PRIMARY) ?? ""
        logger.debug(
            "postgres notice",
            metadata: [
                "severity": .string(severity), "sqlstate": .string(field(result, PG_DIAG_SQLSTATE) ?? ""),
                "message": .string(message),
            ])
    }
}

/// Reads one diagnostic field of a result (`PG_DIAG_*` are character constants in libpq's headers).
func field(_ result: OpaquePointer, _ code: Int32) -> String? {
    PQresultErrorField(result, code).map { String(cString: $0) }
}

let PG_DIAG_SQLSTATE = Int32(UInt8(ascii: "C"))
let PG_DIAG_MESSAGE_PRIMARY = Int32(UInt8(ascii: "M"))
let PG_DIAG_SEVERITY_NONLOCALIZED = Int32(UInt8(ascii: "V"))

/// One libpq connection, used by exactly one thread (the worker thread of a `PostgresConnection`).
///
/// Every call here blocks; none runs on Swift's cooperative pool. The class owns its `PGconn*` and finishes it
/// in `deinit`. It reconnects lazily: a connection found broken before a statement is sent is replaced and the
/// statement runs once on the new one, unless a transaction was open (then the statement fails: the transaction
/// is gone and running the rest of it outside would be wrong).
final class LibPQConnection {
    private let settings: ConnectionSettings
    private let notices: NoticeSink
    private var handle: OpaquePointer?
    /// Whether the last completed command left a transaction block open (tracked ourselves, because libpq reports
    /// PQTRANS_UNKNOWN once the connection is broken).
    private(set) var inTransaction = false

    init(settings: ConnectionSettings) {
        self.settings = settings
        self.notices = NoticeSink(logger: settings.logger)
    }

    deinit {
        if let handle { PQfinish(handle) }
    }

    // MARK: Statements

    /// Runs one statement with text parameters through `PQexecParams`.
    func query(_ sql: String, _ parameters: [String?]) throws -> PostgresResult {
        let handle = try usableHandle()
        let result = withCStringArray(parameters) { values in
            PQexecParams(handle, sql, Int32(parameters.count), nil, values, nil, nil, 0)
        }
        let checked = try check(result, parameters: parameters)
        defer { PQclear(checked) }
        return convert(checked)
    }

    /// Runs a script of one or more statements through `PQexec` (simple protocol, no parameters).
    func execute(_ sql: String) throws {
        let handle = try usableHandle()
        PQclear(try check(PQexec(handle, sql), parameters: []))
    }

    /// Commits the open transaction; if an earlier statement aborted it, rolls back and throws, rather than letting
    /// COMMIT quietly report ROLLBACK.
    func commit() throws {
        if let handle, PQstatus(handle) == CONNECTION_OK, PQtransactionStatus(handle) == PQTRANS_INERROR {
            try execute("ROLLBACK")
            throw PostgresError(
                kind: .server, sqlState: "25P02",
                message: "transaction was aborted by an earlier error and has been rolled back")
        }
        try execute("COMMIT")
    }

    /// Leaves the connection fit for the next borrower: rolls back an open transaction, or drops a connection that
    /// cannot be rolled back (the server then ends the transaction itself).
    func prepareForReuse() {
        guard inTransaction else { return }
        guard handle != nil else {
            // The connection broke inside the transaction; the server has ended it already.
            inTransaction = false
            return
        }
        do {
            try execute("ROLLBACK")
        } catch {
            settings.logger.warning("dropping connection whose transaction could not be rolled back: \(error)")
            disconnect()
        }
    }

    /// Closes the libpq connection (if any); the next statement reconnects.
    func disconnect() {
        if let handle { PQfinish(handle) }
        handle = nil
        inTransaction = false
    }

    // MARK: Connection health

    /// Returns a connection that is believed alive, reconnecting once when the old one is found broken before
    /// anything was sent.
    private func usableHandle() throws -> OpaquePointer {
        if let handle, isAlive(handle) { return handle }
        if inTransaction {
            // The transaction died with the connection; never continue it on a fresh one.
            disconnect()
            throw PostgresError(kind: .unavailable, message: "connection lost inside a transaction")
        }
        if handle != nil { settings.logger.info("postgres connection broken; reconnecting") }
        disconnect()
        return try connect()
    }

    /// True when the connection is OK and the server has not closed it while idle. An idle connection has nothing
    /// to read, so pending input means the server sent something on its own (usually a FATAL before closing):
    /// consume it and see whether the connection survived.
    private func isAlive(_ handle: OpaquePointer) -> Bool {
        guard PQstatus(handle) == CONNECTION_OK else { return false }
        var attempts = 0
        while attempts < 4, hasPendingInput(PQsocket(handle)) {
            attempts += 1
            if PQconsumeInput(handle) == 0 { return false }
            _ = PQisBusy(handle)  // parses what arrived; an ErrorResponse while idle goes to the notice receiver
            discardNotifications(handle)
            if PQstatus(handle) != CONNECTION_OK { return false }
        }
        return PQstatus(handle) == CONNECTION_OK
    }

    private func discardNotifications(_ handle: OpaquePointer) {
        while let notification = PQnotifies(handle) { PQfreemem(notification) }
    }

    private func connect() throws -> OpaquePointer {
        let started = ContinuousClock.now
        let connection = settings.withConnectionParameters { keywords, values in
            PQconnectdbParams(keywords, values, 1)
        }
        guard let connection else {
            throw PostgresError(kind: .unavailable, message: "libpq could not allocate a connection")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = settings.redactor.clean(errorMessage(of: connection))
            PQfinish(connection)
            settings.logger.debug(
                "postgres connect failed", metadata: ["elapsed": "\(ContinuousClock.now - started)"])
            throw PostgresError(kind: .unavailable, message: message)
        }
        notices.install(on: connection)
        handle = connection
        inTransaction = false
        return connection
    }

    // MARK: Results

    /// Checks a statement's result (through `resultError`, the one judge of libpq results) and keeps this
    /// connection's state in step: a broken connection is dropped, so the next use reconnects or, if a transaction
    /// was open, reports it lost. Returns a successful result for the caller to clear.
    private func check(_ result: OpaquePointer?, parameters: [String?]) throws -> OpaquePointer {
        if let handle, PQstatus(handle) == CONNECTION_OK {
            inTransaction = PQtransactionStatus(handle) != PQTRANS_IDLE
        }
        let failure = resultError(result, connection: handle, redactor: settings.redactor, parameters: parameters)
        if let failure {
            if let result { PQclear(result) }
            if failure.kind != .server, let handle {
                // Do not keep a broken handle (or one in an unknown protocol state). `inTransaction` keeps its
                // value so the next use knows whether a transaction was lost with it.
                PQfinish(handle)
                self.handle = nil
            }
            throw failure
        }
        guard let result else {
            throw PostgresError(kind: .protocolViolation, message: "libpq returned no result")
        }
        return result
    }

    private func convert(_ result: OpaquePointer) -> PostgresResult {
        let rowCount = PQntuples(result)
        let columnCount = PQnfields(result)
        let names = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
        let index = ColumnIndex(names)
        var rows: [PostgresRow] = []
        rows.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(Int(columnCount))
            for column in 0..<columnCount {
                if PQgetisnull(result, row, column) == 1 {
                    values.append(nil)
                } else {
                    let length = Int(PQgetlength(result, row, column))
                    // Text format values are `length` bytes of UTF-8 (client_encoding is UTF8).
                    let bytes = UnsafeRawPointer(PQgetvalue(result, row, column)).assumingMemoryBound(to: UInt8.self)
                    values.append(String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self))
                }
            }
            rows.append(PostgresRow(index: index, values: values))
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PostgresResult(columns: names, rows: rows, affectedRows: affected)
    }
}

/// The one place a libpq result is judged: nil when the statement succeeded, otherwise the `PostgresError` for it,
/// with the server's SQLSTATE and primary message, cleaned of the URL password and of `parameters`.
func resultError(
    _ result: OpaquePointer?, connection: OpaquePointer?, redactor: Redactor, parameters: [String?]
) -> PostgresError? {
    let connectionOK = connection.map { PQstatus($0) == CONNECTION_OK } ?? false
    guard let result else {
        // No result at all: out of memory, or the connection is gone.
        let message = connection.map { errorMessage(of: $0) } ?? "no connection"
        return PostgresError(
            kind: connectionOK ? .protocolViolation : .unavailable,
            message: redactor.clean(message, parameters: parameters))
    }
    let status = PQresultStatus(result)
    switch status {
    case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
        return nil
    case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR, PGRES_BAD_RESPONSE:
        let sqlState = field(result, PG_DIAG_SQLSTATE)
        let primary = field(result, PG_DIAG_MESSAGE_PRIMARY) ?? connection.map { errorMessage(of: $0) } ?? "error"
        let message = redactor.clean(primary, parameters: parameters)
        if !connectionOK { return PostgresError(kind: .unavailable, sqlState: sqlState, message: message) }
        if status == PGRES_BAD_RESPONSE {
            return PostgresError(kind: .protocolViolation, sqlState: sqlState, message: message)
        }
        return PostgresError(kind: .server, sqlState: sqlState, message: message)
    default:
        // COPY and pipeline states are never started by this layer.
        return PostgresError(
            kind: .protocolViolation, message: "unexpected result status \(String(cString: PQresStatus(status)))")
    }
}

/// libpq's last error text for a connection, trimmed and on one line.
func errorMessage(of handle: OpaquePointer) -> String {
    guard let text = PQerrorMessage(handle) else { return "unknown libpq error" }
    let lines = String(cString: text).split(whereSeparator: \.isNewline).map {
        $0.trimmingCharacters(in: .whitespaces)
    }
    let joined = lines.filter { !$0.isEmpty }.joined(separator: " ")
    return joined.isEmpty ? "unknown libpq error" : joined
}

/// True when `socket` has something to read (data, EOF or an error) right now.
func hasPendingInput(_ socket: Int32) -> Bool {
    guard socket >= 0 else { return true }
    var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
    return poll(&descriptor, 1, 0) > 0
}

/// Runs `body` with a C array of C strings (NULL entries stay NULL), freed afterwards.
func withCStringArray<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    let copies = strings.map { $0.flatMap { strdup($0) } }
    defer { copies.forEach { free($0) } }
    let pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
}
