import Foundation

/// Facts about the test environment.
public enum TestEnvironment {
    /// The throwaway PostgreSQL started by `scripts/test.sh` (a superuser URL), if any; see `TestDatabase`.
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
///
/// Uses `posix_spawn` + `waitpid` rather than Foundation's `Process`: on Linux, `Process` learns of a child's exit
/// through a socket the child inherits, so when the child leaves a daemon behind (`pg_ctl start` leaves the
/// postmaster, which keeps that socket open) `waitUntilExit()` never returns. Here the child gets only
/// stdin=/dev/null and stdout/stderr=a pipe (every other descriptor is closed), and its exit is reaped directly.
@discardableResult
public func runProgram(
    _ path: String, _ arguments: [String], timeoutSeconds: Double = 60, environment: [String: String]? = nil
) throws -> (status: Int32, output: String) {
    var pipeEnds: [Int32] = [-1, -1]
    // O_CLOEXEC: children spawned concurrently by other threads must not inherit this pipe.
    guard GlibcExtras.pipe2(&pipeEnds, O_CLOEXEC) == 0 else {
        throw TestSupportError("pipe2() failed: errno \(errno)")
    }
    let (readEnd, writeEnd) = (pipeEnds[0], pipeEnds[1])

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
    posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
    guard GlibcExtras.addCloseFrom(&actions, 3) == 0 else { throw TestSupportError("addclosefrom failed") }

    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let envp = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
    defer { envp?.forEach { free($0) } }

    var pid: pid_t = 0
    let spawned =
        envp.map { posix_spawn(&pid, path, &actions, nil, argv, $0) }
        ?? posix_spawn(&pid, path, &actions, nil, argv, environ)
    close(writeEnd)
    guard spawned == 0 else {
        close(readEnd)
        throw TestSupportError("could not start \(path): error \(spawned)")
    }

    // Read output on a separate thread so a chatty program cannot fill the pipe and stall.
    let collected = OutputBox()
    let reader = Thread {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(readEnd, &buffer, buffer.count)
            if count > 0 {
                data.append(contentsOf: buffer[0..<count])
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                break
            }
        }
        close(readEnd)
        collected.set(data)
    }
    reader.start()

    let deadline = Date().addingTimeInterval(timeoutSeconds)
    var status: Int32 = 0
    while true {
        let reaped = waitpid(pid, &status, WNOHANG)
        if reaped == pid { break }
        if reaped < 0 && errno != EINTR { throw TestSupportError("waitpid failed for \(path): errno \(errno)") }
        if Date() >= deadline {
            kill(pid, SIGTERM)
            _ = waitpid(pid, &status, 0)
            throw TestSupportError("\(path) \(arguments.joined(separator: " ")) did not finish in \(timeoutSeconds) s")
        }
        usleep(10_000)
    }
    let output = collected.waitForValue(timeoutSeconds: 5)
    // Exited normally: the exit code; killed by a signal: 128 + the signal number, as shells report it.
    let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return (exitStatus, String(decoding: output, as: UTF8.self))
}

/// glibc functions that Swift's Glibc module does not import (they are behind _GNU_SOURCE / __USE_MISC).
private enum GlibcExtras {
    typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    // unsafeBitCast: dlsym returns an untyped pointer; the types above match glibc's declarations
    // (`int pipe2(int[2], int)`, `int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *, int)`).
    static let pipe2: Pipe2 = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pipe2") else {
            return { fds, _ in pipe(fds) }
        }
        return unsafeBitCast(symbol, to: Pipe2.self)
    }()

    static let addCloseFrom: AddCloseFrom = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        else { return { _, _ in 0 } }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
    }()
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
    /// The server's `max_connections`.
    public let maxConnections: Int
    public var url: String { "postgresql://postgres@127.0.0.1:\(port)/postgres?sslmode=disable" }

    private init(directory: String, port: Int, maxConnections: Int) {
        self.directory = directory
        self.port = port
        self.maxConnections = maxConnections
    }

    private static var runsAsRoot: Bool { geteuid() == 0 }

    private static func asPostgres(_ program: String, _ arguments: [String], timeout: Double) throws -> String {
        let result: (status: Int32, output: String)
        if runsAsRoot {
            result = try runProgram(
                "/usr/sbin/runuser", ["-u", "postgres", "--", program] + arguments, timeoutSeconds: timeout)
        } else {
            result = try runProgram(program, arguments, timeoutSeconds: timeout)
        }
        guard result.status == 0 else {
            throw TestSupportError("\(program) failed (\(result.status)): \(result.output)")
        }
        return result.output
    }

    /// Initialises and starts a new cluster on a free port of 127.0.0.1.
    public static func start(maxConnections: Int = 200) throws -> TemporaryPostgres {
        let template = "/tmp/tgw-pg-XXXXXX"
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else { throw TestSupportError("mkdtemp failed") }
        let directory = String(cString: made)
        if runsAsRoot {
            _ = try runProgram("/bin/chown", ["postgres:postgres", directory])
        }
        chmod(directory, 0o700)
        let cluster = TemporaryPostgres(directory: directory, port: try freeLocalPort(), maxConnections: maxConnections)
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
                "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off"
                    + " -c max_connections=\(maxConnections)",
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
        if let database, let range = target.range(of: "/postgres?", options: .backwards) {
            target.replaceSubrange(range, with: "/\(database)?")
        }
        let result = try runProgram(
            "/usr/bin/psql", [target, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-c", sql], timeoutSeconds: 60)
        guard result.status == 0 else { throw TestSupportError("psql failed: \(result.output)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
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
