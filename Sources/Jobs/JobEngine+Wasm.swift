import Digest
import Foundation
import Peer
import WasmTask
import WireProtocol

/// The `wasm` runtime (docs/jobs.md, "The `wasm` runtime"): the worker side (module cache by SHA-256,
/// `need-shared`, `need-module`, runs on the pool) and the submitting side (`runWasm`).
extension JobEngine {
    // MARK: worker

    /// A task received for a module that is being compiled (service thread only).
    struct HeldWasmTask {
        let src: String
        let message: [String: JSONValue]
        let jobId: String
        let taskId: Int
        let header: [String: JSONValue]
    }

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
            if case .string(let b64)? = shared["moduleBase64"], wasmModules.get(module) == nil, wasmCompiling[module] == nil {
                // base64 is 4/3 the bytes: refuse what is surely too large before decoding it.
                guard b64.utf8.count / 4 * 3 <= wasmLimits.maxModuleBytes + 3 else {
                    refuse("bad-task", Self.notBase64(wasmLimits))
                    return
                }
                compileWasmModule(module, base64: b64, from: src, jobId: jobId)
            }
        }
        guard let shared = wasmShared[sharedKey] else {
            refuse("need-shared", "this peer does not hold the job's shared data")
            return
        }
        if wasmCompiling[shared.module] != nil {
            // Held until the module is ready (compiled off this thread); the pool's capacity bounds them.
            guard pool.free - wasmHeldCount > 0 else {
                refuse("busy", "every worker is busy and the queue is full")
                return
            }
            wasmCompiling[shared.module]!.append(HeldWasmTask(src: src, message: m, jobId: jobId, taskId: taskId, header: header))
            wasmHeldCount += 1
            return
        }
        startWasmTask(src, m, jobId: jobId, taskId: taskId, header: header, pool: pool, module: wasmModules.get(shared.module), data: shared.data,
                      digest: shared.module, refuse: refuse)
    }

    static func notBase64(_ limits: WasmLimits) -> String {
        "moduleBase64 is not base64, or the module is above the limit of \(limits.maxModuleBytes) bytes"
    }

    /// Decodes, checks and compiles a received module on `wasmCompiler` (a large module takes seconds:
    /// not on the service thread, which routes everyone's messages), then, back on the service thread,
    /// caches it and starts or refuses the tasks held for it.
    private func compileWasmModule(_ digest: String, base64: String, from src: String, jobId: String) {
        wasmCompiling[digest] = []
        let limits = wasmLimits
        let transport = node.transport
        wasmCompiler.async { [self] in
            let outcome: Result<WasmModule, WasmTaskError>
            if let bytes = Data(base64Encoded: base64).map({ [UInt8]($0) }) {
                if sha256Hex(bytes) != digest {
                    outcome = .failure(.badTask("the SHA-256 of moduleBase64 is not shared.module"))
                } else {
                    outcome = Result { () throws(WasmTaskError) in try WasmModule(bytes: bytes, limits: limits) }
                }
            } else {
                outcome = .failure(.badTask(Self.notBase64(limits)))
            }
            transport.post { [self] in compiled(digest, outcome, from: src, jobId: jobId) }
        }
    }

    /// On the service thread: the module `digest` is compiled (or refused). Held tasks start; when it was
    /// refused, the tasks of the job that sent it get the error and the others `need-module` (their
    /// submitters may hold the right bytes).
    private func compiled(_ digest: String, _ outcome: Result<WasmModule, WasmTaskError>, from src: String, jobId: String) {
        assert(node.transport.isOnServiceThread, "JobEngine used off its node's service thread")
        let held = wasmCompiling.removeValue(forKey: digest) ?? []
        wasmHeldCount -= held.count
        if case .success(let module) = outcome {
            wasmModules.put(digest, module)
            modulesReceived += 1
        }
        for task in held {
            let refuse = { [self] (code: String, message: String) in refuseTask(task.src, task.header, code, message) }
            guard let pool else { refuse("stopped", "this peer does not offer its CPU"); continue }
            switch outcome {
            case .success(let module):
                guard let shared = wasmShared["\(task.src)|\(task.jobId)"] else {
                    refuse("need-shared", "this peer does not hold the job's shared data")
                    continue
                }
                startWasmTask(task.src, task.message, jobId: task.jobId, taskId: task.taskId, header: task.header, pool: pool,
                              module: shared.module == digest ? module : wasmModules.get(shared.module), data: shared.data,
                              digest: shared.module, refuse: refuse)
            case .failure(let error) where task.src == src && task.jobId == jobId:
                refuse(error.code, error.message)
            case .failure:
                refuse("need-module", "this peer does not hold the module \(digest): send shared with moduleBase64")
            }
        }
    }

    func refuseTask(_ src: String, _ header: [String: JSONValue], _ code: String, _ message: String) {
        post(src, header.merging(["ok": .bool(false), "error": .object(["code": .string(code), "message": .string(message)])]) { $1 })
    }

    /// Drops the held tasks `matches` selects (a `cancel`): they end as `cancelled`, with no result.
    func cancelHeldWasmTasks(_ matches: (HeldWasmTask) -> Bool) {
        for digest in Array(wasmCompiling.keys) {
            let dropped = wasmCompiling[digest]!.filter(matches)
            guard !dropped.isEmpty else { continue }
            wasmCompiling[digest]!.removeAll(where: matches)
            wasmHeldCount -= dropped.count
            for task in dropped {
                tasksRun += 1
                onTaskRun?(task.src, task.jobId, task.taskId, "cancelled", 0)
            }
        }
    }

    /// The keys of the tasks held for modules being compiled.
    var heldWasmTaskKeys: [TaskKey] {
        wasmCompiling.values.flatMap { $0.map { TaskKey(src: $0.src, jobId: $0.jobId, taskId: $0.taskId) } }
    }

    private func startWasmTask(_ src: String, _ m: [String: JSONValue], jobId: String, taskId: Int, header: [String: JSONValue], pool: WorkerPool,
                               module: WasmModule?, data: [UInt8], digest: String, refuse: (String, String) -> Void) {
        guard let module else {
            refuse("need-module", "this peer does not hold the module \(digest): send shared with moduleBase64")
            return
        }
        guard case .string(let b64)? = m["input"]?["data"], let input = Data(base64Encoded: b64).map({ [UInt8]($0) }) else {
            refuse("bad-task", "input must be {data: <base64>}")
            return
        }
        let maxMessage = node.configuration.maxLinkMessageBytes
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
    /// output bytes, in input order. The module is checked here first: a module the ABI refuses (size,
    /// malformed, imports, exports, memory minimum) throws `WasmTaskError.badTask` and nothing is sent.
    /// Its code is then compiled off the service thread (a large module takes seconds, and this peer
    /// routes others' messages meanwhile); the job starts when it is done, or fails with `bad-task` for
    /// every task when the code is invalid. `progress` and the completion run on the service thread.
    public func runWasm(module: [UInt8], shared: [UInt8], inputs: [[UInt8]], peers: Int, options: JobOptions = JobOptions(),
                        progress: @escaping (Int, Int) -> Void = { _, _ in },
                        completion: @escaping (Result<(outputs: [[UInt8]], stats: JobStats), JobFailure>) -> Void) throws(WasmTaskError) {
        let limits = wasmLimits
        _ = try WasmModule(bytes: module, limits: limits, compile: false)
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
        var outputs = [[UInt8]](repeating: [], count: inputs.count)
        wasmCompilingJobs[jobId] = SubmittedJob(core: core, onResult: { i, bytes in
            outputs[i] = bytes
            return true
        }, onProgress: progress, onFinish: { result in
            completion(result.map { (outputs, $0) })
        })
        let transport = node.transport
        wasmCompiler.async { [self] in
            let checked = Result { () throws(WasmTaskError) in try WasmModule(bytes: module, limits: limits) }
            transport.post { [self] in
                guard let job = wasmCompilingJobs.removeValue(forKey: jobId) else { return }
                jobs[jobId] = job
                switch checked {
                case .success: step(jobId) { $0.start(now: Self.clock()) }
                case .failure(let error): step(jobId) { $0.cancel(error.code, error.description, now: Self.clock()) }
                }
            }
        }
    }
}
