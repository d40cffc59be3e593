import Foundation
import Ring
import Simulator
import Testing

@Test func routingIsCorrectAndWithinTheChordBoundForEveryPolicy() {
    for fingers in [FingerPolicy.auto, .all, .rows([0, 10, 12, 20, 30, 47])] {
        var config = Simulation.Configuration(peers: 500)
        config.fingers = fingers
        config.lookups = 2000
        config.churn = 200
        var sim = Simulation(config)
        let report = sim.run()
        for m in [report.initial, report.afterChurn!] {
            #expect(m.misrouted == 0, "\(fingers)")
            #expect(m.peers == 500)
        }
        if fingers != .rows([0, 10, 12, 20, 30, 47]) {
            #expect(report.initial.hopsMax <= 2 * 9 + 1, "\(fingers): \(report.initial)")
        }
    }
}

@Test func successorOnlyRingsTakeLinearPaths() {
    var config = Simulation.Configuration(peers: 200)
    config.fingers = .rows([0])
    config.lookups = 2000
    var sim = Simulation(config)
    let m = sim.run().initial
    #expect(m.misrouted == 0)
    // With 3 successors each hop moves at most 3 peers on: a lookup to the peer d places on takes
    // ceil(d / 3) hops, so the worst of 2000 random lookups is close to ceil(199 / 3) = 67 and the mean
    // close to 200 / 6, far beyond 2 log2 N.
    #expect(m.hopsMax >= 60 && m.hopsMax <= 67, "\(m)")
    #expect(m.hopsMean > 28 && m.hopsMean < 38, "\(m)")
}

@Test func sameSeedSameNumbersAndLeastOccupiedIsEven() {
    var config = Simulation.Configuration(peers: 1024)
    config.lookups = 1000
    var a = Simulation(config), b = Simulation(config)
    #expect(a.run().initial == b.run().initial)
    let even = a.run().initial
    #expect(even.arcMaxMin <= 2.0001)     // a power of two of peers halves arcs evenly
    config.ids = .random
    var r = Simulation(config)
    #expect(r.run().initial.arcMaxMin > 10)
}

@Test func theReportHoldsTheNetworkForTheVisualizer() {
    var config = Simulation.Configuration(peers: 16)
    config.lookups = 10
    var sim = Simulation(config)
    let network = sim.run(includeNetwork: true).network!
    #expect(network.count == 16)
    #expect(network.allSatisfy { $0.successors.count == 3 && $0.predecessor != nil })
}

/// Neighbour-of-neighbour routing (docs/protocol.md) over the same ring: every lookup still ends at the key's
/// successor, before and after churn, with the same links and fewer hops than greedy routing.
@Test func nonRoutingDeliversEveryLookupInFewerHopsWithTheSameLinks() {
    for ids in [Simulation.IDPolicy.leastOccupied, .random] {
        var config = Simulation.Configuration(peers: 2000)
        config.ids = ids
        config.lookups = 3000
        config.churn = 300
        var greedy = Simulation(config)
        config.routing = .non
        var non = Simulation(config)
        let g = greedy.run(), n = non.run()
        for m in [n.initial, n.afterChurn!] { #expect(m.misrouted == 0, "\(ids)") }
        #expect(n.initial.linksMean == g.initial.linksMean)
        #expect(n.initial.hopsMean < g.initial.hopsMean - 0.3, "\(ids): NoN \(n.initial.hopsMean), greedy \(g.initial.hopsMean)")
        #expect(n.initial.hopsMean <= 0.5 * log2(2000.0) + 0.5, "\(ids)")
    }
}
