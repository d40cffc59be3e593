import ArgumentParser
import Foundation
import Ring
import Simulator

extension Simulation.IDPolicy: ExpressibleByArgument {}
extension RoutingRule: ExpressibleByArgument {}

struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Simulate a ring: the server's ID assignment and fingers, the peers' router, on a virtual network.",
        discussion: """
        Builds a ring of --peers peers, routes --lookups lookups from random peers to random keys \
        (every link up) and reports hops (mean, p50, p99, max), links per peer and arc ratios; with \
        --churn K, again after K random leave + join steps. The same seed gives the same numbers. \
        --json also holds the final ring (up to 10,000 peers) for Public/visualizer.html.
        """)

    @Option(help: "Peers in the ring.") var peers = 1000
    @Option(help: "Finger rows: auto, all, or a list such as 0,10,12,20,30,47 (0 alone: successor only).") var fingers: FingerPolicy = .auto
    @Option(help: "ID assignment: least-occupied (the server's) or random.") var ids: Simulation.IDPolicy = .leastOccupied
    @Option(help: "Routing: greedy (Chord's closest preceding finger) or non (neighbour of neighbour).") var routing: RoutingRule = .greedy
    @Flag(help: "With --routing non: no neighbour lists (what they add).") var withoutLists = false
    @Option(help: "Random lookups to route.") var lookups = 10_000
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Random leave + join steps before measuring again.") var churn = 0
    @Option(help: "Successor list length.") var successors = 3
    @Flag(help: "Print JSON (with the final ring, up to 10,000 peers).") var json = false
    @Flag(help: "Print CSV (one line per measurement).") var csv = false

    func validate() throws {
        guard (1...2_000_000).contains(peers) else { throw ValidationError("--peers must be in [1, 2000000]") }
        guard (0...100_000_000).contains(lookups) else { throw ValidationError("--lookups must be in [0, 100000000]") }
        guard churn >= 0 else { throw ValidationError("--churn must not be negative") }
        guard (1...64).contains(successors) else { throw ValidationError("--successors must be in [1, 64]") }
        guard !(json && csv) else { throw ValidationError("give --json or --csv, not both") }
    }

    func run() throws {
        var config = Simulation.Configuration(peers: peers)
        config.fingers = fingers
        config.ids = ids
        config.lookups = lookups
        config.seed = seed
        config.churn = churn
        config.successors = successors
        config.routing = routing
        config.withoutLists = withoutLists
        var simulation = Simulation(config)
        let start = Date()
        let report = simulation.run(includeNetwork: json)
        let seconds = Date().timeIntervalSince(start)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            FileHandle.standardOutput.write(try encoder.encode(report) + Data("\n".utf8))
            return
        }
        let rows = [("initial", report.initial)] + (report.afterChurn.map { [("after churn \(churn)", $0)] } ?? [])
        if csv {
            print("phase,peers,fingers,ids,routing,finger_rows,lookups,misrouted,hops_mean,hops_p50,hops_p99,hops_max,chord_mean,links_mean,links_max,arc_max_min,arc_max_mean")
            for (phase, m) in rows {
                print([phase, "\(m.peers)", "\"\(fingers)\"", ids.rawValue, routing.rawValue, "\(m.fingerRows)", "\(m.lookups)", "\(m.misrouted)",
                       String(format: "%.3f", m.hopsMean), "\(m.hopsP50)", "\(m.hopsP99)", "\(m.hopsMax)", String(format: "%.3f", m.chordMean),
                       String(format: "%.2f", m.linksMean), "\(m.linksMax)", String(format: "%.3f", m.arcMaxMin), String(format: "%.3f", m.arcMaxMean)].joined(separator: ","))
            }
            return
        }
        print("ring of \(peers) peers, fingers \(fingers), \(ids.rawValue) IDs, \(routing.rawValue) routing, seed \(seed) (\(String(format: "%.1f", seconds)) s)")
        for (phase, m) in rows {
            print("\(phase): \(m.lookups) lookups, hops mean \(String(format: "%.2f", m.hopsMean)) (Chord ½·log2 N = \(String(format: "%.2f", m.chordMean))), p50 \(m.hopsP50), p99 \(m.hopsP99), max \(m.hopsMax); misrouted \(m.misrouted)")
            print("  \(m.fingerRows) finger rows; links per peer mean \(String(format: "%.1f", m.linksMean)), max \(m.linksMax); arc ratio max/min \(String(format: "%.2f", m.arcMaxMin)), max/mean \(String(format: "%.2f", m.arcMaxMean))")
        }
    }
}
