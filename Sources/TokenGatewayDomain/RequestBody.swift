import Codecs

/// A JSON object request body with typed accessors whose errors name the field. Knows nothing of HTTP: the API
/// hands it the bytes and the `Content-Type`.
public struct RequestBody: Sendable {
    /// The body's members by name.
    public let members: [String: JSONValue]

    /// Applies the contract's checks in order: 413 over the limit, 415 not JSON, 400 empty or malformed or not an
    /// object. `tooLarge` says the transport cut the body at `maxBytes`; `contentType` is the request's header.
    public static func parse(_ body: [UInt8], contentType: String?, tooLarge: Bool, maxBytes: Int) throws(GatewayError)
        -> RequestBody
    {
        if tooLarge { throw .payloadTooLarge(limit: maxBytes) }
        if !body.isEmpty {
            guard isJSON(contentType) else { throw .unsupportedMediaType }
        }
        guard !body.isEmpty else { throw .invalidRequest("The request needs a JSON object body.") }
        if let members = FlatJSONObject.members(body) { return RequestBody(members: members) }
        let value: JSONValue
        do { value = try JSONValue.parse(body) } catch {
            throw .invalidRequest("The body is not valid JSON (\(error.reason) at byte \(error.offset)).")
        }
        guard case .object(let members) = value else { throw .invalidRequest("The body must be a JSON object.") }
        if let field = fieldHoldingNUL(members) {
            // PostgreSQL and C strings end at U+0000: such a string would be stored cut short, so refuse it whole.
            throw .invalidRequest("\(field): must not contain the character U+0000 (NUL).")
        }
        return RequestBody(members: members)
    }

    /// The ids of the usual `POST /token` body (`client`, optionally `connection`, both valid ids, nothing else)
    /// when the body passes every check of `parse` and holds just those; nil for anything else, which `parse`
    /// and the field accessors then answer as always.
    public static func tokenIDs(_ body: [UInt8], contentType: String?, tooLarge: Bool) -> (
        client: String, connection: String?
    )? {
        guard !tooLarge, !body.isEmpty, isJSON(contentType) else { return nil }
        return FlatJSONObject.tokenIDs(body)
    }

    /// The top-level field (first by name) with U+0000 in a string anywhere inside it or in a member name.
    static func fieldHoldingNUL(_ members: [String: JSONValue]) -> String? {
        guard let first = members.filter({ $0.key.utf8.contains(0) || holdsNUL($0.value) }).keys.min() else {
            return nil
        }
        return first.utf8.contains(0) ? "a member name" : first
    }

    static func holdsNUL(_ value: JSONValue) -> Bool {
        switch value {
        case .string(let string): string.utf8.contains(0)
        case .array(let items): items.contains(where: holdsNUL)
        case .object(let members): members.contains { $0.key.utf8.contains(0) || holdsNUL($0.value) }
        case .null, .bool, .number: false
        }
    }

    /// A body of the given members, without the HTTP checks.
    public init(members: [String: JSONValue]) { self.members = members }

    /// `application/json`, any case, optionally followed by parameters such as `; charset=utf-8`.
    static func isJSON(_ contentType: String?) -> Bool {
        guard var contentType else { return false }
        return contentType.withUTF8 { bytes in
            var index = 0
            func skipBlanks() { while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 { index += 1 } }
            skipBlanks()
            let media: StaticString = "application/json"
            guard bytes.count - index >= media.utf8CodeUnitCount else { return false }
            for offset in 0..<media.utf8CodeUnitCount {
                let byte = bytes[index + offset]
                let expected = media.utf8Start[offset]
                guard byte | 0x20 == expected || byte == expected else { return false }
            }
            index += media.utf8CodeUnitCount
            skipBlanks()
            return index == bytes.count || bytes[index] == UInt8(ascii: ";")
        }
    }

    /// Refuses members that are not in `allowed`, naming the first unknown one.
    public func only(_ allowed: Set<String>) throws(GatewayError) {
        if members.keys.allSatisfy(allowed.contains) { return }
        if let unknown = members.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw .invalidRequest("\(unknown): unknown field.")
        }
    }

    /// True when the body has `field`, even as null.
    public func has(_ field: String) -> Bool { members[field] != nil }
    /// True when `field` is present and null.
    public func isNull(_ field: String) -> Bool { members[field] == .null }

    /// A string field: nil when absent or null; an error when of another type or outside `length` characters.
    public func string(_ field: String, length: ClosedRange<Int> = 1...255) throws(GatewayError) -> String? {
        guard let value = members[field], value != .null else { return nil }
        guard case .string(let string) = value else { throw .invalidRequest("\(field): must be a string.") }
        guard length.contains(string.count) else {
            throw .invalidRequest("\(field): must be \(length.lowerBound) to \(length.upperBound) characters long.")
        }
        return string
    }

    /// Like `string(_:length:)`, but absent or null is an error.
    public func requiredString(_ field: String, length: ClosedRange<Int> = 1...255) throws(GatewayError) -> String {
        guard let value = try string(field, length: length) else { throw .invalidRequest("\(field): is required.") }
        return value
    }

    /// An integer field within `range`.
    public func integer(_ field: String, _ range: ClosedRange<Int>) throws(GatewayError) -> Int? {
        guard let value = members[field], value != .null else { return nil }
        guard case .number(let number) = value, number.rounded() == number, number >= Double(range.lowerBound),
            number <= Double(range.upperBound)
        else {
            throw .invalidRequest("\(field): must be a whole number from \(range.lowerBound) to \(range.upperBound).")
        }
        return Int(number)
    }

    /// A boolean field: nil when absent or null; an error when of another type.
    public func bool(_ field: String) throws(GatewayError) -> Bool? {
        guard let value = members[field], value != .null else { return nil }
        guard case .bool(let flag) = value else { throw .invalidRequest("\(field): must be true or false.") }
        return flag
    }

    /// An array of strings, each checked by `valid`.
    public func strings(_ field: String, maxCount: Int, valid: (String) -> Bool) throws(GatewayError) -> [String]? {
        guard let value = members[field], value != .null else { return nil }
        guard case .array(let items) = value, items.count <= maxCount else {
            throw .invalidRequest("\(field): must be an array of at most \(maxCount) strings.")
        }
        var out: [String] = []
        for item in items {
            guard case .string(let string) = item, valid(string) else {
                throw .invalidRequest("\(field): each entry must be a valid value (see the API reference).")
            }
            out.append(string)
        }
        return out
    }

    /// A resource id field (`^[a-z0-9][a-z0-9_-]{0,62}$`).
    public func id(_ field: String, default defaultValue: String? = nil) throws(GatewayError) -> String {
        guard let value = try string(field, length: 1...63) ?? defaultValue else {
            throw .invalidRequest("\(field): is required.")
        }
        guard ResourceID.isValid(value) else {
            throw .invalidRequest("\(field): must match ^[a-z0-9][a-z0-9_-]{0,62}$.")
        }
        return value
    }
}
