// Chord identifier arithmetic and the routing decision (Stoica et al., SIGCOMM 2001), as pure functions.
// IDs are 48-bit integers held exactly in JavaScript numbers (below 2^53); on the wire they are 12
// lowercase hex characters. The same algorithm runs in the Swift peers: Tests/vectors/routing.json
// holds shared test vectors.

export const ID_BITS = 48
export const SPACE = 2 ** ID_BITS

export function parseId (hex) {
  if (typeof hex !== 'string' || !/^[0-9a-f]{12}$/.test(hex)) throw new TypeError(`not a peer ID: ${hex}`)
  return parseInt(hex, 16)
}

export function formatId (n) { return n.toString(16).padStart(12, '0') }

/** Clockwise distance from a to b, in [0, 2^48). */
export function distance (a, b) { return ((b - a) % SPACE + SPACE) % SPACE }

/** Whether x lies in the half-open interval (lower, upper] on the circle; the whole circle if lower == upper. */
export function inOpenClosed (x, lower, upper) {
  if (lower === upper) return true
  const d = distance(lower, x)
  return d !== 0 && d <= distance(lower, upper)
}

/** Whether x lies in the open interval (lower, upper). */
export function inOpen (x, lower, upper) {
  const d = distance(lower, x)
  return d !== 0 && (lower === upper || d < distance(lower, upper))
}

/**
 * The routing decision for a message to `dst` at peer `self` (hex IDs).
 * - `{ deliver: true }` when dst is in (predecessor, self], or the peer is alone;
 * - `{ next: id }`: the successor when dst is in (self, successor]; otherwise the closest preceding
 *   candidate (the one in (self, dst) farthest from self); otherwise the first live successor;
 * - `{ error: 'no-route' }` when no candidate link is up.
 * `candidates` are the peers with an open link (fingers and successors); `successors` is the ordered
 * successor list (the first live one is used).
 */
export function route ({ self, dst, predecessor, successors, candidates }) {
  const { s, d, live, firstLive, decision } = firstSteps({ self, dst, predecessor, successors, candidates })
  if (decision) return decision
  let best = null
  let bestDistance = -1
  for (const c of live) {
    const n = parseId(c)
    if (!inOpen(n, s, d)) continue
    const dist = distance(s, n)
    if (dist > bestDistance) { best = c; bestDistance = dist }
  }
  if (best !== null) return { next: best }
  if (firstLive !== undefined) return { next: firstLive }
  return { error: 'no-route' }
}

/**
 * Steps 1 and 2, which `route` and non-routing.js's `routeNoN` share: `decision` is `{ deliver: true }` when
 * dst is in (predecessor, self] or the peer is alone, `{ next: successor }` when dst is in (self, successor]
 * and that successor's link is up; otherwise undefined, with the parsed IDs, the live candidates and the
 * first live successor for the later steps.
 */
export function firstSteps ({ self, dst, predecessor, successors, candidates }) {
  const s = parseId(self)
  const d = parseId(dst)
  const live = new Set(candidates)
  const firstLive = successors.find((x) => live.has(x))
  let decision
  if (predecessor === null || predecessor === undefined) {
    if (successors.length === 0) decision = { deliver: true }
  } else if (inOpenClosed(d, parseId(predecessor), s)) {
    decision = { deliver: true }
  }
  if (!decision && firstLive !== undefined && successors[0] === firstLive && inOpenClosed(d, s, parseId(firstLive))) {
    decision = { next: firstLive }
  }
  return { s, d, live, firstLive, decision }
}
