// The job protocol's constants, options and errors (docs/jobs.md), shared by the engine
// (browser-process.js), the submitter's side of a job (process/job.js) and discovery.

/** The `proto` field of every job message carried in overlay envelopes. */
export const PROTOCOL = 'bc-job/1'

/** The runtimes a peer may offer. */
export const RUNTIMES = Object.freeze(['js', 'raytrace', 'wasm'])

/** Defaults of the job options (execute, raytrace, run); every one can be overridden per job. */
export const JOB_DEFAULTS = Object.freeze({
  deadlineMs: 60000,        // a task running longer on a worker is stopped there ('deadline')
  maxAttempts: 3,           // deadline/crash endings before a task fails
  maxRetries: 10,           // copies lost in transit, corrupt or cancelled before a task fails
  maxCopies: 2,             // running copies of a task at most (speculative duplicates); 1 disables them
  speculateAfter: 1.5,      // a task is a straggler after this many median task times …
  speculateMinMs: 1000,     // … and at least this long
  prefetch: 2,              // tasks a peer holds beyond its workers, so that the next one is there when one ends
  maxInFlightPerPeer: 16,   // upper bound of tasks held by one peer (workers + prefetch otherwise)
  discoveryMs: 3000,        // how long discovery waits for availability answers
  probeIntervalMs: 1000,    // peers holding tasks are asked what they run this often
  probeMisses: 5,           // unanswered probes in a row after which a peer is considered gone
  verify: 'none',           // 'quorum': accept a result only when copies from distinct peers agree (docs/jobs.md)
  maxReplicas: 5,           // quorum: results of one task at most before it fails ('no-quorum')
  trustAfter: 10,           // quorum: agreeing results in a row after which a peer is trusted (only spot-checked)
  spotCheckRate: 0.1        // quorum: probability that a task of a trusted peer is replicated all the same
  // seed (quorum: of the spot-check draws, an integer in [0, 2^53)) is random unless given
})

/** The values of the `verify` job option. */
export const VERIFY_MODES = Object.freeze(['none', 'quorum'])

export class JobError extends Error {
  constructor (message, { results, failures, stats }) {
    super(message)
    this.name = 'JobError'
    this.results = results
    this.failures = failures
    this.stats = stats
  }
}

/**
 * Codes of the engine's own failures that do not fail a job (as LINK_ERRORS names link failures): they
 * reach the page as `undelivered` events `{ code, peerId, kind, message }` instead of being dropped.
 */
export const JOB_ERRORS = Object.freeze({
  UNDELIVERED: 'ERR_UNDELIVERED'   // a job message (a reply, probe or cancel) found no route to its peer
})

/** Hex SHA-256: WebCrypto, or CryptoJS from /vendor/ where WebCrypto is missing (explorer/sha256.js). */
export { sha256Hex } from '../explorer/sha256.js'
