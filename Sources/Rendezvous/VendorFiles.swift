import Foundation

/// JavaScript libraries from Debian packages served under `/vendor/` for pages that are not a secure
/// context (no WebCrypto: a plain-http page at a LAN address), from where the packages install them;
/// never copies in the repository (docs/protocol.md, "Browsers: WebCrypto or tweetnacl").
///
/// Only the files listed here are served (a fixed table of URL paths, not a directory mount), with
/// `text/javascript`. A library whose file is missing is answered 404 and logged once at start.
public struct VendorFiles: Sendable, Equatable {
    /// TweetNaCl.js (Debian `node-tweetnacl`), served at `/vendor/tweetnacl/nacl-fast.min.js`; nil serves none.
    public var tweetnaclPath: String?
    /// The directory of CryptoJS's components (Debian `libjs-cryptojs`), of which the three files SHA-256
    /// needs are served at `/vendor/cryptojs/<file>`; nil serves none.
    public var cryptojsDirectory: String?

    /// Where Debian (bookworm) installs them.
    public static let debianTweetnaclPath = "/usr/share/nodejs/tweetnacl/nacl-fast.min.js"
    public static let debianCryptojsDirectory = "/usr/share/javascript/cryptojs/components"
    /// The CryptoJS components the browser loads (explorer/vendor.js), in that order.
    public static let cryptojsFiles = ["core-min.js", "lib-typedarrays-min.js", "sha256-min.js"]

    public init(tweetnaclPath: String? = nil, cryptojsDirectory: String? = nil) {
        self.tweetnaclPath = tweetnaclPath
        self.cryptojsDirectory = cryptojsDirectory
    }

    /// One served file: its URL path, the file it comes from, and the Debian package that has it.
    public struct Entry: Sendable, Equatable {
        public let urlPath: String
        public let file: String
        public let package: String
    }

    /// Every file served, by URL path.
    public var entries: [Entry] {
        var out: [Entry] = []
        if let tweetnaclPath {
            out.append(Entry(urlPath: "/vendor/tweetnacl/nacl-fast.min.js", file: tweetnaclPath, package: "node-tweetnacl"))
        }
        if let cryptojsDirectory {
            for name in Self.cryptojsFiles {
                out.append(Entry(urlPath: "/vendor/cryptojs/\(name)", file: cryptojsDirectory + "/" + name, package: "libjs-cryptojs"))
            }
        }
        return out
    }

    /// The entry for a request path (nil: not a vendor file).
    public func entry(for urlPath: String) -> Entry? {
        entries.first { $0.urlPath == urlPath }
    }

    /// Whether the entry's file exists and is readable now (a package may be installed while the server runs).
    public static func available(_ entry: Entry) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: entry.file, isDirectory: &isDirectory) && !isDirectory.boolValue
            && FileManager.default.isReadableFile(atPath: entry.file)
    }

    /// One line per package whose files are missing, for the start-up log.
    public var missing: [(package: String, files: [String])] {
        var out: [(package: String, files: [String])] = []
        for entry in entries where !Self.available(entry) {
            if let i = out.firstIndex(where: { $0.package == entry.package }) { out[i].files.append(entry.file) } else { out.append((entry.package, [entry.file])) }
        }
        return out
    }
}
