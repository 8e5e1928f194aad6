import Codecs
import Foundation
import Logging
import Synchronization
import TokenGatewayDomain
import TokenGatewayService
import TokenGatewayStore

/// The request being served by the current task, so every log line written on its behalf carries its id.
public enum RequestScope {
    /// The id of the request this task serves; nil outside a request.
    @TaskLocal public static var requestID: String?
}

/// swift-log handler writing one JSON object per line (`ts`, `level`, `msg`, `label`, then metadata) to stderr.
public struct JSONLogHandler: LogHandler {
    /// Metadata added to every line of this handler's logger.
    public var metadata: Logger.Metadata = [:]
    /// Lines below this level are not written.
    public var logLevel: Logger.Level = .info
    let label: String
    let json: Bool
    let sink: (@Sendable (String) -> Void)?

    static let lock = Mutex(())

    /// Writes to stderr, or hands each finished line to `sink` (tests read what would have been logged).
    public init(label: String, json: Bool = true, sink: (@Sendable (String) -> Void)? = nil) {
        self.label = label
        self.json = json
        self.sink = sink
    }

    /// One metadata value of this handler.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes one line for `event`, adding the current task's request id when the metadata has none.
    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        if merged["request_id"] == nil, let id = RequestScope.requestID { merged["request_id"] = .string(id) }
        let now = Date().timeIntervalSince1970
        let stamp = Timestamp.rfc3339(now).dropLast() + String(format: ".%03dZ", Int((now - now.rounded(.down)) * 1000))
        let line: String
        if json {
            var writer = JSONWriter()
            writer.beginObject()
            writer.field("ts", String(stamp))
            writer.field("level", event.level.rawValue)
            writer.field("msg", event.message.description)
            writer.field("label", label)
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) { writer.field(key, "\(value)") }
            writer.endObject()
            line = String(decoding: writer.bytes, as: UTF8.self) + "\n"
        } else {
            let fields = merged.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line =
                "\(stamp) \(event.level.rawValue.uppercased()) \(event.message)\(fields.isEmpty ? "" : " " + fields)\n"
        }
        if let sink {
            sink(line)
            return
        }
        Self.lock.withLock { _ in
            var bytes = Array(line.utf8)
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
                if written <= 0 { break }
                offset += written
            }
        }
    }
}
