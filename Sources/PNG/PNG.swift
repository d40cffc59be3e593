import CZlib

/// PNG encoding of 8-bit RGBA images (ISO/IEC 15948 / W3C PNG, 2nd ed.): signature, IHDR, one IDAT
/// with the zlib stream (system zlib, level 9, filter type 0 on every row) and IEND. No time or text
/// chunks, so equal pixels always give equal files.
public enum PNG {
    public enum Failure: Error, CustomStringConvertible {
        case badSize(width: Int, height: Int, bytes: Int)
        case zlib(Int32)
        public var description: String {
            switch self {
            case .badSize(let w, let h, let n): "an RGBA image of \(w)x\(h) needs \(w * h * 4) bytes, got \(n)"
            case .zlib(let code): "zlib failed with code \(code)"
            }
        }
    }

    /// The PNG file of a `width` × `height` RGBA image (rows top to bottom).
    public static func encode(rgba: [UInt8], width: Int, height: Int) throws -> [UInt8] {
        guard width > 0, height > 0, width <= 1 << 24, height <= 1 << 24, rgba.count == width * height * 4 else {
            throw Failure.badSize(width: width, height: height, bytes: rgba.count)
        }
        // Each scanline is preceded by its filter type byte (0: none).
        var raw = [UInt8]()
        raw.reserveCapacity(height * (width * 4 + 1))
        for row in 0..<height {
            raw.append(0)
            raw.append(contentsOf: rgba[(row * width * 4)..<((row + 1) * width * 4)])
        }
        var destLength = compressBound(uLong(raw.count))
        var compressed = [UInt8](repeating: 0, count: Int(destLength))
        let code = compress2(&compressed, &destLength, raw, uLong(raw.count), 9)
        guard code == Z_OK else { throw Failure.zlib(code) }
        compressed.removeSubrange(Int(destLength)...)

        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header = [UInt8]()
        header.appendBigEndian(UInt32(width))
        header.appendBigEndian(UInt32(height))
        header += [8, 6, 0, 0, 0]   // bit depth 8, colour type 6 (RGBA), deflate, adaptive filtering, no interlace
        chunk("IHDR", header, into: &out)
        chunk("IDAT", compressed, into: &out)
        chunk("IEND", [], into: &out)
        return out
    }

    private static func chunk(_ type: String, _ data: [UInt8], into out: inout [UInt8]) {
        out.appendBigEndian(UInt32(data.count))
        let typeAndData = Array(type.utf8) + data
        out += typeAndData
        let crc = typeAndData.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
        out.appendBigEndian(UInt32(crc))
    }
}

extension Array where Element == UInt8 {
    mutating func appendBigEndian(_ v: UInt32) {
        append(UInt8(v >> 24)); append(UInt8((v >> 16) & 0xff)); append(UInt8((v >> 8) & 0xff)); append(UInt8(v & 0xff))
    }
}
