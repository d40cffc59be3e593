import ArgumentParser
import Foundation

/// Settings of `serve` from three sources besides the defaults, with one precedence rule:
/// command-line flags > environment variables (`BROWSERCLOUD_<NAME>`) > the configuration file
/// (`--config FILE` or `BROWSERCLOUD_CONFIG`) > defaults. The names are those of the flags, taken from
/// `serve --help`, so every flag has an environment variable and a file key.
///
/// File format: one `name = value` per line (the flag name without `--`), `#` starts a comment;
/// boolean flags take `true` or `false`. An unknown name or a malformed line is an error.
enum Settings {
    struct Failure: Error, CustomStringConvertible { let description: String }

    /// The settings of a command: flag name → whether it takes a value (false: a boolean flag).
    static func names(of command: any ParsableCommand.Type) -> [String: Bool] {
        var out: [String: Bool] = [:]
        for line in command.helpMessage(columns: 400).split(separator: "\n") {
            let t = line.drop { $0 == " " }
            guard t.hasPrefix("--") else { continue }
            let name = String(t.dropFirst(2).prefix { $0.isLetter || $0.isNumber || $0 == "-" })
            guard !name.isEmpty, !["help", "version", "config"].contains(name) else { continue }
            out[name] = t.dropFirst(2 + name.count).hasPrefix(" <")
        }
        return out
    }

    static func environmentName(_ name: String) -> String {
        "BROWSERCLOUD_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// The arguments to parse: file settings, then environment settings, then the command line (the
    /// last value of an option wins); a boolean flag is given once if its winning value is true.
    static func expand(_ arguments: [String], command: any ParsableCommand.Type, environment: [String: String]) throws -> [String] {
        let known = names(of: command)
        var cli = arguments
        var configPath = environment["BROWSERCLOUD_CONFIG"]
        if let i = cli.firstIndex(where: { $0 == "--config" || $0.hasPrefix("--config=") }) {
            if cli[i] == "--config" {
                guard i + 1 < cli.count else { throw Failure(description: "--config needs a file") }
                configPath = cli[i + 1]
                cli.removeSubrange(i...(i + 1))
            } else {
                configPath = String(cli[i].dropFirst("--config=".count))
                cli.remove(at: i)
            }
        }
        var file: [String: String] = [:]
        if let configPath {
            guard let text = try? String(contentsOfFile: configPath, encoding: .utf8) else {
                throw Failure(description: "cannot read the configuration file \(configPath)")
            }
            for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)?
                    .trimmingCharacters(in: .whitespaces) ?? ""
                if line.isEmpty { continue }
                let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, !parts[0].isEmpty else { throw Failure(description: "\(configPath):\(n + 1): expected `name = value`") }
                guard known[parts[0]] != nil else { throw Failure(description: "\(configPath):\(n + 1): unknown setting '\(parts[0])'") }
                file[parts[0]] = parts[1]
            }
        }
        var env: [String: String] = [:]
        for name in known.keys { if let v = environment[environmentName(name)] { env[name] = v } }

        var out: [String] = []
        for (name, takesValue) in known.sorted(by: { $0.key < $1.key }) {
            if takesValue {
                for value in [file[name], env[name]].compactMap({ $0 }) { out += ["--\(name)", value] }
            } else {
                func truth(_ v: String?, _ source: String) throws -> Bool? {
                    guard let v else { return nil }
                    switch v.lowercased() {
                    case "1", "true", "yes", "on": return true
                    case "0", "false", "no", "off", "": return false
                    default: throw Failure(description: "\(source): '\(name)' takes true or false, not '\(v)'")
                    }
                }
                let onCommandLine = cli.contains("--\(name)")
                let value = try truth(env[name], environmentName(name)) ?? truth(file[name], configPath ?? "") ?? false
                if value && !onCommandLine { out.append("--\(name)") }
            }
        }
        return out + cli
    }
}
