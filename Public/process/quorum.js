// Verification by quorum (docs/jobs.md, "Verification by quorum"): the pure rules the scheduler
// (scheduler.js, quorum mode) and the job (job.js) apply, the same as Sources/Jobs/Quorum.swift and
// Scheduler.swift; both reproduce Tests/vectors/quorum.json (make_quorum_vectors.py).

const MASK64 = (1n << 64n) - 1n

/**
 * The spot-check draw of task `taskId` of a job seeded with `seed` (an integer in [0, 2^53)): a number
 * in [0, 1), the SplitMix64 finalizer of seed + (taskId + 1) · 0x9E3779B97F4A7C15 (mod 2^64), top 53 bits.
 */
export function spotCheckDraw (seed, taskId) {
  let z = (BigInt(seed) + BigInt(taskId + 1) * 0x9E3779B97F4A7C15n) & MASK64
  z = ((z ^ (z >> 30n)) * 0xBF58476D1CE4E5B9n) & MASK64
  z = ((z ^ (z >> 27n)) * 0x94D049BB133111EBn) & MASK64
  z ^= z >> 31n
  return Number(z >> 11n) / 2 ** 53
}

/**
 * The digest the results of a task (hex SHA-256s, one per peer) agree on, or null while more are
 * needed: the most common digest (count c of n) iff (`single` and n = 1) or (c ≥ 2 and 2c > n).
 */
export function decideQuorum (digests, single) {
  if (single && digests.length === 1) return digests[0]
  const counts = new Map()
  for (const d of digests) counts.set(d, (counts.get(d) ?? 0) + 1)
  for (const d of digests) if (counts.get(d) >= 2 && 2 * counts.get(d) > digests.length) return d
  return null
}

/**
 * The record of the peers whose results an engine verified (docs/jobs.md, "Reputation"), kept across
 * the jobs of a page: `agreed` (validated agreeing results since the last penalty) and `penalties`.
 */
export class Reputation {
  #records = new Map()   // peerId → { agreed, penalties }
  record (peerId) { const r = this.#records.get(peerId); return r ? { ...r } : { agreed: 0, penalties: 0 } }
  agree (peerId) { const r = this.record(peerId); r.agreed++; this.#records.set(peerId, r) }
  penalise (peerId) { const r = this.record(peerId); r.penalties++; r.agreed = 0; this.#records.set(peerId, r) }
  /** Whether jobs avoid the peer (it was penalised). */
  avoided (peerId) { return this.record(peerId).penalties > 0 }
  trusted (peerId, trustAfter) { const r = this.record(peerId); return r.penalties === 0 && r.agreed >= trustAfter }
  /** The probability that a task first sent to the peer is replicated: 1, or `spotCheckRate` once trusted. */
  check (peerId, trustAfter, spotCheckRate) { return this.trusted(peerId, trustAfter) ? spotCheckRate : 1 }
  /** Peers avoided, sorted. */
  avoidedPeers () { return [...this.#records].filter(([, r]) => r.penalties > 0).map(([p]) => p).sort() }
}

/**
 * The replicas of the tasks of one job in quorum mode: their results (one per peer), how many each
 * wants, whether it is single (exempt), and the counters `verification`. The scheduler owns the copies.
 */
export class Replicas {
  /** @param {number} taskCount @param {{maxReplicas: number, seed: number}} o */
  constructor (taskCount, { maxReplicas, seed }) {
    this.maxReplicas = Math.max(2, maxReplicas)
    this.seed = seed
    this.results = Array.from({ length: taskCount }, () => [])   // [{ peerId, sha256 }] in arrival order
    this.needed = new Uint32Array(taskCount)                      // results wanted
    this.single = new Uint8Array(taskCount)                       // exempt from replication
    this.verification = { results: 0, agreed: 0, dissented: 0, spotChecks: 0, unchecked: 0, noQuorum: 0 }
  }

  /** A task with no result and no copy out goes to a peer with replication probability `check`. */
  decide (t, check) {
    if (check <= 0) this.single[t] = 1
    else if (check >= 1) this.single[t] = 0
    else {
      this.single[t] = spotCheckDraw(this.seed, t) >= check ? 1 : 0
      if (!this.single[t]) this.verification.spotChecks++
    }
    this.needed[t] = this.single[t] ? 1 : 2
  }

  /** Copies task `t` still wants beyond the `out` copies out (0 unless `open`: not done nor failed). */
  wanted (t, out, open) { return open ? Math.max(0, this.needed[t] - this.results[t].length - out) : 0 }
  gave (t, peerId) { return this.results[t].some((r) => r.peerId === peerId) }
  count (t) { return this.results[t].length }
  add (t, peerId, sha256) { this.results[t].push({ peerId, sha256 }); this.verification.results++ }
  /** The peer of the latest result of task `t` with digest `sha256`. */
  latest (t, sha256) { return this.results[t].findLast((r) => r.sha256 === sha256).peerId }

  /** Removes the result of a penalised peer; the task then wants max(2, n + 1) results (1 if single). Whether there was one. */
  remove (t, peerId) {
    const n = this.results[t].length
    this.results[t] = this.results[t].filter((r) => r.peerId !== peerId)
    if (this.results[t].length === n) return false
    this.needed[t] = Math.max(this.single[t] ? 1 : 2, this.results[t].length + 1)
    return true
  }

  /** A result that came after acceptance, compared with the accepted digest. */
  compare (accepted, peerId, sha256) {
    if (accepted === sha256) { this.verification.agreed++; return { agreed: [peerId] } }
    this.verification.dissented++
    return { mismatch: true, dissented: [peerId] }
  }

  /** The accepted digest (or null) and, when at least two results were compared, who agreed and who did not. */
  judge (t) {
    const results = this.results[t]
    const accepted = decideQuorum(results.map((r) => r.sha256), this.single[t] === 1)
    if (accepted === null) return { accepted, agreed: [], dissented: [] }
    if (results.length === 1) { this.verification.unchecked++; return { accepted, agreed: [], dissented: [] } }
    const agreed = results.filter((r) => r.sha256 === accepted).map((r) => r.peerId)
    const dissented = results.filter((r) => r.sha256 !== accepted).map((r) => r.peerId)
    this.verification.agreed += agreed.length
    this.verification.dissented += dissented.length
    return { accepted, agreed, dissented }
  }

  /** No agreement: with every wanted result in, one more is wanted, or the failure message at `maxReplicas`. */
  grow (t) {
    const n = this.results[t].length
    if (n < this.needed[t]) return null
    if (n >= this.maxReplicas) {
      this.verification.noQuorum++
      return `no strict majority of ${n} results agrees (at most ${this.maxReplicas} copies)`
    }
    this.needed[t] = n + 1
    return null
  }
}
