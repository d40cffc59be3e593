import Foundation

/// Maps request paths to files under the public directory, refusing anything outside it.
struct StaticFiles: Sendable {
    /// The canonical (symlink-free) root directory.
    let root: String

    init?(directory: String) {
        guard let resolved = StaticFiles.realPath(directory) else { return nil }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory), isDirectory.boolValue else { return nil }
        root = resolved
    }

    static let mimeTypes: [String: String] = [
        "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8",
        "js": "text/javascript; charset=utf-8", "mjs": "text/javascript; charset=utf-8",
        "css": "text/css; charset=utf-8", "json": "application/json",
        "svg": "image/svg+xml", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
        "ico": "image/x-icon", "wasm": "application/wasm", "txt": "text/plain; charset=utf-8",
        "map": "application/json", "webp": "image/webp",
    ]

    static func mimeType(for path: String) -> String {
        let ext = (path as NSString).pathExtension.lowercased()
        return mimeTypes[ext] ?? "application/octet-stream"
    }

    /// The file for a request path, or nil when it does not exist or escapes the root.
    func resolve(_ requestPath: String) -> String? {
        guard requestPath.hasPrefix("/"), !requestPath.contains("\0") else { return nil }
        let segments = requestPath.split(separator: "/")
        guard !segments.contains(where: { $0 == ".." || $0 == "." }) else { return nil }
        var candidate = root + "/" + segments.joined(separator: "/")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory) else { return nil }
        if isDirectory.boolValue { candidate += "/index.html" }
        // Symlinks must not lead outside the root either.
        guard let real = StaticFiles.realPath(candidate), real.hasPrefix(root + "/"),
              FileManager.default.isReadableFile(atPath: real) else { return nil }
        var realIsDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: real, isDirectory: &realIsDirectory), !realIsDirectory.boolValue else { return nil }
        return real
    }

    private static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}
