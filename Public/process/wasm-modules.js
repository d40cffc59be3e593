// A worker peer's compiled WebAssembly task modules, named by the SHA-256 of their bytes (docs/jobs.md,
// "Module caching"): the submitter sends a module's bytes to a peer only when the peer answers a task
// with `need-module`. Compiled modules are posted to the task workers as they are.

import { WASM_LIMITS, compileModule, fromBase64 } from './wasm-module.js'
import { sha256Hex } from './job-protocol.js'

const HEX64 = /^[0-9a-f]{64}$/

export class WasmModules {
  /**
   * @param {object} [o]
   * @param {number} [o.maxModules] modules kept at most (default 16), the least recently used out
   * @param {number} [o.maxBytes] total module bytes kept at most (default 64 MiB)
   * @param {object} [o.limits] WASM_LIMITS, or some of them overridden
   */
  constructor ({ maxModules = 16, maxBytes = 64 * 1024 * 1024, limits = WASM_LIMITS } = {}) {
    this.maxModules = maxModules
    this.maxBytes = maxBytes
    this.limits = { ...WASM_LIMITS, ...limits }
    this.entries = new Map()   // sha256 → { module: Promise<WebAssembly.Module>, bytes }, least recently used first
  }

  /** Modules held (compiled or being compiled). */
  get size () { return this.entries.size }

  /** Whether the module of digest `sha` is held. */
  has (sha) { return this.entries.has(sha) }

  /**
   * The compiled module for a task's `shared` (`{ module, data, moduleBase64? }`): the cached one, or
   * the one compiled from `moduleBase64` after checking that its SHA-256 is `module`. Resolves to
   * `{ module }`, or `{ error: { code: 'need-module' | 'bad-task', message } }`.
   */
  async resolve (shared) {
    const sha = shared?.module
    if (typeof sha !== 'string' || !HEX64.test(sha)) return { error: { code: 'bad-task', message: "shared.module must be the module's SHA-256 (64 lowercase hex digits)" } }
    const needModule = { error: { code: 'need-module', message: `this peer does not hold the module ${sha.slice(0, 12)}…` } }
    let brought = false
    if (!this.entries.has(sha)) {
      if (shared.moduleBase64 === undefined) return needModule
      try {
        const bytes = fromBase64(shared.moduleBase64, 'shared.moduleBase64')
        if (bytes.length > this.limits.wasmMaxModuleBytes) throw Object.assign(new Error(`the module is ${bytes.length} bytes, more than wasmMaxModuleBytes (${this.limits.wasmMaxModuleBytes})`), { code: 'bad-task' })
        // Held from now on, while its SHA-256 is checked and it compiles: the job's next tasks, which
        // come without the bytes, wait for it instead of answering `need-module` (the module would be
        // sent again).
        this.#add(sha, bytes)
        brought = true
      } catch (error) {
        return { error: { code: error.code ?? 'bad-task', message: error.message } }
      }
    }
    const entry = this.entries.get(sha)
    this.entries.delete(sha)       // most recently used last
    this.entries.set(sha, entry)
    try {
      return { module: await entry.module }
    } catch (error) {
      // Bytes another task brought that are not this module: for a task that did not bring them, this
      // peer simply does not hold the module.
      if (error.code === 'not-this-module' && !brought) return needModule
      return { error: { code: 'bad-task', message: error.message } }
    }
  }

  #add (sha, bytes) {
    const module = sha256Hex(bytes).then((digest) => {
      if (digest !== sha) throw Object.assign(new Error('the SHA-256 of moduleBase64 is not shared.module'), { code: 'not-this-module' })
      return compileModule(bytes, this.limits)
    })
    // A module that does not compile (or bytes that are not this module) is not kept: a later copy of
    // it is refused the same way.
    module.catch(() => { if (this.entries.get(sha)?.module === module) this.entries.delete(sha) })   // the caller gets the error through the promise it holds
    this.entries.set(sha, { module, bytes: bytes.length })
    let total = 0
    for (const e of this.entries.values()) total += e.bytes
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.maxModules && total <= this.maxBytes) break
      if (key === sha) continue
      this.entries.delete(key)
      total -= e.bytes
    }
  }

  /** Forgets every module. */
  clear () { this.entries.clear() }
}
