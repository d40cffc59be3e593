// Neighbour-of-neighbour (NoN) routing (docs/protocol.md, "Neighbour-of-neighbour routing"; Manku, Naor,
// Wieder, "Know thy neighbor's neighbor", STOC 2004), pure: greedy routing over the two-hop view, where each
// link's peer told this peer its neighbour list in an `N` frame ("Neighbour lists"). The same rule as the
// native peers' and the simulator's `routeNoN` (Swift): both reproduce Tests/vectors/non-routing.json.

import { firstSteps, parseId, distance, inOpen, inOpenClosed, SPACE } from './ring.js'

/** A neighbour list holds at most this many IDs (a longer `N` frame is not a frame). */
export const MAX_NEIGHBOURS = 64

const LIST = /^[0-9a-f]{12}(,[0-9a-f]{12})*$/

/**
 * The routing decision for `dst` at `self`, as ring.js's `route` but for two steps. 2b: with an open link, the first
 * successor s_j with dst in (s_(j-1), s_j] (s_0 = self), else the finger of the lowest row (`fingers`: { row: id
 * or null }) whose interval [self + 2^row, finger] holds dst.
 * 3: every candidate v in
 * (self, dst) scores the largest distance from self of v itself and of the IDs of its list that lie in
 * (v, dst); the best score wins, ties to the candidate farther from self. `neighbours`: a function from a
 * candidate to its list (or undefined), or an object { id: [ids] }. Without lists step 3 is `route`'s.
 * Every next hop of step 3 lies in (self, dst), so each hop shrinks the distance left, whatever the lists say.
 */
export function routeNoN ({ self, dst, predecessor, successors, fingers, candidates, neighbours }) {
  const { s, d, live, firstLive, decision } = firstSteps({ self, dst, predecessor, successors, candidates })
  if (decision) return decision
  // 2b: a successor holds the keys after the one before it; row i's finger, successor(self + 2^i), those from that start to itself.
  let previous = s
  for (const x of successors) {
    if (live.has(x) && inOpenClosed(d, previous, parseId(x))) return { next: x }
    previous = parseId(x)
  }
  for (const [row, f] of Object.entries(fingers ?? {}).map(([r, p]) => [Number(r), p]).sort((a, b) => a[0] - b[0])) {
    if (!f || f === self || !live.has(f)) continue
    const start = (s + 2 ** row) % SPACE
    if (distance(start, d) <= distance(start, parseId(f))) return { next: f }
  }
  const listOf = typeof neighbours === 'function' ? neighbours : (id) => neighbours?.[id]
  const span = distance(s, d)
  let best = null
  let bestScore = -1
  let bestDistance = -1
  for (const c of live) {
    const v = parseId(c)
    if (!inOpen(v, s, d)) continue
    const dv = distance(s, v)
    let score = dv
    for (const w of (listOf(c) ?? []).slice(0, MAX_NEIGHBOURS)) {
      const dw = distance(s, parseId(w))
      if (dw > score && dw < span) score = dw
    }
    if (score > bestScore || (score === bestScore && dv > bestDistance)) { best = c; bestScore = score; bestDistance = dv }
  }
  if (best !== null) return { next: best }
  if (firstLive !== undefined) return { next: firstLive }
  return { error: 'no-route' }
}

/** The neighbour list `self` tells its links: fingers, successors and predecessor, without self, distinct,
 * nearest first (clockwise), at most MAX_NEIGHBOURS. `needed`: the finger table's peers (successors and fingers). */
export function neighbourList (self, needed, predecessor) {
  const set = new Set(needed)
  if (predecessor) set.add(predecessor)
  set.delete(self)
  const s = parseId(self)
  return [...set].sort((a, b) => distance(s, parseId(a)) - distance(s, parseId(b))).slice(0, MAX_NEIGHBOURS)
}

/** The `N` frame of a list. */
export function encodeNeighbours (ids) { return 'N' + ids.join(',') }

/** The list of an `N` frame, or null when the text is not one (then it is ignored). */
export function parseNeighbours (text) {
  if (typeof text !== 'string' || text[0] !== 'N') return null
  if (text === 'N') return []
  if (text.length > MAX_NEIGHBOURS * 13 || !LIST.test(text.slice(1))) return null
  return text.slice(1).split(',')
}
