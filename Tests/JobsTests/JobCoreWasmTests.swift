import Digest
import Foundation
@testable import Jobs
import Testing
import WireProtocol

// Runtime `wasm` on the submitting side (docs/jobs.md, "The wasm runtime"): `need-module` makes the
// next task to that peer carry `moduleBase64`, once per peer, not once per task in flight.

private func shared(_ t: [String: JSONValue]) -> String {
    guard case .object(let s)? = t["shared"] else { return "" }
    return s["moduleBase64"] == nil ? "+shared" : "+module"
}

private func posted(_ actions: [JobAction]) -> [String] {
    actions.compactMap {
        guard case .post(let peer, let body) = $0, body["kind"] == "task", case .number(let t)? = body["taskId"] else { return nil }
        return "\(Int(t))@\(peer)\(shared(body))"
    }
}

private func needModule(_ t: Int) -> [String: JSONValue] {
    ["kind": "result", "jobId": "j", "taskId": .number(Double(t)), "attempt": .number(1), "ok": .bool(false),
     "error": .object(["code": "need-module", "message": "no module"])]
}

private func ok(_ t: Int, _ bytes: [UInt8]) -> [String: JSONValue] {
    ["kind": "result", "jobId": "j", "taskId": .number(Double(t)), "attempt": .number(1), "ok": .bool(true),
     "encoding": "base64", "payload": .string(Data(bytes).base64EncodedString()), "sha256": .string(sha256Hex(bytes))]
}

@Test func needModuleSendsTheModuleOncePerPeer() {
    var options = JobOptions()
    options.prefetch = 2
    options.maxCopies = 1
    let plain: JSONValue = .object(["module": .string(String(repeating: "a", count: 64)), "data": ""])
    let full: JSONValue = .object(["module": .string(String(repeating: "a", count: 64)), "data": "", "moduleBase64": "AA=="])
    var c = JobCore(id: "j", runtime: "wasm", shared: plain, sharedWithModule: full, inputs: (0..<6).map { _ in .object(["data": ""]) },
                    nPeers: 1, options: options, me: "me")
    _ = c.start(now: 0)
    let peer: JSONValue = .object(["peerId": "p", "workers": .number(1), "free": .number(1), "runtimes": .array(["wasm"])])
    // One worker plus a prefetch of 2: three tasks in flight, the first with shared (no module).
    #expect(posted(c.discovered([peer], now: 0.1)) == ["0@p+shared", "1@p", "2@p"])
    // All three come back need-module: the first redispatch carries the module, the others nothing more.
    #expect(posted(c.received("p", needModule(0), now: 1)) == ["0@p+module"])
    #expect(posted(c.received("p", needModule(1), now: 1.1)) == ["1@p"])
    #expect(posted(c.received("p", needModule(2), now: 1.2)) == ["2@p"])
    #expect(c.modulesSent == 1)
    // Then tasks complete normally.
    #expect(posted(c.received("p", ok(0, [1]), now: 2)) == ["3@p"])
    // A need-module for a task posted after the module (the peer evicted it): the module goes again.
    #expect(posted(c.received("p", needModule(3), now: 3)) == ["3@p+module"])
    #expect(c.modulesSent == 2)
    #expect(c.modulesSentTo == ["p": 2])
}
