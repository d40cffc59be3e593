import WireProtocol

/// A 3-vector of binary64. The operations are component-wise and evaluated exactly as
/// docs/raytracer.md writes them (no fused multiply-add, no reassociation), so that this kernel and
/// `Public/raytracer.js` produce the same bytes.
public struct Vec3: Equatable, Sendable {
    public var x, y, z: Double
    public init(_ x: Double, _ y: Double, _ z: Double) { self.x = x; self.y = y; self.z = z }

    static func + (a: Vec3, b: Vec3) -> Vec3 { Vec3(a.x + b.x, a.y + b.y, a.z + b.z) }
    static func - (a: Vec3, b: Vec3) -> Vec3 { Vec3(a.x - b.x, a.y - b.y, a.z - b.z) }
    static func * (a: Vec3, s: Double) -> Vec3 { Vec3(a.x * s, a.y * s, a.z * s) }
    /// Component-wise product (⊙).
    static func ⊙ (a: Vec3, b: Vec3) -> Vec3 { Vec3(a.x * b.x, a.y * b.y, a.z * b.z) }
    func dot(_ b: Vec3) -> Double { x * b.x + y * b.y + z * b.z }
    func cross(_ b: Vec3) -> Vec3 { Vec3(y * b.z - z * b.y, z * b.x - x * b.z, x * b.y - y * b.x) }
    func normalized() -> Vec3 { let l = dot(self).squareRoot(); return Vec3(x / l, y / l, z / l) }
    var isFinite: Bool { x.isFinite && y.isFinite && z.isFinite }
}

infix operator ⊙: MultiplicationPrecedence

public struct Material: Sendable {
    public enum Kind: Sendable { case solid(Vec3), checker(Vec3, Vec3, size: Double) }
    public var kind: Kind
    public var diffuse, specular, reflect: Double
    public var shininess: Int
}

public struct SceneObject: Sendable {
    public enum Shape: Sendable {
        case sphere(center: Vec3, radius: Double, radius2: Double)
        case plane(point: Vec3, normal: Vec3)
    }
    public var shape: Shape
    public var material: Material
}

public struct Light: Sendable {
    public var position, color: Vec3
}

public struct Camera: Sendable {
    public var position, forward, right, up: Vec3
    public var halfWidth, halfHeight: Double
}

/// A validated scene with the camera basis computed (docs/raytracer.md, "Scene format").
public struct Scene: Sendable {
    /// Bounds on one task's work, the same as `LIMITS` in Public/raytracer.js.
    public enum Limits {
        public static let maxSide = 8192, maxSamples = 8, maxDepth = 8, maxObjects = 256, maxLights = 16
    }

    public var width, height, samples, maxDepth: Int
    public var ambient, background: Vec3
    public var camera: Camera
    public var objects: [SceneObject]
    public var lights: [Light]

    /// An invalid scene, naming the bad field as the JavaScript module does.
    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public let path: String, problem: String
        public var description: String { "scene: \(path) \(problem)" }
    }

    /// Parses and validates scene JSON text.
    public init(json: [UInt8]) throws {
        guard let value = JSONValue(parsing: json) else { throw Invalid(path: "", problem: "is not valid JSON") }
        try self.init(value)
    }

    public init(_ scene: JSONValue) throws {
        guard let s = scene.objectValue else { throw Invalid(path: "", problem: "must be an object") }
        width = try Self.int(s["width"], "width", 1, Limits.maxSide)
        height = try Self.int(s["height"], "height", 1, Limits.maxSide)
        guard let c = s["camera"], c != .null else { throw Invalid(path: "camera", problem: "is required") }
        let position = try Self.vec(c["position"], "camera.position")
        let lookAt = try Self.vec(c["lookAt"], "camera.lookAt")
        let up = try Self.vec(c["up"] ?? .array([.number(0), .number(1), .number(0)]), "camera.up")
        let viewHeight = try Self.num(c["viewHeight"] ?? .number(1), "camera.viewHeight", 1e-6, 1e6)
        let forward = (lookAt - position).normalized()
        let right = forward.cross(up).normalized()
        guard right.isFinite, forward.isFinite else {
            throw Invalid(path: "camera", problem: "position, lookAt and up must not be collinear")
        }
        let trueUp = right.cross(forward)
        let objects = try Self.list(s["objects"], "objects", Limits.maxObjects)
        let lights = try Self.list(s["lights"], "lights", Limits.maxLights)
        samples = try Self.int(s["samples"] ?? .number(1), "samples", 1, Limits.maxSamples)
        maxDepth = try Self.int(s["maxDepth"] ?? .number(3), "maxDepth", 0, Limits.maxDepth)
        ambient = try Self.vec(s["ambient"] ?? .array([.number(0.1), .number(0.1), .number(0.1)]), "ambient")
        background = try Self.vec(s["background"] ?? .array([.number(0), .number(0), .number(0)]), "background")
        camera = Camera(position: position, forward: forward, right: right, up: trueUp,
                        halfWidth: (viewHeight / 2) * (Double(width) / Double(height)), halfHeight: viewHeight / 2)
        self.objects = try objects.enumerated().map { i, o in
            let path = "objects[\(i)]"
            guard o.objectValue != nil else { throw Invalid(path: path, problem: "must be an object") }
            switch o["type"] {
            case .string("sphere"):
                let radius = try Self.num(o["radius"], "\(path).radius", 1e-6, 1e6)
                return SceneObject(shape: .sphere(center: try Self.vec(o["center"], "\(path).center"), radius: radius, radius2: radius * radius),
                                   material: try Self.material(o["material"], "\(path).material"))
            case .string("plane"):
                let normal = try Self.vec(o["normal"], "\(path).normal").normalized()
                guard normal.isFinite else { throw Invalid(path: "\(path).normal", problem: "must not be zero") }
                return SceneObject(shape: .plane(point: try Self.vec(o["point"], "\(path).point"), normal: normal),
                                   material: try Self.material(o["material"], "\(path).material"))
            default:
                throw Invalid(path: "\(path).type", problem: "must be 'sphere' or 'plane'")
            }
        }
        self.lights = try lights.enumerated().map { i, l in
            Light(position: try Self.vec(l["position"], "lights[\(i)].position"),
                  color: try Self.vec(l["color"] ?? .array([.number(1), .number(1), .number(1)]), "lights[\(i)].color"))
        }
    }

    // MARK: validation, with the messages of Public/raytracer.js

    static func vec(_ v: JSONValue?, _ path: String) throws -> Vec3 {
        guard case .array(let a)? = v, a.count == 3,
              case .number(let x) = a[0], case .number(let y) = a[1], case .number(let z) = a[2],
              x.isFinite, y.isFinite, z.isFinite
        else { throw Invalid(path: path, problem: "must be [x, y, z] with finite numbers") }
        return Vec3(x, y, z)
    }

    static func num(_ v: JSONValue?, _ path: String, _ lo: Double, _ hi: Double) throws -> Double {
        guard case .number(let n)? = v, n.isFinite, n >= lo, n <= hi else {
            throw Invalid(path: path, problem: "must be a number in [\(format(lo)), \(format(hi))]")
        }
        return n
    }

    static func int(_ v: JSONValue?, _ path: String, _ lo: Int, _ hi: Int) throws -> Int {
        guard case .number(let n)? = v, n.isFinite, n.rounded() == n, n >= Double(lo), n <= Double(hi) else {
            throw Invalid(path: path, problem: "must be an integer in [\(lo), \(hi)]")
        }
        return Int(n)
    }

    static func list(_ v: JSONValue?, _ path: String, _ max: Int) throws -> [JSONValue] {
        guard let v, v != .null else { return [] }
        guard case .array(let a) = v, a.count <= max else { throw Invalid(path: path, problem: "must be an array of at most \(max)") }
        return a
    }

    static func material(_ m: JSONValue?, _ path: String) throws -> Material {
        guard let m, m.objectValue != nil else { throw Invalid(path: path, problem: "must be an object") }
        let diffuse = try num(m["diffuse"] ?? .number(1), "\(path).diffuse", 0, 10)
        let specular = try num(m["specular"] ?? .number(0), "\(path).specular", 0, 10)
        let shininess = try int(m["shininess"] ?? .number(1), "\(path).shininess", 0, 1024)
        let reflect = try num(m["reflect"] ?? .number(0), "\(path).reflect", 0, 1)
        let kind: Material.Kind
        switch m["type"] {
        case .string("solid"):
            kind = .solid(try vec(m["color"], "\(path).color"))
        case .string("checker"):
            guard case .array(let colors)? = m["colors"], colors.count == 2 else {
                throw Invalid(path: "\(path).colors", problem: "must hold two colours")
            }
            kind = .checker(try vec(colors[0], "\(path).colors[0]"), try vec(colors[1], "\(path).colors[1]"),
                            size: try num(m["size"] ?? .number(1), "\(path).size", 1e-6, 1e6))
        default:
            throw Invalid(path: "\(path).type", problem: "must be 'solid' or 'checker'")
        }
        return Material(kind: kind, diffuse: diffuse, specular: specular, reflect: reflect, shininess: shininess)
    }

    private static func format(_ d: Double) -> String {
        d.rounded() == d && abs(d) < 1e15 ? String(Int(d)) : String(d)
    }
}
