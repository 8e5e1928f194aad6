#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A peer's IP address as the socket gave it, formatted (inet_ntop) only when someone reads it.
enum PeerAddress: Sendable {
    case text(String)
    case ipv4(UInt32)
    /// The 16 address bytes in network order, as two words.
    case ipv6(UInt64, UInt64)

    /// Copies the address out of `address` (which libmicrohttpd owns); "" when there is none or it is not IP.
    init(_ address: UnsafePointer<sockaddr>?) {
        guard let address else {
            self = .text("")
            return
        }
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            self = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { .ipv4($0.pointee.sin_addr.s_addr) }
        case AF_INET6:
            self = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { ipv6 in
                withUnsafeBytes(of: ipv6.pointee.sin6_addr) { raw in
                    .ipv6(raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                        raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                }
            }
        default:
            self = .text("")
        }
    }

    var text: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let written: UnsafePointer<CChar>?
        switch self {
        case .text(let text):
            return text
        case .ipv4(let word):
            var raw = in_addr(s_addr: word)
            written = inet_ntop(AF_INET, &raw, &buffer, socklen_t(buffer.count))
        case .ipv6(let high, let low):
            var raw = in6_addr()
            withUnsafeMutableBytes(of: &raw) { bytes in
                bytes.storeBytes(of: high, toByteOffset: 0, as: UInt64.self)
                bytes.storeBytes(of: low, toByteOffset: 8, as: UInt64.self)
            }
            written = inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count))
        }
        guard written != nil else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
