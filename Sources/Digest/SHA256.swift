import CCrypto
import Hex

/// SHA-256 (FIPS 180-4) of `bytes`, by libcrypto: 32 bytes.
public func sha256(_ bytes: [UInt8]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: 32)
    bc_sha256(bytes, bytes.count, &out)
    return out
}

/// SHA-256 of `bytes` as 64 lowercase hex digits (what `sha256sum` prints).
public func sha256Hex(_ bytes: [UInt8]) -> String { Hex.encode(sha256(bytes)) }
