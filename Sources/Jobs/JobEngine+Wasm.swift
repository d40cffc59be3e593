import Digest
import Foundation
import Peer
import WasmTask
import WireProtocol

/// The `wasm` runtime (docs/jobs.md, "The `wasm` runtime"): the worker side (module cache by SHA-256,
/// `need-shared`, `need-module`, runs on the pool) and the submitting side (`runWasm`).
extension JobEngine {
    // MARK: worker

    func runWasmTask(_ src: String, _ m: [String: JSONValue], jobId: String, taskId: Int, header: [String: JSONValue], pool: WorkerPool,
                     refuse: (String, String) -> Void) {
        let sharedKey = "\(src)|\(jobId)"
        if case .object(let shared)? = m["shared"] {
            guard let digest = shared["module"]?.stringValue, digest.count == 64, digest.allSatisfy(\.isHexDigit),
                  let data = Data(base64Encoded: shared["data"]?.stringValue ?? "") else {
                refuse("bad-task", "shared must be {module: <SHA-256 hex>, data: <base64>} (and moduleBase64 when sent)")
                return
            }
            let module = digest.lowercased()
            if wasmShared.updateValue((module, [UInt8](data)), forKey: sharedKey) == nil { wasmSharedOrder.append(sharedKey) }
            if wasmSharedOrder.count > Self.sharedCache { wasmShared[wasmSharedOrder.removeFirst()] = nil }
            if case .string(let b64)? = shared["moduleBase64"], wasmModules.get(module) == nil {
                // base64 is 4/3 the bytes: refuse what is surely too large before decoding it.
                guard b64.utf8.count / 4 * 3 <= wasmLimits.maxModuleBytes + 3, let bytes = Data(base64Encoded: b64).map({ [UInt8]($0) }) else {
                    refuse("bad-task", "moduleBase64 is not base64, or the module is above the limit of \(wasmLimits.maxModuleBytes) bytes")
                    return
                }
                guard sha256Hex(bytes) == module else {
                    refuse("bad-task", "the SHA-256 of moduleBase64 is not shared.module")
                    return
                }
                do {
                    wasmModules.put(module, try WasmModule(bytes: bytes, limits: wasmLimits))
                    modulesReceived += 1
                } catch {
                    refuse(error.code, error.message)
                    return
                }
            }
        }
        guard let shared = wasmShared[sharedKey] else {
            refuse("need-shared", "this peer does not hold the job's shared data")
            return
        }
        guard let module = wasmModules.get(shared.module) else {
            refuse("need-module", "this peer does not hold the module \(shared.module): send shared with moduleBase64")
            return
        }
        guard case .string(let b64)? = m["input"]?["data"], let input = Data(base64Encoded: b64).map({ [UInt8]($0) }) else {
            refuse("bad-task", "input must be {data: <base64>}")
            return
        }
        let maxMessage = node.configuration.maxLinkMessageBytes
        let data = shared.data
        dispatch(src, jobId: jobId, taskId: taskId, header: header, pool: pool, deadline: Self.deadline(m), refuse: refuse) { _ in
            // A Wasm call cannot poll `isStopped`: its deadline is its fuel budget (docs/jobs.md, "Workers and safety").
            let seconds = Self.deadline(m)
            do {
                let output = try module.run(shared: data, input: input, seconds: seconds)
                guard Double(output.count) * 4 / 3 + 4096 <= Double(maxMessage) else {
                    return .failed(code: "too-large", message: "the output of \(output.count) bytes exceeds the link message limit of \(maxMessage) bytes")
                }
                return .ok(output)
            } catch let error as WasmTaskError {
                if case .deadline = error { return .failed(code: "stopped-by-deadline", message: "") }
                return .failed(code: error.code, message: error.message)
            } catch {
                return .failed(code: "threw", message: "\(error)")
            }
        }
    }

    // MARK: submitting

    /// Runs `module` on every input across up to `peers` peers (runtime `wasm`). Results are the tasks'
    /// output bytes, in input order. The module is validated here first: a module the ABI refuses
    /// throws `WasmTaskError.badTask` and nothing is sent. `progress` and the completion run on the
    /// service thread.
    public func runWasm(module: [UInt8], shared: [UInt8], inputs: [[UInt8]], peers: Int, options: JobOptions = JobOptions(),
                        progress: @escaping (Int, Int) -> Void = { _, _ in },
                        completion: @escaping (Result<(outputs: [[UInt8]], stats: JobStats), JobFailure>) -> Void) throws(WasmTaskError) {
        _ = try WasmModule(bytes: module, limits: wasmLimits)
        let digest = sha256Hex(module)
        let sharedValue: [String: JSONValue] = ["module": .string(digest), "data": .string(Data(shared).base64EncodedString())]
        var withModule = sharedValue
        withModule["moduleBase64"] = .string(Data(module).base64EncodedString())
        let values: [JSONValue] = inputs.map { .object(["data": .string(Data($0).base64EncodedString())]) }
        counter += 1
        let me = node.peerId?.hex ?? "0"
        let jobId = "\(me)-\(counter)-\(UInt32.random(in: 0...UInt32.max))"
        var options = options
        if options.verify == .quorum && options.seed == nil { options.seed = UInt64.random(in: 0..<(1 << 53)) }
        let core = JobCore(id: jobId, runtime: "wasm", shared: .object(sharedValue), sharedWithModule: .object(withModule), inputs: values,
                           nPeers: peers, options: options, me: me, reputation: reputation)
        var core2 = core
        let actions = core2.start(now: Self.clock())
        var outputs = [[UInt8]](repeating: [], count: inputs.count)
        jobs[jobId] = SubmittedJob(core: core2, onResult: { i, bytes in
            outputs[i] = bytes
            return true
        }, onProgress: progress, onFinish: { result in
            completion(result.map { (outputs, $0) })
        })
        perform(jobId, actions)
    }
}
