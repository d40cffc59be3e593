/// The ray tracer (docs/raytracer.md, "Shading"): a port of `Public/raytracer.js` that evaluates every
/// expression in the same order, so the bytes are the same. Checked against the digests in
/// Tests/vectors/raytracer.json.

private let epsilon = 1e-6
private let shadowBias = 1e-4

/// A rectangle of the image, in pixels.
public struct Tile: Equatable, Hashable, Sendable, Codable {
    public var x, y, width, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) { self.x = x; self.y = y; self.width = width; self.height = height }
}

public enum RenderError: Error, CustomStringConvertible, Sendable {
    case tileOutside(Tile, width: Int, height: Int)
    case cancelled
    public var description: String {
        switch self {
        case .tileOutside(let t, let w, let h): "tile {x: \(t.x), y: \(t.y), width: \(t.width), height: \(t.height)} is not inside the \(w)x\(h) image"
        case .cancelled: "the render was cancelled"
        }
    }
}

/// x^n for a non-negative integer n, by repeated multiplication (never pow).
@inline(__always) private func ipow(_ x: Double, _ n: Int) -> Double {
    var r = 1.0
    for _ in 0..<n { r = r * x }
    return r
}

/// Colour channel to byte: clamp to [0, 1], then floor(c · 255 + 0.5).
@inline(__always) private func quantize(_ c: Double) -> UInt8 {
    let v = c < 0 ? 0 : (c > 1 ? 1 : c)
    return UInt8((v * 255 + 0.5).rounded(.down))
}

extension Scene {
    /// Distance along the ray to the object, or +∞. `d` is a unit vector.
    @inline(__always) func intersect(_ o: SceneObject, _ origin: Vec3, _ d: Vec3) -> Double {
        switch o.shape {
        case .sphere(let center, _, let radius2):
            let oc = origin - center
            let b = oc.dot(d)
            let c = oc.dot(oc) - radius2
            let disc = b * b - c
            if disc < 0 { return .infinity }
            let s = disc.squareRoot()
            var t = -b - s
            if t < epsilon { t = -b + s }
            return t < epsilon ? .infinity : t
        case .plane(let point, let normal):
            let denom = normal.dot(d)
            if abs(denom) < 1e-12 { return .infinity }
            let t = (point - origin).dot(normal) / denom
            return t < epsilon ? .infinity : t
        }
    }

    /// The nearest hit: the first object with the smallest distance, in scene order.
    func nearest(_ origin: Vec3, _ d: Vec3) -> (t: Double, index: Int)? {
        var best = Double.infinity
        var hit = -1
        for i in objects.indices {
            let t = intersect(objects[i], origin, d)
            if t < best { best = t; hit = i }
        }
        return hit < 0 ? nil : (best, hit)
    }

    func surfaceColor(_ m: Material, _ p: Vec3) -> Vec3 {
        switch m.kind {
        case .solid(let color): return color
        case .checker(let a, let b, let size):
            let k = (p.x / size).rounded(.down) + (p.z / size).rounded(.down)
            return k - 2 * (k / 2).rounded(.down) == 0 ? a : b
        }
    }

    func trace(_ origin: Vec3, _ d: Vec3, _ depth: Int) -> Vec3 {
        guard let hit = nearest(origin, d) else { return background }
        let o = objects[hit.index]
        let m = o.material
        let p = origin + d * hit.t
        var n: Vec3
        switch o.shape {
        case .sphere(let center, let radius, _): n = (p - center) * (1 / radius)
        case .plane(_, let normal): n = normal
        }
        if n.dot(d) > 0 { n = n * -1 }
        let base = surfaceColor(m, p)
        let lifted = p + n * shadowBias
        var color = ambient ⊙ base
        for light in lights {
            let toLight = light.position - lifted
            let distance = toLight.dot(toLight).squareRoot()
            let l = toLight * (1 / distance)
            if let blocker = nearest(lifted, l), blocker.t < distance { continue }
            let lambert = n.dot(l)
            if lambert > 0 { color = color + (light.color ⊙ base) * (m.diffuse * lambert) }
            if m.specular > 0 {
                let r = n * (2 * n.dot(l)) - l
                let rv = -r.dot(d)
                if rv > 0 { color = color + light.color * (m.specular * ipow(rv, m.shininess)) }
            }
        }
        if m.reflect > 0 && depth < maxDepth {
            let reflected = d - n * (2 * d.dot(n))
            let bounce = trace(lifted, reflected, depth + 1)
            color = color * (1 - m.reflect) + bounce * m.reflect
        }
        return color
    }

    /// Renders `tile`: width · height · 4 bytes, RGBA, rows top to bottom, alpha 255.
    /// `isCancelled` is polled once per row (a deadline or a cancelled task stops the render).
    public func render(_ tile: Tile, isCancelled: () -> Bool = { false }) throws -> [UInt8] {
        // Compared without adding: the numbers may come from another peer and must not overflow.
        guard tile.x >= 0, tile.y >= 0, tile.width >= 1, tile.height >= 1,
              tile.width <= width, tile.height <= height, tile.x <= width - tile.width, tile.y <= height - tile.height
        else { throw RenderError.tileOutside(tile, width: width, height: height) }
        var out = [UInt8](repeating: 0, count: tile.width * tile.height * 4)
        let s = samples
        let sd = Double(s)
        let inv = 1 / (sd * sd)
        let w = Double(width), h = Double(height)
        var k = 0
        for py in tile.y..<(tile.y + tile.height) {
            if isCancelled() { throw RenderError.cancelled }
            for px in tile.x..<(tile.x + tile.width) {
                var acc = Vec3(0, 0, 0)
                for sy in 0..<s {
                    for sx in 0..<s {
                        let u = (Double(px) + (Double(sx) + 0.5) / sd) / w
                        let v = (Double(py) + (Double(sy) + 0.5) / sd) / h
                        let a = (2 * u - 1) * camera.halfWidth
                        let b = (1 - 2 * v) * camera.halfHeight
                        let d = ((camera.forward + camera.right * a) + camera.up * b).normalized()
                        acc = acc + trace(camera.position, d, 0)
                    }
                }
                out[k] = quantize(acc.x * inv)
                out[k + 1] = quantize(acc.y * inv)
                out[k + 2] = quantize(acc.z * inv)
                out[k + 3] = 255
                k += 4
            }
        }
        return out
    }

    /// The whole image, RGBA.
    public func renderImage() throws -> [UInt8] { try render(Tile(x: 0, y: 0, width: width, height: height)) }
}

/// Splits a width × height image into `count` tiles, as `tiles` in Public/raytracer.js: cols =
/// ceil(sqrt(count)), rows = ceil(count / cols), each capped by the image side; row-major order.
public func tiles(width: Int, height: Int, count: Int) -> [Tile] {
    var cols = 1
    while cols * cols < count { cols += 1 }
    let rows = max(1, (count + cols - 1) / cols)
    cols = min(cols, width)
    let r = min(rows, height)
    var out: [Tile] = []
    out.reserveCapacity(cols * r)
    for j in 0..<r {
        let y0 = j * height / r, y1 = (j + 1) * height / r
        for i in 0..<cols {
            let x0 = i * width / cols, x1 = (i + 1) * width / cols
            out.append(Tile(x: x0, y: y0, width: x1 - x0, height: y1 - y0))
        }
    }
    return out
}

/// Copies a rendered tile into the full RGBA image.
public func blit(_ image: inout [UInt8], imageWidth: Int, tile: Tile, pixels: [UInt8]) {
    let rowBytes = tile.width * 4
    for row in 0..<tile.height {
        let from = row * rowBytes
        let to = ((tile.y + row) * imageWidth + tile.x) * 4
        image.replaceSubrange(to..<(to + rowBytes), with: pixels[from..<(from + rowBytes)])
    }
}
