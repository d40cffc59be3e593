"""The browser's scheduler (Public/process/scheduler.js) against the shared vectors
(Tests/vectors/scheduler.json, written by make_scheduler_vectors.py from docs/jobs.md), which the native
Scheduler.swift also reproduces (Tests/JobsTests/SchedulerVectorTests.swift)."""
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "Tests/vectors/scheduler.json").read_text())

RUN = """async (sequences) => {
  const { Scheduler } = await import('/process/scheduler.js')
  return sequences.map((q) => {
    const s = new Scheduler({ taskCount: q.taskCount, ...q.options })
    const got = []
    for (const step of q.steps) {
      let out
      switch (step.op) {
        case 'addPeer': s.addPeer(step.peer, step.limit); break
        case 'removePeer': out = s.removePeer(step.peer); break
        case 'assign': out = s.assign(step.now).map((a) => [a.taskId, a.peerId, a.attempt, a.speculative]); break
        case 'complete': {
          const r = s.complete(step.task, step.peer, step.sha256, step.now)
          out = { winner: r.winner, mismatch: !!r.mismatch, unexpected: !!r.unexpected, cancel: r.cancel }
          break
        }
        case 'fail': {
          const r = step.pauseMs === undefined ? s.fail(step.task, step.peer, step.code, 'm', step.now)
            : s.fail(step.task, step.peer, step.code, 'm', step.now, step.pauseMs)
          out = { failed: r.failed, cancel: r.cancel }
          break
        }
        case 'expired': out = s.expired(step.now).map((e) => ({ task: e.taskId, peer: e.peerId, failed: e.failed, cancel: e.cancel })); break
        case 'runningOn': out = s.runningOn(step.peer, step.before); break
        case 'abort': s.abort(step.code, 'm'); break
        default: throw new Error('unknown op ' + step.op)
      }
      const state = { remaining: s.remaining, finished: s.finished, counts: { ...s.counts } }
      if (step.op !== 'abort') state.pending = s.pending
      got.push({ out, state })
    }
    return { got, wins: Object.fromEntries(s.wins()) }
  })
}"""


def test_the_scheduler_reproduces_every_vector(page):
    sequences = VECTORS["sequences"]
    assert len(sequences) >= 60
    results = page.evaluate(RUN, sequences)
    failures = []
    for q, r in zip(sequences, results):
        for n, (step, got) in enumerate(zip(q["steps"], r["got"])):
            if "expect" in step and got["out"] != step["expect"]:
                failures.append((q["name"], n, step, got["out"]))
                break
            if got["state"] != step["state"]:
                failures.append((q["name"], n, step, got["state"]))
                break
        else:
            if r["wins"] != q["wins"]:
                failures.append((q["name"], "wins", q["wins"], r["wins"]))
    assert failures == [], failures[:3]
