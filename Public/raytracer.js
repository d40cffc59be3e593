// Deterministic ray tracer for BrowserCloud jobs (docs/raytracer.md is the specification).
//
// Renders one tile of a scene to RGBA bytes. Only +, -, *, /, Math.sqrt, Math.floor, Math.abs and
// comparisons are used, in the exact order written in docs/raytracer.md, so that every JavaScript
// engine and the Swift kernel produce the same bytes for the same scene and tile. Runs unchanged in a
// Web Worker (no DOM access).

const EPSILON = 1e-6
const SHADOW_BIAS = 1e-4

/** Largest image side, samples per axis and reflection depth accepted, to bound the work of one task. */
export const LIMITS = Object.freeze({ maxSide: 8192, maxSamples: 8, maxDepth: 8, maxObjects: 256, maxLights: 16 })

const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
const add = (a, b) => [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
const scale = (a, s) => [a[0] * s, a[1] * s, a[2] * s]
const mul = (a, b) => [a[0] * b[0], a[1] * b[1], a[2] * b[2]]
const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
const normalize = (a) => { const l = Math.sqrt(dot(a, a)); return [a[0] / l, a[1] / l, a[2] / l] }

/** x^n for a non-negative integer n, by repeated multiplication (never Math.pow). */
function ipow (x, n) {
  let r = 1
  for (let i = 0; i < n; i++) r = r * x
  return r
}

function fail (path, message) { throw new Error(`scene: ${path} ${message}`) }

function vec (v, path) {
  if (!Array.isArray(v) || v.length !== 3 || !v.every(Number.isFinite)) fail(path, 'must be [x, y, z] with finite numbers')
  return v.slice()
}

function num (v, path, lo, hi) {
  if (!Number.isFinite(v) || v < lo || v > hi) fail(path, `must be a number in [${lo}, ${hi}]`)
  return v
}

function int (v, path, lo, hi) {
  if (!Number.isInteger(v) || v < lo || v > hi) fail(path, `must be an integer in [${lo}, ${hi}]`)
  return v
}

function material (m, path) {
  if (m === null || typeof m !== 'object') fail(path, 'must be an object')
  const out = {
    type: m.type,
    diffuse: num(m.diffuse ?? 1, `${path}.diffuse`, 0, 10),
    specular: num(m.specular ?? 0, `${path}.specular`, 0, 10),
    shininess: int(m.shininess ?? 1, `${path}.shininess`, 0, 1024),
    reflect: num(m.reflect ?? 0, `${path}.reflect`, 0, 1)
  }
  if (m.type === 'solid') {
    out.color = vec(m.color, `${path}.color`)
  } else if (m.type === 'checker') {
    if (!Array.isArray(m.colors) || m.colors.length !== 2) fail(`${path}.colors`, 'must hold two colours')
    out.colors = m.colors.map((c, i) => vec(c, `${path}.colors[${i}]`))
    out.size = num(m.size ?? 1, `${path}.size`, 1e-6, 1e6)
  } else {
    fail(`${path}.type`, "must be 'solid' or 'checker'")
  }
  return out
}

/**
 * Validates a scene (docs/raytracer.md) and returns a normalised copy with the camera basis computed.
 * Throws an Error naming the bad field.
 */
export function prepareScene (scene) {
  if (scene === null || typeof scene !== 'object') fail('', 'must be an object')
  const width = int(scene.width, 'width', 1, LIMITS.maxSide)
  const height = int(scene.height, 'height', 1, LIMITS.maxSide)
  const c = scene.camera ?? fail('camera', 'is required')
  const position = vec(c.position, 'camera.position')
  const lookAt = vec(c.lookAt, 'camera.lookAt')
  const up = vec(c.up ?? [0, 1, 0], 'camera.up')
  const viewHeight = num(c.viewHeight ?? 1, 'camera.viewHeight', 1e-6, 1e6)
  const forward = normalize(sub(lookAt, position))
  const right = normalize(cross(forward, up))
  if (!right.every(Number.isFinite) || !forward.every(Number.isFinite)) fail('camera', 'position, lookAt and up must not be collinear')
  const trueUp = cross(right, forward)
  const objects = scene.objects ?? []
  if (!Array.isArray(objects) || objects.length > LIMITS.maxObjects) fail('objects', `must be an array of at most ${LIMITS.maxObjects}`)
  const lights = scene.lights ?? []
  if (!Array.isArray(lights) || lights.length > LIMITS.maxLights) fail('lights', `must be an array of at most ${LIMITS.maxLights}`)
  return {
    width,
    height,
    samples: int(scene.samples ?? 1, 'samples', 1, LIMITS.maxSamples),
    maxDepth: int(scene.maxDepth ?? 3, 'maxDepth', 0, LIMITS.maxDepth),
    ambient: vec(scene.ambient ?? [0.1, 0.1, 0.1], 'ambient'),
    background: vec(scene.background ?? [0, 0, 0], 'background'),
    camera: { position, forward, right, up: trueUp, halfHeight: viewHeight / 2, halfWidth: (viewHeight / 2) * (width / height) },
    objects: objects.map((o, i) => {
      const path = `objects[${i}]`
      if (o === null || typeof o !== 'object') fail(path, 'must be an object')
      if (o.type === 'sphere') {
        const radius = num(o.radius, `${path}.radius`, 1e-6, 1e6)
        return { type: 'sphere', center: vec(o.center, `${path}.center`), radius, radius2: radius * radius, material: material(o.material, `${path}.material`) }
      }
      if (o.type === 'plane') {
        const normal = normalize(vec(o.normal, `${path}.normal`))
        if (!normal.every(Number.isFinite)) fail(`${path}.normal`, 'must not be zero')
        return { type: 'plane', point: vec(o.point, `${path}.point`), normal, material: material(o.material, `${path}.material`) }
      }
      return fail(`${path}.type`, "must be 'sphere' or 'plane'")
    }),
    lights: lights.map((l, i) => ({ position: vec(l.position, `lights[${i}].position`), color: vec(l.color ?? [1, 1, 1], `lights[${i}].color`) }))
  }
}

/** Distance along the ray to the object, or Infinity. `d` is a unit vector. */
function intersect (o, origin, d) {
  if (o.type === 'sphere') {
    const oc = sub(origin, o.center)
    const b = dot(oc, d)
    const c = dot(oc, oc) - o.radius2
    const disc = b * b - c
    if (disc < 0) return Infinity
    const s = Math.sqrt(disc)
    let t = -b - s
    if (t < EPSILON) t = -b + s
    return t < EPSILON ? Infinity : t
  }
  const denom = dot(o.normal, d)
  if (Math.abs(denom) < 1e-12) return Infinity
  const t = dot(sub(o.point, origin), o.normal) / denom
  return t < EPSILON ? Infinity : t
}

/** The nearest hit: the first object with the smallest distance, in scene order. */
function nearest (scene, origin, d) {
  let best = Infinity
  let hit = null
  for (const o of scene.objects) {
    const t = intersect(o, origin, d)
    if (t < best) { best = t; hit = o }
  }
  return hit === null ? null : { t: best, object: hit }
}

function surfaceColor (m, p) {
  if (m.type === 'solid') return m.color
  const k = Math.floor(p[0] / m.size) + Math.floor(p[2] / m.size)
  return m.colors[k - 2 * Math.floor(k / 2)]
}

function trace (scene, origin, d, depth) {
  const hit = nearest(scene, origin, d)
  if (hit === null) return scene.background
  const o = hit.object
  const m = o.material
  const p = add(origin, scale(d, hit.t))
  let n = o.type === 'sphere' ? scale(sub(p, o.center), 1 / o.radius) : o.normal
  if (dot(n, d) > 0) n = scale(n, -1)
  const base = surfaceColor(m, p)
  const lifted = add(p, scale(n, SHADOW_BIAS))
  let color = mul(scene.ambient, base)
  for (const light of scene.lights) {
    const toLight = sub(light.position, lifted)
    const distance = Math.sqrt(dot(toLight, toLight))
    const l = scale(toLight, 1 / distance)
    const blocker = nearest(scene, lifted, l)
    if (blocker !== null && blocker.t < distance) continue
    const lambert = dot(n, l)
    if (lambert > 0) color = add(color, scale(mul(light.color, base), m.diffuse * lambert))
    if (m.specular > 0) {
      const r = sub(scale(n, 2 * dot(n, l)), l)
      const rv = -dot(r, d)
      if (rv > 0) color = add(color, scale(light.color, m.specular * ipow(rv, m.shininess)))
    }
  }
  if (m.reflect > 0 && depth < scene.maxDepth) {
    const reflected = sub(d, scale(n, 2 * dot(d, n)))
    const bounce = trace(scene, lifted, reflected, depth + 1)
    color = add(scale(color, 1 - m.reflect), scale(bounce, m.reflect))
  }
  return color
}

/** Colour channel to byte: clamp to [0, 1], then floor(c * 255 + 0.5). */
function quantize (c) {
  const v = c < 0 ? 0 : (c > 1 ? 1 : c)
  return Math.floor(v * 255 + 0.5)
}

/**
 * Renders the tile {x, y, width, height} of a prepared scene (see prepareScene).
 * Returns a Uint8ClampedArray of width * height * 4 bytes, RGBA, rows top to bottom, alpha 255.
 */
export function renderTile (scene, tile) {
  const { x, y, width, height } = tile
  if (![x, y, width, height].every(Number.isInteger) || x < 0 || y < 0 || width < 1 || height < 1 ||
      x + width > scene.width || y + height > scene.height) {
    throw new Error(`tile ${JSON.stringify(tile)} is not inside the ${scene.width}x${scene.height} image`)
  }
  const out = new Uint8ClampedArray(width * height * 4)
  const cam = scene.camera
  const s = scene.samples
  const inv = 1 / (s * s)
  let k = 0
  for (let py = y; py < y + height; py++) {
    for (let px = x; px < x + width; px++) {
      let acc = [0, 0, 0]
      for (let sy = 0; sy < s; sy++) {
        for (let sx = 0; sx < s; sx++) {
          const u = (px + (sx + 0.5) / s) / scene.width
          const v = (py + (sy + 0.5) / s) / scene.height
          const a = (2 * u - 1) * cam.halfWidth
          const b = (1 - 2 * v) * cam.halfHeight
          const d = normalize(add(add(cam.forward, scale(cam.right, a)), scale(cam.up, b)))
          acc = add(acc, trace(scene, cam.position, d, 0))
        }
      }
      out[k] = quantize(acc[0] * inv)
      out[k + 1] = quantize(acc[1] * inv)
      out[k + 2] = quantize(acc[2] * inv)
      out[k + 3] = 255
      k += 4
    }
  }
  return out
}

/**
 * Splits a width x height image into `count` tiles (as close to a square grid as possible; count is
 * rounded to cols * rows with cols = ceil(sqrt(count)), rows = ceil(count / cols)), in row-major order.
 * Tiles differ in size by at most one pixel per axis.
 */
export function tiles (width, height, count) {
  let cols = 1
  while (cols * cols < count) cols++
  const rows = Math.max(1, Math.ceil(count / cols))
  cols = Math.min(cols, width)
  const r = Math.min(rows, height)
  const out = []
  for (let j = 0; j < r; j++) {
    const y0 = Math.floor((j * height) / r)
    const y1 = Math.floor(((j + 1) * height) / r)
    for (let i = 0; i < cols; i++) {
      const x0 = Math.floor((i * width) / cols)
      const x1 = Math.floor(((i + 1) * width) / cols)
      out.push({ x: x0, y: y0, width: x1 - x0, height: y1 - y0 })
    }
  }
  return out
}

/** Copies a rendered tile into the full RGBA image. */
export function blit (image, imageWidth, tile, pixels) {
  for (let row = 0; row < tile.height; row++) {
    const from = row * tile.width * 4
    image.set(pixels.subarray(from, from + tile.width * 4), ((tile.y + row) * imageWidth + tile.x) * 4)
  }
}
