import Logging
import Synchronization

/// Keeps every log record (level, message and metadata) in memory, to check what a component logs.
public final class LogCapture: Sendable {
    /// One logged event.
    public struct Record: Sendable {
        /// The event's level.
        public var level: Logger.Level
        /// The message text.
        public var message: String
        /// The logger's metadata merged with the event's (the event's wins).
        public var metadata: Logger.Metadata
    }

    private let stored = Mutex<[Record]>([])

    /// An empty capture.
    public init() {}

    /// Every record so far, in order.
    public var records: [Record] { stored.withLock { $0 } }

    /// Every record as one line, `level message metadata`, for searching for text that must not appear.
    public var lines: [String] { records.map { "\($0.level) \($0.message) \($0.metadata)" } }

    /// A logger at `level` whose events go into this capture.
    public func logger(label: String = "captured", level: Logger.Level = .trace) -> Logger {
        var logger = Logger(label: label) { _ in Handler(capture: self) }
        logger.logLevel = level
        return logger
    }

    fileprivate func append(_ record: Record) { stored.withLock { $0.append(record) } }

    private struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            capture.append(
                Record(
                    level: event.level, message: event.message.description,
                    metadata: metadata.merging(event.metadata ?? [:]) { $1 }))
        }
    }
}
