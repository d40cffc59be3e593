// The `wasm` runtime's module rules and task ABI (docs/jobs.md, "WebAssembly tasks"): pure functions
// used by the page (checking and compiling a module once: wasm-modules.js) and by the task worker
// (running one task: task-worker.js).
//
// A task module imports nothing and exports `memory`, `bc_alloc(size: i32) -> i32` and
// `bc_run(shared_ptr, shared_len, input_ptr, input_len: i32) -> i64`, whose result is
// `(output_len << 32) | output_ptr`. Refusals carry `code: 'bad-task'`; failures while a task runs
// (traps, pointers outside memory) are plain errors, reported as `threw` with their message.

/** The limits of the `wasm` runtime, the same as native peers' (every one can be configured). */
export const WASM_LIMITS = Object.freeze({
  wasmMaxModuleBytes: 8 * 1024 * 1024,   // a larger module is refused (bad-task)
  wasmMaxMemoryPages: 256,               // 64 KiB pages: 16 MiB; a larger minimum is refused, growth beyond it fails
  wasmMaxOutputBytes: 16 * 1024 * 1024   // a larger output fails the task (threw)
})

const badTask = (message) => Object.assign(new Error(message), { code: 'bad-task' })

/** Reads an unsigned LEB128 number at `at`; returns [value, next offset]. Throws on truncated bytes. */
function leb (bytes, at) {
  let value = 0
  let scale = 1
  for (let i = 0; i < 10; i++) {
    if (at >= bytes.length) throw badTask('malformed module: truncated number')
    const b = bytes[at++]
    value += (b & 0x7f) * scale
    scale *= 128
    if ((b & 0x80) === 0) return [value, at]
  }
  throw badTask('malformed module: number too long')
}

function encodeLeb (value) {
  const out = []
  do {
    let b = value % 128
    value = Math.floor(value / 128)
    if (value > 0) b |= 0x80
    out.push(b)
  } while (value > 0)
  return out
}

/**
 * Checks `bytes` (a Uint8Array) against the module rules that need no compilation (size, memory) and
 * returns the bytes to compile: the same module with every memory's maximum set to at most
 * `limits.wasmMaxMemoryPages`, so that `memory.grow` beyond the limit returns -1. Throws `bad-task`
 * errors: too large, malformed, a memory minimum above the limit, shared or 64-bit memories.
 */
export function limitModule (bytes, limits = WASM_LIMITS) {
  if (!(bytes instanceof Uint8Array)) throw badTask('the module must be bytes')
  if (bytes.length > limits.wasmMaxModuleBytes) throw badTask(`the module is ${bytes.length} bytes, more than wasmMaxModuleBytes (${limits.wasmMaxModuleBytes})`)
  const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]
  if (bytes.length < 8 || header.some((b, i) => bytes[i] !== b)) throw badTask('malformed module: not WebAssembly version 1')
  const parts = [bytes.subarray(0, 8)]
  let at = 8
  while (at < bytes.length) {
    const id = bytes[at]
    const [size, body] = leb(bytes, at + 1)
    const end = body + size
    if (end > bytes.length) throw badTask('malformed module: a section runs past the end')
    if (id !== 5) { parts.push(bytes.subarray(at, end)); at = end; continue }
    // The memory section: count, then limits (flags, min, [max]) per memory.
    let [count, p] = leb(bytes, body)
    const out = encodeLeb(count)
    for (let i = 0; i < count; i++) {
      const flags = bytes[p++]
      if (flags !== 0 && flags !== 1) throw badTask(`a memory with flags ${flags} (shared or 64-bit) is not allowed`)
      let min, max
      ;[min, p] = leb(bytes, p)
      if (flags === 1) [max, p] = leb(bytes, p)
      if (min > limits.wasmMaxMemoryPages) throw badTask(`the memory's minimum of ${min} pages is more than wasmMaxMemoryPages (${limits.wasmMaxMemoryPages})`)
      out.push(1, ...encodeLeb(min), ...encodeLeb(Math.min(max ?? Infinity, limits.wasmMaxMemoryPages)))
    }
    if (p !== end) throw badTask('malformed module: memory section size')
    parts.push(Uint8Array.of(5, ...encodeLeb(out.length), ...out))
    at = end
  }
  const result = new Uint8Array(parts.reduce((n, part) => n + part.length, 0))
  let o = 0
  for (const part of parts) { result.set(part, o); o += part.length }
  return result
}

/** Checks a compiled module's imports and exports (docs/jobs.md); throws `bad-task`. */
export function checkModule (module) {
  const imports = WebAssembly.Module.imports(module)
  if (imports.length > 0) throw badTask(`the module imports ${imports.length} item(s) (first: ${imports[0].module}.${imports[0].name}); a task module imports nothing`)
  const kinds = new Map(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind]))
  for (const [name, kind] of [['memory', 'memory'], ['bc_alloc', 'function'], ['bc_run', 'function']]) {
    if (kinds.get(name) !== kind) throw badTask(`the module does not export the ${kind} '${name}'`)
  }
}

/** Checks, limits and compiles module bytes; resolves to a WebAssembly.Module or rejects with `bad-task`. */
export async function compileModule (bytes, limits = WASM_LIMITS) {
  const limited = limitModule(bytes, limits)
  let module
  try {
    module = await WebAssembly.compile(limited)
  } catch (error) {
    throw badTask(`the module does not compile: ${error.message}`)
  }
  checkModule(module)
  return module
}

/**
 * Runs one task: instantiates `module` afresh (no state carries over), copies `shared` and `input`
 * (Uint8Arrays) into memory through `bc_alloc`, calls `bc_run` and returns a copy of the output bytes.
 * Throws `bad-task` for mistyped exports, plain errors (`threw`) for traps, a `bc_alloc` that returns 0,
 * pointers outside memory and outputs above `limits.wasmMaxOutputBytes`.
 */
export function runTask (module, shared, input, limits = WASM_LIMITS) {
  let instance
  try {
    instance = new WebAssembly.Instance(module, {})
  } catch (error) {
    throw (error instanceof WebAssembly.RuntimeError || error instanceof RangeError) ? error : badTask(`the module does not instantiate: ${error.message}`)
  }
  const { memory, bc_alloc: alloc, bc_run: run } = instance.exports
  if (alloc.length !== 1) throw badTask(`bc_alloc takes ${alloc.length} parameters, not 1`)
  if (run.length !== 4) throw badTask(`bc_run takes ${run.length} parameters, not 4`)
  // A TypeError from a call is the JS API refusing to convert between JS values and the export's
  // parameter or result types (traps are RuntimeErrors, stack exhaustion a RangeError): a mistyped export.
  const call = (fn, name, ...args) => {
    try { return fn(...args) } catch (error) { throw error instanceof TypeError ? badTask(`${name} has the wrong type: ${error.message}`) : error }
  }
  const place = (bytes, what) => {
    const ptr = call(alloc, 'bc_alloc', bytes.length)
    if (!Number.isInteger(ptr)) throw badTask('bc_alloc must return an i32')
    if (ptr === 0) throw new Error(`bc_alloc(${bytes.length}) for the ${what} returned 0`)
    const at = ptr >>> 0
    if (at + bytes.length > memory.buffer.byteLength) throw new Error(`bc_alloc(${bytes.length}) for the ${what} returned ${at}: outside memory (${memory.buffer.byteLength} bytes)`)
    new Uint8Array(memory.buffer, at, bytes.length).set(bytes)
    return ptr
  }
  const sharedPtr = place(shared, 'shared data')
  const inputPtr = place(input, 'input')
  const packed = call(run, 'bc_run', sharedPtr, shared.length, inputPtr, input.length)
  if (typeof packed !== 'bigint') throw badTask('bc_run must return an i64')
  const bits = BigInt.asUintN(64, packed)
  const ptr = Number(bits & 0xffffffffn)
  const len = Number(bits >> 32n)
  if (len > limits.wasmMaxOutputBytes) throw new Error(`the output is ${len} bytes, more than wasmMaxOutputBytes (${limits.wasmMaxOutputBytes})`)
  if (ptr + len > memory.buffer.byteLength) throw new Error(`bc_run's output (pointer ${ptr}, length ${len}) is outside memory (${memory.buffer.byteLength} bytes)`)
  return new Uint8Array(memory.buffer, ptr, len).slice()
}

/** Bytes from base64 text; throws `bad-task` for text that is not base64. */
export function fromBase64 (text, what) {
  if (typeof text !== 'string') throw badTask(`${what} must be base64 text`)
  let binary
  try { binary = atob(text) } catch { throw badTask(`${what} is not base64`) }
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

/** Base64 text of bytes. */
export function toBase64 (bytes) {
  let text = ''
  for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.subarray(i, i + 8192))
  return btoa(text)
}
