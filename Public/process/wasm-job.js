// The submitter's side of a `wasm` job (docs/jobs.md, "WebAssembly tasks"): the module's bytes and
// digest, the job's shared bytes and the tasks' inputs as the protocol carries them, and the ray tracer's
// tiles as task inputs.

import { WASM_LIMITS, toBase64 } from './wasm-module.js'
import { sha256Hex } from './job-protocol.js'

/** Where `raytrace(scene, { runtime: 'wasm' })` fetches the ray tracer module (`make wasm` puts it there). */
export const RAYTRACER_WASM_URL = new URL('../wasm/raytracer.wasm', import.meta.url)

const isBytes = (x) => x instanceof Uint8Array

/**
 * The bytes of a module given as a Uint8Array, an ArrayBuffer, or a URL (string or URL) to fetch.
 * Throws `TypeError` for anything else, an Error naming the URL when the fetch fails, and an Error with
 * `code: 'bad-task'` for a module larger than `limits.wasmMaxModuleBytes`.
 */
export async function moduleBytes (module, limits = WASM_LIMITS) {
  let bytes = module
  if (typeof module === 'string' || module instanceof URL) {
    const response = await fetch(module)
    if (!response.ok) throw new Error(`the module ${module} could not be fetched: HTTP ${response.status}`)
    bytes = new Uint8Array(await response.arrayBuffer())
  }
  if (bytes instanceof ArrayBuffer) bytes = new Uint8Array(bytes)
  if (!isBytes(bytes)) throw new TypeError('module must be a Uint8Array, an ArrayBuffer or the URL of a module')
  if (bytes.length > limits.wasmMaxModuleBytes) {
    throw Object.assign(new Error(`the module is ${bytes.length} bytes, more than wasmMaxModuleBytes (${limits.wasmMaxModuleBytes})`), { code: 'bad-task' })
  }
  return bytes
}

/**
 * A `wasm` job's protocol parts from `{ module, shared, inputs }` (module: see moduleBytes; shared: a
 * Uint8Array, optional; inputs: an array of Uint8Arrays). Returns `{ shared: { module: <hex SHA-256>,
 * data: <base64> }, inputs: [{ data: <base64> }], moduleBase64 }`. Throws as moduleBytes, and
 * `TypeError` for shared or inputs that are not bytes.
 */
export async function wasmJob ({ module, shared = new Uint8Array(0), inputs }, limits = WASM_LIMITS) {
  if (!isBytes(shared)) throw new TypeError('shared must be a Uint8Array')
  if (!Array.isArray(inputs) || !inputs.every(isBytes)) throw new TypeError('inputs must be an array of Uint8Arrays')
  const bytes = await moduleBytes(module, limits)
  return {
    shared: { module: await sha256Hex(bytes), data: toBase64(shared) },
    inputs: inputs.map((input) => ({ data: toBase64(input) })),
    moduleBase64: toBase64(bytes)
  }
}

/** The Wasm ray tracer's input for a tile: x, y, width, height as u32 little-endian (16 bytes). */
export function tileInput ({ x, y, width, height }) {
  const bytes = new Uint8Array(16)
  const view = new DataView(bytes.buffer)
  ;[x, y, width, height].forEach((v, i) => view.setUint32(4 * i, v, true))
  return bytes
}
