/// The one error type of the Postgres layer.
///
/// `message` is the server's primary message (or libpq's connection message). It never carries bound parameter
/// values (they are redacted) nor the password of the connection URL, so it is safe to log and to show.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, coarsely, so callers can decide on retries and HTTP status codes.
    public enum Kind: Sendable {
        /// The server could not be reached, or the connection broke.
        case unavailable
        /// The server answered the statement with an error (see `sqlState`).
        case server
        /// No connection became free within `acquireTimeoutSeconds`.
        case poolExhausted
        /// The pool or connection was closed.
        case closed
        /// libpq returned something this layer does not expect (e.g. a COPY state).
        case protocolViolation
    }

    /// What went wrong.
    public var kind: Kind
    /// The SQLSTATE code the server sent, e.g. `"23505"` for unique_violation.
    public var sqlState: String?
    /// The server's primary message, without parameter values or passwords.
    public var message: String

    /// True for SQLSTATE 23505 (unique_violation).
    public var isUniqueViolation: Bool { sqlState == "23505" }

    /// Creates an error; `message` must already be free of secrets.
    public init(kind: Kind, sqlState: String? = nil, message: String) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
    }

    /// `PostgresError(kind, SQLSTATE): message`.
    public var description: String {
        if let sqlState { return "PostgresError(\(kind), \(sqlState)): \(message)" }
        return "PostgresError(\(kind)): \(message)"
    }

    static func closed(_ what: String) -> PostgresError {
        PostgresError(kind: .closed, message: "\(what) is closed")
    }
}

/// Removes secrets from text that libpq or the server produced.
struct Redactor: Sendable {
    /// The password of the connection URL, if it has one.
    let password: String?

    /// Replaces the URL password and every bound parameter value found in `text`.
    /// Values shorter than 3 characters are only replaced where the server quotes them (`"v"`), so short values
    /// such as `1` do not mangle the rest of the message.
    func clean(_ text: String, parameters: [String?] = []) -> String {
        var text = text
        // Parameters before the password, so a value that contains the password is still recognised whole.
        // Longest first, so a value that contains another is replaced whole.
        let values = parameters.compactMap { $0 }.filter { !$0.isEmpty }.sorted { $0.count > $1.count }
        for value in values {
            if value.count >= 3 {
                text = text.replacing(value, with: "<redacted>")
            } else {
                text = text.replacing("\"\(value)\"", with: "\"<redacted>\"")
            }
        }
        if let password, !password.isEmpty { text = text.replacing(password, with: "***") }
        return text
    }
}
