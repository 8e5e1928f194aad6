#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How many connections the server keeps, and libmicrohttpd's hard cap above that: shed connections take a
/// moment to close, and new clients must not be refused meanwhile. Both shrink to fit the process's open-file
/// limit, leaving `reserved` descriptors for everything else (database pool, Salesforce calls, logs).
struct ConnectionBudget: Equatable {
    /// Connections kept open; past it the watchdog sheds the longest waiting.
    let kept: Int
    /// `MHD_OPTION_CONNECTION_LIMIT`: libmicrohttpd refuses connections beyond it.
    let hardCap: Int

    static let reserved = 256

    /// The room above `kept` for connections shed but not yet closed.
    static func margin(_ kept: Int) -> Int { max(16, kept / 8) }

    init(maxConnections: Int, openFileLimit: Int) {
        let available = max(2, openFileLimit - Self.reserved)
        var kept = max(1, maxConnections)
        if kept + Self.margin(kept) > available {
            kept = max(1, available - Self.margin(available))
        }
        self.kept = kept
        self.hardCap = min(kept + Self.margin(kept), available)
    }

    /// The listen backlog asked for: enough for a burst of `kept` connects (the kernel caps it at
    /// `net.core.somaxconn`).
    var listenBacklog: Int { min(max(kept, 128), 65535) }
}

/// The process's limit on open files (RLIMIT_NOFILE).
enum OpenFileLimit {
    /// Raises the soft limit to the hard limit when it is below `needed`; returns the soft limit in force.
    static func raise(toFit needed: Int) -> Int {
        #if canImport(Glibc)
            let resource = Int32(RLIMIT_NOFILE.rawValue)
        #else
            let resource = RLIMIT_NOFILE
        #endif
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return needed }  // unknown: assume it fits
        if limit.rlim_cur < rlim_t(clamping: needed) && limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(resource, &raised) == 0 { limit = raised }
        }
        return Int(clamping: limit.rlim_cur)
    }
}
