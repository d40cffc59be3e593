import ArgumentParser
import Foundation
import Logging
import Rendezvous
import Transport
import Ring

struct BrowserCloud: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "browsercloud",
        abstract: "BrowserCloud: a community cloud on a peer-to-peer overlay of browsers and machines.",
        version: browserCloudVersion,
        subcommands: [Serve.self, PeerCommand.self, Submit.self, Render.self, WasmRun.self, Simulate.self]
    )

    static func run(_ arguments: [String]) async {
        await main(arguments)
    }
}

/// The process entry point. The main thread starts the command as a task and waits for it; see
/// `LongRunning.prepareSignals` for why the long-running subcommands do not use an async `main`.
@main
enum Entry {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let first = arguments.first, ["serve", "peer", "submit"].contains(first) { LongRunning.prepareSignals() }
        let done = DispatchSemaphore(value: 0)
        // Detached: `main` is on the main actor, whose queue nothing drains while this thread waits.
        Task.detached {
            await BrowserCloud.run(arguments)
            done.signal()
        }
        done.wait()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

extension FingerPolicy: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
    public var defaultValueDescription: String { description }
}
