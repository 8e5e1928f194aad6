import Codecs

/// The hosts a URL the gateway calls may name: a DNS name, a dotted-quad IPv4 literal or a bracketed IPv6 literal.
/// Anything a resolver or another URL parser could read differently (a `:` outside brackets, an empty label,
/// `127.1`, `0x7f000001`, a zone id) is refused, so the host the allow-list checks is the host libcurl connects to.
public enum HostName {
    /// `host` as it appears in the URL, lowercased; IPv6 keeps its brackets.
    public static func isValid(_ host: String) -> Bool {
        guard host.utf8.allSatisfy({ $0 < 0x80 }) else { return false }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { return false }
            return isIPv6(String(host.dropFirst().dropLast()))
        }
        return isIPv4(host) || isDNSName(host)
    }

    /// Labels of 1 to 63 letters, digits and inner hyphens, at most 253 characters in all; the last label starts
    /// with a letter (no top-level domain starts with a digit, and resolvers read `127.1` or `0x7f.1` as IPv4).
    public static func isDNSName(_ host: String) -> Bool {
        guard (1...253).contains(host.utf8.count) else { return false }
        let labels = host.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        for label in labels {
            guard (1...63).contains(label.count), label.first != UInt8(ascii: "-"), label.last != UInt8(ascii: "-"),
                label.allSatisfy({ isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "-") })
            else { return false }
        }
        return labels.last.flatMap(\.first).map(isLetter) ?? false
    }

    /// Four decimal parts 0 to 255, without leading zeros (which some resolvers read as octal).
    public static func isIPv4(_ text: some StringProtocol) -> Bool {
        let parts = text.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        return parts.count == 4
            && parts.allSatisfy { part in
                (1...3).contains(part.count) && part.allSatisfy(isDigit)
                    && (part.count == 1 || part.first != UInt8(ascii: "0"))
                    && Int(String(decoding: part, as: UTF8.self))! <= 255
            }
    }

    /// Eight groups of 1 to 4 hex digits, one `::` standing for at least one zero group, an IPv4 tail counting as two.
    public static func isIPv6(_ text: String) -> Bool {
        let halves = text.split(separator: "::", omittingEmptySubsequences: false)
        guard halves.count <= 2, text.utf8.count <= 45 else { return false }
        var groups = 0
        for (half, piece) in halves.enumerated() where !piece.isEmpty {
            let pieces = piece.split(separator: ":", omittingEmptySubsequences: false)
            for (position, group) in pieces.enumerated() {
                if half == halves.count - 1, position == pieces.count - 1, group.contains(".") {
                    guard isIPv4(group) else { return false }
                    groups += 2
                } else {
                    guard (1...4).contains(group.utf8.count), group.utf8.allSatisfy(isHexDigit) else { return false }
                    groups += 1
                }
            }
        }
        return halves.count == 2 ? groups <= 7 : groups == 8
    }

    private static func isLetter(_ c: UInt8) -> Bool { (0x61...0x7A).contains(c) }
    private static func isDigit(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) }
    private static func isHexDigit(_ c: UInt8) -> Bool { isDigit(c) || (0x61...0x66).contains(c) }
}
