// The Web Worker that runs one task at a time for the worker pool (docs/jobs.md).
//
// In:  { id, runtime: 'raytrace', jobId, shared: { scene }, input: { tile } }
//      { id, runtime: 'js', jobId, shared: { source, mode: 'map' | 'partition' }, input }
//      { id, runtime: 'wasm', jobId, shared: { data }, module: WebAssembly.Module, input: { data } }
//        (data: base64; the page checked and compiled the module: wasm-modules.js)
// Out: { id, ok: true, encoding: 'base64' | 'json', payload, sha256 }   (sha256: hex SHA-256 of the
//      raw bytes for 'base64', of the UTF-8 JSON text for 'json')
//      { id, ok: false, error: { code: 'threw' | 'bad-task', message } }

import { prepareScene, renderTile } from '../raytracer.js'
import { prepareSha256, sha256Hex } from '../explorer/sha256.js'
import { runTask as runWasm, fromBase64 } from './wasm-module.js'

// Where WebCrypto is missing (a page that is not a secure context), SHA-256 comes from CryptoJS, which is
// fetched now, before fetch is removed from this scope below (explorer/sha256.js).
const shaReady = prepareSha256(fetch)
shaReady.catch((error) => error)   // reported by each task that needs it (execute awaits shaReady)

// Task functions come from other peers. A worker cannot reach the page (DOM, the explorer, its token)
// and only runs tasks of one job (the pool replaces it before another job's task); on top of that, the
// network APIs are removed from this scope before any task runs, and the message handlers are fixed.
// This is a best-effort guard, not a security boundary: see docs/jobs.md.
const post = self.postMessage.bind(self)
for (const name of ['fetch', 'XMLHttpRequest', 'WebSocket', 'EventSource', 'WebTransport', 'BroadcastChannel', 'importScripts', 'indexedDB', 'caches']) {
  for (let o = self; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    try { if (Object.prototype.hasOwnProperty.call(o, name)) delete o[name] } catch {}
  }
}

const CACHE_SIZE = 8
const functions = new Map()   // jobId → compiled function
const scenes = new Map()      // jobId → prepared scene
const sharedBytes = new Map() // jobId → the wasm job's shared bytes

function remember (cache, key, make) {
  if (cache.has(key)) return cache.get(key)
  const value = make()
  cache.set(key, value)
  if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value)
  return value
}

function compile (source) {
  if (typeof source !== 'string') throw Object.assign(new Error('source must be a string'), { code: 'bad-task' })
  let fn
  try { fn = (0, eval)(`(${source}\n)`) } catch (error) { throw Object.assign(new Error(`source does not compile: ${error.message}`), { code: 'bad-task' }) }
  if (typeof fn !== 'function') throw Object.assign(new Error('source must be a function expression'), { code: 'bad-task' })
  return fn
}

function base64 (bytes) {
  let text = ''
  for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.subarray(i, i + 8192))
  return btoa(text)
}

async function hex (bytes) {
  await shaReady
  return sha256Hex(bytes)
}

async function execute (m) {
  if (m.runtime === 'raytrace') {
    const scene = remember(scenes, m.jobId, () => prepareScene(m.shared?.scene))
    const bytes = renderTile(scene, m.input?.tile ?? {})
    return { encoding: 'base64', payload: base64(bytes), sha256: await hex(bytes) }
  }
  if (m.runtime === 'wasm') {
    if (!(m.module instanceof WebAssembly.Module)) throw Object.assign(new Error('no compiled module came with the task'), { code: 'bad-task' })
    const shared = remember(sharedBytes, m.jobId, () => fromBase64(m.shared?.data ?? '', 'shared.data'))
    const bytes = runWasm(m.module, shared, fromBase64(m.input?.data, 'input.data'), m.limits)
    return { encoding: 'base64', payload: base64(bytes), sha256: await hex(bytes) }
  }
  if (m.runtime === 'js') {
    const fn = remember(functions, m.jobId, () => compile(m.shared?.source))
    let value
    if (m.shared?.mode === 'partition') value = await fn(m.input)
    else if (Array.isArray(m.input)) { value = []; for (const x of m.input) value.push(await fn(x)) }
    else throw Object.assign(new Error("input of a 'map' task must be an array"), { code: 'bad-task' })
    const payload = JSON.stringify(value) ?? 'null'
    return { encoding: 'json', payload, sha256: await hex(new TextEncoder().encode(payload)) }
  }
  throw Object.assign(new Error(`unknown runtime '${m.runtime}'`), { code: 'bad-task' })
}

async function handle (e) {
  const m = e.data
  try {
    post({ id: m.id, ok: true, ...(await execute(m)) })
  } catch (error) {
    post({ id: m.id, ok: false, error: { code: typeof error?.code === 'string' ? error.code : 'threw', message: String(error?.message ?? error) } })
  }
}
self.addEventListener('message', handle)
for (const name of ['onmessage', 'postMessage']) Object.defineProperty(self, name, { value: undefined, writable: false, configurable: false })
