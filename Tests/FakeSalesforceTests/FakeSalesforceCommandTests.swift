import Foundation
import Logging
import TestSupport
import Testing

@testable import FakeSalesforce

#if canImport(Glibc)
    import Glibc
#endif

/// The `fake-salesforce` executable, run as a process.
@Suite struct FakeSalesforceCommandTests {
    static func executablePath() throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        var candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
                "fake-salesforce"
            ).path,
            root.appendingPathComponent(".build/debug/fake-salesforce").path,
        ]
        if let buildDirectory = ProcessInfo.processInfo.environment["BUILD_DIR"] {
            candidates.insert(buildDirectory + "/fake-salesforce", at: 0)
        }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestSupportError("fake-salesforce executable not found in \(candidates)")
        }
        return found
    }

    @Test func commandPrintsItsURLPreloadsConfigAndStopsOnSIGTERM() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fake-sf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("config.json")
        try Data(
            #"{"apps":[{"client_id":"cfg","client_secret":"cfg-secret","client_credentials_user":"svc@example.com"}]}"#
                .utf8
        ).write(to: config)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.executablePath())
        process.arguments = ["--port", "0", "--host", "127.0.0.1", "--config", config.path]
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        let line = try await Self.firstLine(of: stdout, timeoutSeconds: 20)
        let match = try #require(line.wholeMatch(of: /listening http:\/\/127\.0\.0\.1:(\d+)/))
        let port = try #require(Int(match.1))

        let answer = try await RawHTTP.form(
            port: port, "/services/oauth2/token",
            [("grant_type", "client_credentials"), ("client_id", "cfg"), ("client_secret", "cfg-secret")])
        #expect(answer.status == 200)
        #expect(answer.json["instance_url"] as? String == "http://127.0.0.1:\(port)")

        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!process.isRunning)
        if !process.isRunning { #expect(process.terminationStatus == 0) }
    }

    /// Reads the first line the process prints, with a bounded wait.
    static func firstLine(of pipe: Pipe, timeoutSeconds: Double) async throws -> String {
        let handle = pipe.fileHandleForReading
        let fd = handle.fileDescriptor
        return try await withCheckedThrowingContinuation { continuation in
            Thread {
                var bytes: [UInt8] = []
                let deadline = Date().addingTimeInterval(timeoutSeconds)
                var byte: UInt8 = 0
                while Date() < deadline {
                    var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    guard poll(&poller, 1, 100) > 0 else { continue }
                    guard read(fd, &byte, 1) == 1 else { break }
                    if byte == UInt8(ascii: "\n") {
                        continuation.resume(returning: String(decoding: bytes, as: UTF8.self))
                        return
                    }
                    bytes.append(byte)
                }
                continuation.resume(throwing: TestSupportError("no line from fake-salesforce in \(timeoutSeconds) s"))
            }.start()
        }
    }
}
