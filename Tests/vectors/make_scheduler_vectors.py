#!/usr/bin/env python3
"""Writes Tests/vectors/scheduler.json: sequences of scheduler operations with the outcomes that
docs/jobs.md ("Scheduling", the job options and the failure codes) prescribes, computed here by a third,
independent model of that text. The browser's Public/process/scheduler.js (Tests/e2e/test_scheduler_vectors.py)
and the native Sources/Jobs/Scheduler.swift (Tests/JobsTests/SchedulerVectorTests.swift) must both
reproduce every step.

    python3 Tests/vectors/make_scheduler_vectors.py [--seed N] [--check]

The rules modelled (docs/jobs.md; where the text is silent, the choice is marked "silent:"):
- Pull with credits: a peer holds at most `limit` tasks (a limit below 1 counts as 1). `assign(now)` goes
  through the peers in the order they were added and fills each one's free credits. Pending tasks go in
  task order; tasks to dispatch again go first, in the order they came back. silent: copies that come
  back together (a peer removed, several copies expiring at one `now`) come back in task order.
- A peer that declined ('busy', 'stopped') pauses for `pauseMs` (500 unless given): no task goes to it
  before `now` passes that; any result from it ends the pause.
- Each dispatch of a task is a copy with the next attempt number (1, 2, …). A copy not answered by
  `deadlineMs` after its dispatch (strictly more) is expired as 'deadline' by `expired(now)`, which looks
  at the peers in their order and, per peer, at its tasks in task order.
- Failure codes: 'deadline' and 'crashed' count towards `maxAttempts` (the task fails when that many
  copies ended so); 'lost', 'corrupt', 'cancelled' count towards `maxRetries` (the task fails when more
  than that many ended so); 'busy', 'stopped', 'need-shared' count nothing; any other code ('threw',
  'bad-task', 'unsupported') fails the task at once. A task that failed has its other copies cancelled.
- A peer removed: its copies go back to pending (counted as `lost`, not against the task).
- Speculative duplicates: only when nothing is pending, with `maxCopies` > 1 and at least one result
  timed: the threshold is max(speculateMinMs, speculateAfter × median), the median of the winners'
  dispatch-to-result times (silent: of an even count, the upper middle one). A peer's idle credits go to
  the outstanding task whose first copy is oldest, older than the threshold (strictly), with fewer than
  `maxCopies` copies, none on this peer. silent: between equally old ones, the lowest task id.
- First result wins (its SHA-256 is kept); the other copies are cancelled (silent: the cancel lists are
  sorted by peer ID). Later results are discarded and compared (`mismatches`). A result from a peer the
  task was never sent to is `unexpected` and ignored; one for a failed task is ignored.
- `abort(code)` fails every task not done.
Times are integers in milliseconds. The state after every step: remaining, pending, finished, counts.

ABORT_PENDING: after `abort`, both implementations still count the never-dispatched tasks as `pending`
(their queue is not emptied), although every task has failed; the vectors leave `pending` out there.
"""
import argparse
import json
import pathlib
import random

OUT = pathlib.Path(__file__).resolve().parent / "scheduler.json"
COUNTED = {"deadline", "crashed"}
DECLINED = {"busy", "stopped"}
RETRIED_COUNTED = {"lost", "corrupt", "cancelled"}
FREE_RETRY = DECLINED | {"need-shared"}
CODES = sorted(COUNTED | DECLINED | RETRIED_COUNTED | {"need-shared", "threw", "bad-task"})
COUNT_NAMES = ["dispatched", "redispatched", "speculative", "discarded", "mismatches", "late", "lost", "busy", "failed"]


class Model:
    def __init__(self, task_count, deadlineMs=120000, maxAttempts=3, maxCopies=2, speculateAfter=1.5,
                 speculateMinMs=1000, maxRetries=10):
        self.o = dict(deadlineMs=deadlineMs, maxAttempts=maxAttempts, maxCopies=maxCopies,
                      speculateAfter=speculateAfter, speculateMinMs=speculateMinMs, maxRetries=maxRetries)
        self.n = task_count
        self.state = ["pending"] * task_count        # pending, running, done, failed
        self.fresh = list(range(task_count))          # never dispatched, in task order
        self.again = []                               # came back, in the order they came back
        self.copy = [dict() for _ in range(task_count)]   # peer -> dispatch time
        self.sent = [set() for _ in range(task_count)]
        self.dispatches = [0] * task_count
        self.bad_runs = [0] * task_count              # deadline, crashed
        self.losses = [0] * task_count                # lost, corrupt, cancelled
        self.digest = {}
        self.peers = {}                               # insertion-ordered: peer -> {limit, paused, won}
        self.times = []
        self.counts = {k: 0 for k in COUNT_NAMES}

    # -- queries
    def remaining(self):
        return sum(1 for s in self.state if s in ("pending", "running"))

    def pending(self):
        return sum(1 for s in self.state if s == "pending")

    def holds(self, peer):
        return sorted(t for t in range(self.n) if peer in self.copy[t])

    def snapshot(self):
        return {"remaining": self.remaining(), "pending": self.pending(), "finished": self.remaining() == 0,
                "counts": dict(self.counts)}

    # -- transitions
    def _back(self, tasks):
        for t in sorted(tasks):
            if self.state[t] == "running" and not self.copy[t]:
                self.state[t] = "pending"
                self.again.append(t)

    def _drop(self, t, peer):
        self.copy[t].pop(peer, None)

    def add_peer(self, peer, limit):
        if peer in self.peers:
            self.peers[peer]["limit"] = max(1, limit)
        else:
            self.peers[peer] = {"limit": max(1, limit), "paused": 0, "won": 0}

    def remove_peer(self, peer):
        if peer not in self.peers:
            return []
        del self.peers[peer]
        lost = self.holds(peer)
        for t in lost:
            self.counts["lost"] += 1
            self._drop(t, peer)
        self._back(lost)
        return lost

    def _next(self):
        while self.again:
            t = self.again.pop(0)
            if self.state[t] == "pending":
                return t
        while self.fresh:
            t = self.fresh.pop(0)
            if self.state[t] == "pending":
                return t
        return None

    def _dispatch(self, t, peer, now, spec):
        self.dispatches[t] += 1
        self.state[t] = "running"
        self.copy[t][peer] = now
        self.sent[t].add(peer)
        self.counts["dispatched"] += 1
        if spec:
            self.counts["speculative"] += 1
        elif self.dispatches[t] > 1:
            self.counts["redispatched"] += 1
        return [t, peer, self.dispatches[t], spec]

    def assign(self, now):
        out = []
        for peer, p in self.peers.items():
            if p["paused"] > now:
                continue
            while len(self.holds(peer)) < p["limit"]:
                t = self._next()
                if t is None:
                    break
                out.append(self._dispatch(t, peer, now, False))
        if self.pending() == 0 and self.o["maxCopies"] > 1 and self.times:
            median = sorted(self.times)[len(self.times) // 2]
            threshold = max(self.o["speculateMinMs"], self.o["speculateAfter"] * median)
            for peer, p in self.peers.items():
                if p["paused"] > now:
                    continue
                while len(self.holds(peer)) < p["limit"]:
                    best, best_age = None, None
                    for t in range(self.n):
                        c = self.copy[t]
                        if self.state[t] != "running" or not c or peer in c or len(c) >= self.o["maxCopies"]:
                            continue
                        age = now - min(c.values())
                        if age > threshold and (best_age is None or age > best_age):
                            best, best_age = t, age
                    if best is None:
                        break
                    out.append(self._dispatch(best, peer, now, True))
        return out

    def complete(self, t, peer, sha, now):
        if not (0 <= t < self.n) or peer not in self.sent[t]:
            return {"winner": False, "mismatch": False, "unexpected": True, "cancel": []}
        sent_at = self.copy[t].get(peer)
        self._drop(t, peer)
        if peer in self.peers:
            self.peers[peer]["paused"] = 0
        if self.state[t] == "done":
            self.counts["discarded"] += 1
            mismatch = self.digest[t] != sha
            if mismatch:
                self.counts["mismatches"] += 1
            return {"winner": False, "mismatch": mismatch, "unexpected": False, "cancel": []}
        if self.state[t] == "failed":
            return {"winner": False, "mismatch": False, "unexpected": False, "cancel": []}
        self.state[t] = "done"
        self.digest[t] = sha
        if peer in self.peers:
            self.peers[peer]["won"] += 1
        if sent_at is not None:
            self.times.append(now - sent_at)
        cancel = sorted(self.copy[t])
        self.copy[t] = {}
        return {"winner": True, "mismatch": False, "unexpected": False, "cancel": cancel}

    def fail(self, t, peer, code, now, pause=500):
        if not (0 <= t < self.n) or peer not in self.copy[t]:
            return {"failed": False, "cancel": []}
        self._drop(t, peer)
        if code in DECLINED:
            self.counts["busy"] += 1
            if peer in self.peers:
                self.peers[peer]["paused"] = now + pause
        if code == "deadline":
            self.counts["late"] += 1
        if code == "lost":
            self.counts["lost"] += 1
        if code in COUNTED:
            self.bad_runs[t] += 1
        elif code in RETRIED_COUNTED:
            self.losses[t] += 1
        permanent = (code not in COUNTED | RETRIED_COUNTED | FREE_RETRY or self.bad_runs[t] >= self.o["maxAttempts"]
                     or self.losses[t] > self.o["maxRetries"])
        if not permanent:
            self._back([t])
            return {"failed": False, "cancel": []}
        cancel = sorted(self.copy[t])
        self._fail_task(t)
        return {"failed": True, "cancel": cancel}

    def _fail_task(self, t):
        self.copy[t] = {}
        self.state[t] = "failed"
        self.counts["failed"] += 1

    def expired(self, now):
        late = [(t, peer) for peer in self.peers for t in self.holds(peer) if now - self.copy[t][peer] > self.o["deadlineMs"]]
        out = []
        for t, peer in late:
            r = self.fail(t, peer, "deadline", now)
            out.append({"task": t, "peer": peer, "failed": r["failed"], "cancel": r["cancel"]})
        return out

    def abort(self):
        for t in range(self.n):
            if self.state[t] in ("pending", "running"):
                self._fail_task(t)

    def running_on(self, peer, before):
        if peer not in self.peers:
            return []
        return [t for t in self.holds(peer) if self.copy[t][peer] < before]

    def wins(self):
        return {p: v["won"] for p, v in self.peers.items()}


def scenario(rng, index):
    """One random sequence, driven by the model's state so that most steps do something."""
    n = rng.randint(1, 10)
    opts = {"deadlineMs": rng.choice([300, 1000, 5000]), "maxAttempts": rng.randint(1, 3),
            "maxCopies": rng.choice([1, 2, 2, 3]), "speculateAfter": rng.choice([1, 1.5, 2]),
            "speculateMinMs": rng.choice([0, 100, 400]), "maxRetries": rng.randint(0, 3)}
    m = Model(n, **opts)
    steps = []
    now = 0
    names = ["a", "b", "c", "d", "e"]
    next_peer = 0

    def step(op, expect=None, **fields):
        s = {"op": op, **fields}
        if expect is not None:
            s["expect"] = expect
        s["state"] = m.snapshot()
        steps.append(s)

    for _ in range(rng.randint(1, 3)):
        limit = rng.randint(0, 3)
        step("addPeer", m.add_peer(names[next_peer], limit), peer=names[next_peer], limit=limit)
        next_peer += 1
    for _ in range(rng.randint(8, 40)):
        now += rng.choice([0, 0, 50, 100, 100, 200, 500])
        running = [(t, p) for t in range(n) for p in sorted(m.copy[t])]
        r = rng.random()
        if r < 0.25 or not running and r < 0.6:
            step("assign", m.assign(now), now=now)
        elif r < 0.5 and running:
            t, p = rng.choice(running)
            sha = f"h{t}" if rng.random() < 0.85 else f"x{t}"
            step("complete", m.complete(t, p, sha, now), task=t, peer=p, sha256=sha, now=now)
        elif r < 0.58:
            # a late or unexpected result: any task, any known peer name
            t, p = rng.randrange(n + 1) - (1 if rng.random() < 0.1 else 0), rng.choice(names[:max(1, next_peer)])
            sha = f"h{t}" if rng.random() < 0.7 else f"x{t}"
            step("complete", m.complete(t, p, sha, now), task=t, peer=p, sha256=sha, now=now)
        elif r < 0.72 and running:
            t, p = rng.choice(running)
            code = rng.choice(CODES)
            pause = rng.choice([None, 200, 1000])
            fields = {"task": t, "peer": p, "code": code, "now": now}
            if pause is not None:
                fields["pauseMs"] = pause
            step("fail", m.fail(t, p, code, now, 500 if pause is None else pause), **fields)
        elif r < 0.82:
            now += rng.choice([0, opts["deadlineMs"] // 2, opts["deadlineMs"] + 1])
            step("expired", m.expired(now), now=now)
        elif r < 0.87 and m.peers:
            p = rng.choice(sorted(m.peers))
            step("removePeer", m.remove_peer(p), peer=p)
        elif r < 0.92 and next_peer < len(names):
            limit = rng.randint(1, 3)
            step("addPeer", m.add_peer(names[next_peer], limit), peer=names[next_peer], limit=limit)
            next_peer += 1
        elif r < 0.96 and m.peers:
            p = rng.choice(sorted(m.peers))
            before = now - rng.choice([0, 100, 300])
            step("runningOn", m.running_on(p, before), peer=p, before=before)
        else:
            step("assign", m.assign(now), now=now)
    if rng.random() < 0.2:
        step("abort", None, code="no-peers")
        m_abort = steps.pop()
        m.abort()
        m_abort["state"] = m.snapshot()
        del m_abort["state"]["pending"]   # see ABORT_PENDING
        steps.append(m_abort)
    return {"name": f"random {index}", "taskCount": n, "options": opts, "steps": steps, "wins": m.wins()}


def fixed():
    """Hand-written sequences for the rules the random ones reach rarely."""
    out = []

    def run(name, n, opts, ops):
        m = Model(n, **opts)
        steps = []
        for op in ops:
            kind = op["op"]
            if kind == "addPeer":
                m.add_peer(op["peer"], op["limit"]); e = None
            elif kind == "assign":
                e = m.assign(op["now"])
            elif kind == "complete":
                e = m.complete(op["task"], op["peer"], op["sha256"], op["now"])
            elif kind == "fail":
                e = m.fail(op["task"], op["peer"], op["code"], op["now"], op.get("pauseMs", 500))
            elif kind == "expired":
                e = m.expired(op["now"])
            elif kind == "removePeer":
                e = m.remove_peer(op["peer"])
            elif kind == "abort":
                m.abort(); e = None
            s = dict(op)
            if e is not None:
                s["expect"] = e
            s["state"] = m.snapshot()
            if kind == "abort":
                del s["state"]["pending"]   # see ABORT_PENDING
            steps.append(s)
        out.append({"name": name, "taskCount": n, "options": m.o, "steps": steps, "wins": m.wins()})

    A = lambda p, l: {"op": "addPeer", "peer": p, "limit": l}
    G = lambda now: {"op": "assign", "now": now}
    C = lambda t, p, h, now: {"op": "complete", "task": t, "peer": p, "sha256": h, "now": now}
    F = lambda t, p, c, now: {"op": "fail", "task": t, "peer": p, "code": c, "now": now}
    # A removed peer's copies come back in task order although it received them in another order.
    run("removed peer: copies come back in task order", 4, {}, [
        A("a", 2), A("b", 1), G(0), F(0, "a", "lost", 10), G(20),
        {"op": "removePeer", "peer": "a"}, C(2, "b", "h2", 50), G(60), C(0, "b", "h0", 70), G(80)])
    # Two copies expire at one `now` on one peer, received out of task order.
    run("expiry in task order", 3, {"deadlineMs": 100, "maxCopies": 1}, [
        A("a", 2), G(0), F(0, "a", "need-shared", 10), G(50), {"op": "expired", "now": 151}, A("b", 2), G(152)])
    # Equally old stragglers: the lowest task id gets the duplicate.
    run("speculation tie: lowest task id", 4, {"speculateAfter": 1, "speculateMinMs": 0}, [
        A("a", 1), A("b", 1), A("c", 1), G(0), C(0, "a", "h0", 100), G(100), C(2, "a", "h2", 200),
        A("d", 1), G(500)])
    # Duplicates: first result wins, the later one is compared.
    run("first result wins, mismatch counted", 1, {"speculateMinMs": 0, "speculateAfter": 1}, [
        A("a", 1), A("b", 1), G(0), G(1), F(0, "a", "busy", 2), G(3), C(0, "b", "h0", 10)])
    run("maxAttempts and maxRetries", 2, {"maxAttempts": 2, "maxRetries": 1, "maxCopies": 1}, [
        A("a", 2), G(0), F(0, "a", "crashed", 1), G(2), F(0, "a", "deadline", 3), F(1, "a", "corrupt", 4), G(5),
        F(1, "a", "cancelled", 6), G(7)])
    run("threw fails at once and cancels the other copies", 1, {"speculateAfter": 1, "speculateMinMs": 0, "maxCopies": 3}, [
        A("a", 1), A("b", 1), A("c", 1), G(0), F(0, "a", "busy", 1, ), G(2), F(0, "b", "threw", 3), C(0, "b", "h0", 4)])
    return out


def build(seed):
    rng = random.Random(seed)
    return {"about": f"Written by Tests/vectors/make_scheduler_vectors.py --seed {seed} from docs/jobs.md ('Scheduling'). "
                     "Times in milliseconds; cancel and lost lists sorted.",
            "sequences": fixed() + [scenario(rng, i) for i in range(90)]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--check", action="store_true", help="compare with the committed file instead of writing it")
    args = ap.parse_args()
    print(f"seed {args.seed}")
    text = json.dumps(build(args.seed), indent=None, separators=(",", ":")) + "\n"
    if args.check:
        if OUT.read_text() != text:
            raise SystemExit(f"{OUT} differs from what the model writes with seed {args.seed}")
        print("scheduler.json matches the model")
        return
    OUT.write_text(text)
    data = json.loads(text)
    print(f"wrote {OUT}: {len(data['sequences'])} sequences, {sum(len(s['steps']) for s in data['sequences'])} steps")


if __name__ == "__main__":
    main()
