import Synchronization

/// Request ids: taken from `X-Request-Id` when well-formed, otherwise generated.
enum RequestID {
    /// `candidate` when it is 1...128 characters of `[A-Za-z0-9._:-]`, else nil.
    static func accept(_ candidate: String?) -> String? {
        guard let candidate, (1...128).contains(candidate.utf8.count) else { return nil }
        for byte in candidate.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"),
                UInt8(ascii: "-"):
                continue
            default:
                return nil
            }
        }
        return candidate
    }

    /// A process-wide random seed, drawn once; ids mix it with a counter (no system call per request).
    private static let seed: (UInt64, UInt64) = {
        var generator = SystemRandomNumberGenerator()
        return (generator.next(), generator.next())
    }()
    private static let counter = Atomic<UInt64>(0)

    /// 32 lowercase hex digits, unique within the process and unpredictable across processes. Ids are for
    /// correlation, not secrets: two bijective mixes of a random seed plus a counter are enough.
    static func generate() -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        let digits = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: 32) { buffer in
            var index = 0
            for var word in [mix(seed.0 &+ n), mix(seed.1 ^ (n &* 0x9E37_79B9_7F4A_7C15))] {
                for _ in 0..<16 {
                    buffer[index] = digits[Int(word & 0xF)]
                    word >>= 4
                    index += 1
                }
            }
            return 32
        }
    }

    /// SplitMix64's finaliser: a bijection on UInt64 that spreads every input bit.
    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
