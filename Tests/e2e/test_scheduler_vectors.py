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



def sequence_failures(sequences, results):
    """The first step of each vector sequence whose output or state the page got differently, and
    differing final winners."""
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
    return failures

def test_the_scheduler_reproduces_every_vector(page):
    sequences = VECTORS["sequences"]
    assert len(sequences) >= 60
    results = page.evaluate(RUN, sequences)
    failures = sequence_failures(sequences, results)
    assert failures == [], failures[:3]


QUORUM = json.loads((ROOT / "Tests/vectors/quorum.json").read_text())

RUN_QUORUM = """async (file) => {
  const { Scheduler, spotCheckDraw, decideQuorum, Reputation } = await import('/process/scheduler.js')
  const draws = file.draws.map((d) => spotCheckDraw(d.seed, d.task))
  const decisions = file.decisions.map((d) => decideQuorum(d.digests, d.single))
  const reputation = file.reputation.map((q) => {
    const r = new Reputation()
    return q.steps.map((step) => {
      if (step.op === 'agree') r.agree('p'); else r.penalise('p')
      const { agreed, penalties } = r.record('p')
      return { op: step.op, agreed, penalties, trusted: r.trusted('p', q.trustAfter), check: r.check('p', q.trustAfter, q.spotCheckRate), avoided: r.avoided('p') }
    })
  })
  const sequences = file.sequences.map((q) => {
    const s = new Scheduler({ taskCount: q.taskCount, ...q.options, quorum: q.quorum })
    const got = []
    for (const step of q.steps) {
      let out
      switch (step.op) {
        case 'addPeer': s.addPeer(step.peer, step.limit, step.check); break
        case 'setCheck': s.setCheck(step.peer, step.check); break
        case 'removePeer': out = s.removePeer(step.peer); break
        case 'assign': out = s.assign(step.now).map((a) => [a.taskId, a.peerId, a.attempt, a.speculative]); break
        case 'complete': {
          const r = s.complete(step.task, step.peer, step.sha256, step.now)
          out = { winner: r.winner, mismatch: !!r.mismatch, unexpected: !!r.unexpected, cancel: r.cancel, agreed: r.agreed ?? [], dissented: r.dissented ?? [], failed: !!r.failed }
          break
        }
        case 'fail': {
          const r = step.pauseMs === undefined ? s.fail(step.task, step.peer, step.code, 'm', step.now)
            : s.fail(step.task, step.peer, step.code, 'm', step.now, step.pauseMs)
          out = { failed: r.failed, cancel: r.cancel }
          break
        }
        case 'expired': out = s.expired(step.now).map((e) => ({ task: e.taskId, peer: e.peerId, failed: e.failed, cancel: e.cancel })); break
        case 'starved': out = s.starved(); break
        case 'failStarved': out = s.failStarved(step.task, 'm'); break
        case 'discount': out = s.discount(step.peer).map((r) => ({ task: r.taskId, accepted: r.accepted, winner: r.winner,
          completion: { winner: r.completion.winner, mismatch: !!r.completion.mismatch, unexpected: !!r.completion.unexpected, cancel: r.completion.cancel,
            agreed: r.completion.agreed, dissented: r.completion.dissented, failed: !!r.completion.failed } })); break
        default: throw new Error('unknown op ' + step.op)
      }
      got.push({ out, state: { remaining: s.remaining, finished: s.finished, pending: s.pending, counts: { ...s.counts }, verification: { ...s.verification } } })
    }
    return { got, wins: Object.fromEntries(s.wins()) }
  })
  return { draws, decisions, reputation, sequences }
}"""


def test_the_quorum_rules_reproduce_every_vector(page):
    """spotCheckDraw, decideQuorum, Reputation and the Scheduler in quorum mode against
    Tests/vectors/quorum.json (make_quorum_vectors.py), which Sources/Jobs also reproduces (QuorumVectorTests)."""
    assert len(QUORUM["sequences"]) >= 50
    r = page.evaluate(RUN_QUORUM, QUORUM)
    assert r["draws"] == [d["draw"] for d in QUORUM["draws"]]
    assert r["decisions"] == [d["accepted"] for d in QUORUM["decisions"]]
    assert r["reputation"] == [q["steps"] for q in QUORUM["reputation"]]
    failures = sequence_failures(QUORUM["sequences"], r["sequences"])
    assert failures == [], failures[:3]
