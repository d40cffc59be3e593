import CCrypto
import Foundation
import PNG
import RayTracer
import Testing

private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

private func sha256(_ bytes: [UInt8]) -> String {
    var out = [UInt8](repeating: 0, count: 32)
    bc_sha256(bytes, bytes.count, &out)
    return out.map { String(format: "%02x", $0) }.joined()
}

private func scene(_ name: String) throws -> Scene {
    try Scene(json: Array(try Data(contentsOf: root.appendingPathComponent("Public/scenes/\(name).json"))))
}

/// Tests/vectors/raytracer.json: the digests the JavaScript ray tracer produces in Chromium.
private func vectors() throws -> [String: String] {
    struct File: Decodable { struct Image: Decodable { let scene: String; let sha256: String }; let images: [Image] }
    let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: root.appendingPathComponent("Tests/vectors/raytracer.json")))
    return Dictionary(uniqueKeysWithValues: file.images.map { ($0.scene, $0.sha256) })
}

@Test(arguments: ["small", "odd", "medium"])
func theSwiftKernelGivesTheBytesOfTheJavaScriptOne(name: String) throws {
    let s = try scene(name)
    let expected = try #require(try vectors()["Public/scenes/\(name).json"])
    #expect(sha256(try s.renderImage()) == expected)
    for count in name == "medium" ? [] : [25, 400] {   // medium is slow in a debug build; its tiling is checked end to end
        var image = [UInt8](repeating: 0, count: s.width * s.height * 4)
        for t in tiles(width: s.width, height: s.height, count: count) {
            blit(&image, imageWidth: s.width, tile: t, pixels: try s.render(t))
        }
        #expect(sha256(image) == expected, "\(name) in \(count) tiles")
    }
}

@Test func tilingMatchesTheJavaScriptGrid() {
    #expect(tiles(width: 64, height: 48, count: 25).count == 25)
    #expect(tiles(width: 64, height: 48, count: 400).count == 400)
    #expect(tiles(width: 37, height: 23, count: 2500).count == 37 * 23)   // capped by the image side
    let grid = tiles(width: 10, height: 7, count: 4)
    #expect(grid == [Tile(x: 0, y: 0, width: 5, height: 3), Tile(x: 5, y: 0, width: 5, height: 3),
                     Tile(x: 0, y: 3, width: 5, height: 4), Tile(x: 5, y: 3, width: 5, height: 4)])
}

@Test(arguments: [
    (#"{"width": 0}"#, "width"),
    (#"{"width": 4, "height": 4, "samples": 9, "camera": {"position": [0,0,0], "lookAt": [0,0,1]}}"#, "samples"),
    (#"{"width": 4, "height": 4, "camera": {"position": [0,0,0], "lookAt": [0,1,0], "up": [0,1,0]}}"#, "camera"),
    (#"{"width": 4, "height": 4, "camera": {"position": [0,0,0], "lookAt": [0,0,1]}, "objects": [{"type": "cube"}]}"#, "objects[0].type"),
    (#"{"width": 4, "height": 4, "camera": {"position": [0,0,0], "lookAt": [0,0,1]}, "objects": [{"type": "sphere", "center": [0,0,0], "radius": -1}]}"#, "objects[0].radius"),
    (#"{"width": 4, "height": 4, "camera": {"position": [0,0,0], "lookAt": [0,0,1]}, "lights": [{"position": [0, "x", 0]}]}"#, "lights[0].position"),
    ("not json", ""),
])
func badScenesAreRefusedWithTheFieldNamed(text: String, field: String) {
    do {
        _ = try Scene(json: Array(text.utf8))
        Issue.record("accepted \(text)")
    } catch let error as Scene.Invalid {
        #expect(error.path == field, "\(error)")
    } catch {
        Issue.record("unexpected \(error)")
    }
}

@Test func tilesOutsideTheImageAreRefused() throws {
    let s = try scene("small")
    #expect(throws: RenderError.self) { try s.render(Tile(x: 60, y: 0, width: 10, height: 10)) }
    #expect(throws: RenderError.self) { try s.render(Tile(x: 0, y: 0, width: 4, height: 4), isCancelled: { true }) }
}

@Test func pngFilesAreValidAndDeterministic() throws {
    let rgba = (0..<(3 * 2 * 4)).map { UInt8($0 * 10) }
    let file = try PNG.encode(rgba: rgba, width: 3, height: 2)
    #expect(Array(file.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    #expect(Array(file[12..<16]) == Array("IHDR".utf8))
    #expect(Array(file[16..<24]) == [0, 0, 0, 3, 0, 0, 0, 2])
    #expect(Array(file.suffix(12)) == [0, 0, 0, 0] + Array("IEND".utf8) + [0xAE, 0x42, 0x60, 0x82])
    #expect(try PNG.encode(rgba: rgba, width: 3, height: 2) == file)
    #expect(throws: PNG.Failure.self) { try PNG.encode(rgba: rgba, width: 4, height: 2) }
}
