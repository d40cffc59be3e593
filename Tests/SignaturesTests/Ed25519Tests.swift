import Foundation
import Hex
import Signatures
import Testing

/// One test vector of RFC 8032 section 7.1, from Tests/vectors/ed25519-rfc8032.json (hex).
struct RFC8032Vector: CustomTestStringConvertible, Sendable {
    let name: String
    let secretKey: [UInt8]
    let publicKey: [UInt8]
    let message: [UInt8]
    let signature: [UInt8]
    var testDescription: String { name }

    static func all() throws -> [RFC8032Vector] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("vectors/ed25519-rfc8032.json")
        let file = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
        let list = try #require(file?["vectors"] as? [[String: String]])
        return try list.map { v in
            func bytes(_ key: String) throws -> [UInt8] { try #require(v[key].flatMap(Hex.decode)) }
            return RFC8032Vector(name: try #require(v["name"]), secretKey: try bytes("secretKey"),
                                 publicKey: try bytes("publicKey"), message: try bytes("message"),
                                 signature: try bytes("signature"))
        }
    }
}

@Suite struct Ed25519Tests {
    @Test func theVectorFileHasTheFourVectorsOfSection7_1() throws {
        let vectors = try RFC8032Vector.all()
        #expect(vectors.map(\.name) == ["TEST 1", "TEST 2", "TEST 3", "TEST 1024"])
        #expect(vectors.map(\.message.count) == [0, 1, 2, 1023])
    }

    @Test(arguments: try RFC8032Vector.all())
    func publicKeyAndSignatureMatchRFC8032(_ v: RFC8032Vector) throws {
        let key = try Ed25519.PrivateKey(seed: v.secretKey)
        #expect(key.publicKey.bytes == v.publicKey)
        #expect(key.signature(for: v.message) == v.signature)
        let publicKey = try Ed25519.PublicKey(bytes: v.publicKey)
        #expect(publicKey.isValidSignature(v.signature, for: v.message))
    }

    @Test(arguments: try RFC8032Vector.all())
    func aFlippedBitInMessageSignatureOrKeyFailsVerification(_ v: RFC8032Vector) throws {
        let publicKey = try Ed25519.PublicKey(bytes: v.publicKey)
        // Each bit position class: the first byte, a middle byte, the last byte.
        func flips(_ bytes: [UInt8]) -> [[UInt8]] {
            guard !bytes.isEmpty else { return [] }
            return [0, bytes.count / 2, bytes.count - 1].flatMap { i in
                [0, 7].map { bit in var b = bytes; b[i] ^= 1 << bit; return b }
            }
        }
        for message in flips(v.message) {
            #expect(!publicKey.isValidSignature(v.signature, for: message))
        }
        // The empty message (TEST 1) has no bit to flip: a one-byte message must fail instead.
        #expect(!publicKey.isValidSignature(v.signature, for: v.message + [0]))
        for signature in flips(v.signature) {
            #expect(!publicKey.isValidSignature(signature, for: v.message))
        }
        for keyBytes in flips(v.publicKey) {
            // A flipped key is either refused at once or fails every verification.
            if let key = try? Ed25519.PublicKey(bytes: keyBytes) {
                #expect(!key.isValidSignature(v.signature, for: v.message))
            }
        }
    }

    @Test func signaturesOfTheWrongLengthAreInvalid() throws {
        let v = try #require(try RFC8032Vector.all().first)
        let publicKey = try Ed25519.PublicKey(bytes: v.publicKey)
        #expect(!publicKey.isValidSignature(Array(v.signature.dropLast()), for: v.message))
        #expect(!publicKey.isValidSignature(v.signature + [0], for: v.message))
        #expect(!publicKey.isValidSignature([], for: v.message))
    }

    @Test func keysOfTheWrongLengthAreRefused() {
        #expect(throws: Ed25519.KeyError.wrongLength(expected: 32, got: 31)) {
            try Ed25519.PrivateKey(seed: [UInt8](repeating: 1, count: 31))
        }
        #expect(throws: Ed25519.KeyError.wrongLength(expected: 32, got: 33)) {
            try Ed25519.PublicKey(bytes: [UInt8](repeating: 1, count: 33))
        }
    }

    @Test func generatedKeysSignAndVerifyAndDiffer() throws {
        let a = try Ed25519.PrivateKey.generate()
        let b = try Ed25519.PrivateKey.generate()
        #expect(a.seed != b.seed)
        #expect(a.publicKey != b.publicKey)
        let message = Array("browsercloud-register-v1".utf8)
        let signature = a.signature(for: message)
        #expect(signature.count == Ed25519.signatureCount)
        #expect(a.publicKey.isValidSignature(signature, for: message))
        #expect(!b.publicKey.isValidSignature(signature, for: message))
        // Deterministic: the same key and message give the same signature (RFC 8032 section 5.1.6).
        #expect(a.signature(for: message) == signature)
        // The seed never appears in the key's text.
        #expect(!String(describing: a).contains(Hex.encode(a.seed)))
    }
}
