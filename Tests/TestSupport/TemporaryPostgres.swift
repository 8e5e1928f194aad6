import Foundation

/// Facts about the test environment that `scripts/test.sh` sets up.
public enum TestEnvironment {
    /// The shared throwaway PostgreSQL started by the test script (a superuser URL), if any.
    public static var databaseURL: String? {
        ProcessInfo.processInfo.environment["TOKEN_GATEWAY_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// True when PostgreSQL's server binaries are installed, so a test may start a private cluster.
    public static var hasPostgresBinaries: Bool {
        FileManager.default.isExecutableFile(atPath: TemporaryPostgres.binDirectory + "/initdb")
    }
}

/// Errors of the test helpers, with enough text to act on.
public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Runs a program to completion with a bounded wait and returns its exit status and combined output.
@discardableResult
public func runProgram(
    _ path: String, _ arguments: [String], timeoutSeconds: Double = 60, environment: [String: String]? = nil
) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let deadline = Date().addingTimeInterval(timeoutSeconds)
    // Read output on a separate thread so a chatty program cannot fill the pipe and stall.
    let collected = OutputBox()
    let reader = Thread {
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        collected.set(data)
    }
    reader.start()
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning {
        // SIGKILL, not terminate(): a process started from a test thread may inherit a mask that blocks SIGTERM.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        throw TestSupportError("\(path) \(arguments.joined(separator: " ")) did not finish in \(timeoutSeconds) s")
    }
    process.waitUntilExit()
    let output = collected.waitForValue(timeoutSeconds: 5)
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

private final class OutputBox: @unchecked Sendable {
    // Guarded by `lock`; written once by the reader thread, read by the caller.
    private let lock = NSCondition()
    private var data: Data?
    func set(_ value: Data) {
        lock.lock()
        data = value
        lock.signal()
        lock.unlock()
    }
    func waitForValue(timeoutSeconds: Double) -> Data {
        lock.lock()
        defer { lock.unlock() }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while data == nil && lock.wait(until: deadline) {}
        return data ?? Data()
    }
}

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
public func freeLocalPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestSupportError("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestSupportError("bind() failed") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw TestSupportError("getsockname() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A private PostgreSQL cluster in a temporary folder, for tests that must stop or restart the server.
/// Call `stop()` (or `destroy()`) in a `defer`: the test owns the process it started.
public final class TemporaryPostgres: @unchecked Sendable {
    // Mutated only by the owning test, one call at a time.
    public static let binDirectory = "/usr/lib/postgresql/15/bin"

    public let directory: String
    public let port: Int
    public var url: String { "postgresql://postgres@127.0.0.1:\(port)/postgres?sslmode=disable" }

    private init(directory: String, port: Int) {
        self.directory = directory
        self.port = port
    }

    private static var runsAsRoot: Bool { geteuid() == 0 }

    private static func asPostgres(_ program: String, _ arguments: [String], timeout: Double) throws -> String {
        let result: (status: Int32, output: String)
        if runsAsRoot {
            result = try runProgram("/usr/sbin/runuser", ["-u", "postgres", "--", program] + arguments, timeoutSeconds: timeout)
        } else {
            result = try runProgram(program, arguments, timeoutSeconds: timeout)
        }
        guard result.status == 0 else {
            throw TestSupportError("\(program) failed (\(result.status)): \(result.output)")
        }
        return result.output
    }

    /// Initialises and starts a new cluster on a free port of 127.0.0.1.
    public static func start() throws -> TemporaryPostgres {
        let template = "/tmp/tgw-pg-XXXXXX"
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else { throw TestSupportError("mkdtemp failed") }
        let directory = String(cString: made)
        if runsAsRoot {
            _ = try runProgram("/bin/chown", ["postgres:postgres", directory])
        }
        chmod(directory, 0o700)
        let cluster = TemporaryPostgres(directory: directory, port: try freeLocalPort())
        _ = try asPostgres(
            binDirectory + "/initdb",
            ["-D", directory + "/data", "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "-N"],
            timeout: 60)
        try cluster.startServer()
        return cluster
    }

    /// Starts the server process of an initialised cluster (again).
    public func startServer() throws {
        _ = try Self.asPostgres(
            Self.binDirectory + "/pg_ctl",
            [
                "-D", directory + "/data", "-l", directory + "/log", "-w", "-t", "30", "-o",
                "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
                "start",
            ], timeout: 45)
    }

    /// Stops the server (fast mode), keeping the data for `startServer()`.
    public func stopServer() throws {
        _ = try Self.asPostgres(
            Self.binDirectory + "/pg_ctl", ["-D", directory + "/data", "-w", "-t", "30", "-m", "fast", "stop"],
            timeout: 45)
    }

    /// Stops the server if it runs and removes the folder.
    public func destroy() {
        _ = try? Self.asPostgres(
            Self.binDirectory + "/pg_ctl", ["-D", directory + "/data", "-w", "-t", "30", "-m", "immediate", "stop"],
            timeout: 45)
        _ = try? runProgram("/bin/rm", ["-rf", directory])
    }

    /// Runs SQL through psql as the superuser and returns its output.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        try TemporaryPostgres.psql(url: url, sql, database: database)
    }

    /// Runs SQL through psql against any URL.
    @discardableResult
    public static func psql(url: String, _ sql: String, database: String? = nil) throws -> String {
        var target = url
        if let database, let range = target.range(of: "/postgres?") {
            target.replaceSubrange(range, with: "/\(database)?")
        }
        let result = try runProgram(
            "/usr/bin/psql", [target, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-c", sql], timeoutSeconds: 60)
        guard result.status == 0 else { throw TestSupportError("psql failed: \(result.output)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A fresh database in the shared test cluster, so parallel tests never see each other's rows.
public enum TestDatabase {
    /// Creates an empty database and returns its URL; throws when no test cluster is configured.
    public static func create(prefix: String = "t") throws -> String {
        guard let base = TestEnvironment.databaseURL else {
            throw TestSupportError("TOKEN_GATEWAY_TEST_DATABASE_URL is not set: run the tests with scripts/test.sh")
        }
        let name = "\(prefix)_\(UInt64.random(in: 0...UInt64.max) & 0xffff_ffff_ffff)"
        try TemporaryPostgres.psql(url: base, "CREATE DATABASE \(name)")
        guard let range = base.range(of: "/postgres") else { throw TestSupportError("unexpected test URL shape") }
        var url = base
        url.replaceSubrange(range, with: "/\(name)")
        return url
    }
}

/// Polls `condition` every 10 ms until it holds or `seconds` pass; returns whether it held.
public func eventually(within seconds: Double, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    repeat {
        if try await condition() { return true }
        try? await Task.sleep(nanoseconds: 10_000_000)
    } while Date() < deadline
    return try await condition()
}
