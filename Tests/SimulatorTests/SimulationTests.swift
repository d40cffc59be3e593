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
    #expect(m.hopsMean > 20 && m.hopsMax <= 200)   // about N/4 with 3 successors, far beyond log N
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
