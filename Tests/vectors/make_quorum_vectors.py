#!/usr/bin/env python3
"""Writes Tests/vectors/quorum.json: the rules of `verify: 'quorum'` (docs/jobs.md, "Verification by
quorum") computed by an independent Python model of that text. The browser (Public/process/quorum.js:
spotCheckDraw, decideQuorum, Reputation; scheduler.js: Scheduler in quorum mode; Tests/e2e/test_scheduler_vectors.py) and
the native engine (Sources/Jobs/Quorum.swift, Scheduler.swift; Tests/JobsTests/QuorumVectorTests.swift)
must both reproduce every value and every step.

    python3 Tests/vectors/make_quorum_vectors.py [--seed N] [--check]

Sections:
- `draws`: draw(seed, taskId) for seeds over the whole [0, 2^53) range, and its 53 bits (draw · 2^53).
- `decisions`: the digest a list of results agrees on (or null), for single and replicated tasks.
- `reputation`: sequences of agree / penalise with the peer's trusted / check / avoided after each step.
- `sequences`: the scheduler in quorum mode (ops as in scheduler.json, plus `addPeer` with a `check`,
  `setCheck`, `starved`, `failStarved`), with the outcome and the state after every step.

The rules modelled (docs/jobs.md, "Scheduling" and "Verification by quorum"; where the text is silent,
"silent:"):
- Credits, pauses, deadlines, failure codes and peer removal as in scheduler.json (make_scheduler_vectors.py).
- A copy goes only to a peer that holds no copy of the task and gave no result for it. Tasks that want
  copies go first, in the order they came to want them (a peer takes the first it may run), then new
  tasks in task order. A task with no result and no copy out, dispatched to a peer with check p, is
  single iff p <= 0, or 0 < p < 1 and draw >= p (then a spot check is counted when draw < p); it wants 1
  result if single, else 2. silent: tasks that come to want copies together (a peer removed, copies
  expiring at one `now`) do so in the order their copies are dropped (peers in order, tasks in task order).
- A task wants max(0, needed - results - copies out) more copies; a dispatch beyond `needed` dispatches of
  the task counts as `redispatched`. No speculative duplicates.
- A result from a peer the task was never sent to is `unexpected`; a second result of one peer for one
  task, or one for a failed task, is ignored. After acceptance a result is compared: equal, `agreed`;
  different, `dissented` (and `mismatches`); both count as `discarded`.
- Agreement: the most common digest (count c of n) is accepted iff (single and n = 1) or (c >= 2 and
  2c > n). Accepted on one result: `unchecked`; else every result is agreed or dissented (in arrival
  order). The other copies are cancelled (sorted). Not accepted and n >= needed: if n >= maxReplicas the
  task fails ('no-quorum', copies cancelled), else needed = n + 1.
- `discount(peer)` (the peer was penalised): its results are removed from the tasks not decided yet,
  and each of those (in task order) is judged again on the results left; one accepted now is reported
  with its digest, the peer of the latest remaining result with it (the winner, whose bytes are used) and
  the completion as above; the others want max(2, n + 1) results again (1 for a single task) with n left.
- `starved()`: tasks wanting a copy that no peer of the job may run, sorted; `failStarved(t)` fails one
  as 'no-quorum' (the copies still out are returned, sorted).
- Reputation: agreed counts up on agreement and to 0 on a penalty; trusted iff no penalty and agreed >=
  trustAfter; check = spotCheckRate if trusted else 1; avoided iff penalised at least once.
State after every step: remaining, pending (never-dispatched tasks plus tasks wanting copies), finished,
counts, verification {results, agreed, dissented, spotChecks, unchecked, noQuorum}.
"""
import argparse
import json
import pathlib
import random

OUT = pathlib.Path(__file__).resolve().parent / "quorum.json"
M64 = (1 << 64) - 1
COUNT_NAMES = ["dispatched", "redispatched", "speculative", "discarded", "mismatches", "late", "lost", "busy", "failed"]
VERIFY_NAMES = ["results", "agreed", "dissented", "spotChecks", "unchecked", "noQuorum"]
COUNTED = {"deadline", "crashed"}
DECLINED = {"busy", "stopped"}
RETRIED_COUNTED = {"lost", "corrupt", "cancelled"}
RETRIED = COUNTED | DECLINED | RETRIED_COUNTED | {"need-shared"}
CODES = sorted(RETRIED | {"threw"})


def draw(seed, t):
    return draw_bits(seed, t) / float(1 << 53)


def draw_bits(seed, t):
    """The 53 bits of a draw (draw = bits / 2^53), exact in JSON where a float might be parsed inexactly."""
    x = (seed + (t + 1) * 0x9E3779B97F4A7C15) & M64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & M64
    x ^= x >> 31
    return x >> 11


def decide(digests, single):
    n = len(digests)
    if single and n == 1:
        return digests[0]
    tally = {}
    for d in digests:
        tally[d] = tally.get(d, 0) + 1
    best = max(tally.items(), key=lambda kv: kv[1], default=(None, 0))
    if best[1] >= 2 and 2 * best[1] > n:
        return best[0]
    return None


class Model:
    def __init__(self, n, deadlineMs, maxAttempts, maxRetries, maxReplicas, seed):
        self.o = dict(deadlineMs=deadlineMs, maxAttempts=maxAttempts, maxRetries=maxRetries, maxCopies=2,
                      speculateAfter=1.5, speculateMinMs=1000)
        self.q = dict(maxReplicas=max(2, maxReplicas), seed=seed)
        self.n = n
        self.state = ["pending"] * n
        self.fresh = list(range(n))
        self.wanting = []                 # tasks wanting copies, in the order they came to want them
        self.out = [dict() for _ in range(n)]      # copies out: peer -> dispatch time
        self.res = [[] for _ in range(n)]          # (peer, digest) in arrival order
        self.sent = [set() for _ in range(n)]
        self.disp = [0] * n
        self.need = [0] * n
        self.single = [False] * n
        self.bad = [0] * n
        self.loss = [0] * n
        self.accepted = {}
        self.peers = {}
        self.counts = {k: 0 for k in COUNT_NAMES}
        self.ver = {k: 0 for k in VERIFY_NAMES}

    def wants(self, t):
        if self.state[t] not in ("pending", "running"):
            return 0
        return max(0, self.need[t] - len(self.res[t]) - len(self.out[t]))

    def may_run(self, t, p):
        return p not in self.out[t] and all(q != p for q, _ in self.res[t])

    def sync(self, t):
        if self.wants(t) > 0:
            if t not in self.wanting:
                self.wanting.append(t)
        elif t in self.wanting:
            self.wanting.remove(t)

    def holds(self, p):
        return sorted(t for t in range(self.n) if p in self.out[t])

    def snapshot(self):
        remaining = sum(s in ("pending", "running") for s in self.state)
        return {"remaining": remaining, "pending": len(self.fresh) + sum(1 for t in range(self.n) if self.wants(t) > 0),
                "finished": remaining == 0, "counts": dict(self.counts), "verification": dict(self.ver)}

    def _drop(self, t, p):
        self.out[t].pop(p, None)
        if self.state[t] == "running" and not self.out[t]:
            self.state[t] = "pending"
        self.sync(t)

    def _fail_task(self, t, code):
        for p in sorted(self.out[t]):
            self._drop(t, p)
        self.state[t] = "failed"
        self.counts["failed"] += 1
        self.sync(t)

    def add_peer(self, p, limit, check):
        if p in self.peers:
            self.peers[p].update(limit=max(1, limit), check=check)
        else:
            self.peers[p] = {"limit": max(1, limit), "paused": 0, "won": 0, "check": check}

    def set_check(self, p, check):
        if p in self.peers:
            self.peers[p]["check"] = check

    def remove_peer(self, p):
        if p not in self.peers:
            return []
        del self.peers[p]
        lost = self.holds(p)
        for t in lost:
            self.counts["lost"] += 1
            self._drop(t, p)
        return lost

    def assign(self, now):
        out = []
        for p, info in self.peers.items():
            if info["paused"] > now:
                continue
            while len(self.holds(p)) < info["limit"]:
                t = next((t for t in self.wanting if self.wants(t) > 0 and self.may_run(t, p)), None)
                if t is None:
                    while self.fresh:
                        c = self.fresh.pop(0)
                        if self.state[c] == "pending":
                            t = c
                            break
                if t is None:
                    break
                if not self.res[t] and not self.out[t]:
                    check = info["check"]
                    if check <= 0:
                        self.single[t] = True
                    elif check >= 1:
                        self.single[t] = False
                    else:
                        self.single[t] = draw(self.q["seed"], t) >= check
                        if not self.single[t]:
                            self.ver["spotChecks"] += 1
                    self.need[t] = 1 if self.single[t] else 2
                self.disp[t] += 1
                self.state[t] = "running"
                self.out[t][p] = now
                self.sent[t].add(p)
                self.counts["dispatched"] += 1
                if self.disp[t] > self.need[t]:
                    self.counts["redispatched"] += 1
                self.sync(t)
                out.append([t, p, self.disp[t], False])
        return out

    def complete(self, t, p, sha, now):
        r = {"winner": False, "mismatch": False, "unexpected": False, "cancel": [], "agreed": [], "dissented": [], "failed": False}
        if not (0 <= t < self.n) or p not in self.sent[t]:
            r["unexpected"] = True
            return r
        if self.state[t] == "failed" or any(q == p for q, _ in self.res[t]):
            return r
        if p in self.peers:
            self.peers[p]["paused"] = 0
        self.res[t].append((p, sha))
        self.ver["results"] += 1
        if self.state[t] == "done":
            self.counts["discarded"] += 1
            if self.accepted[t] == sha:
                r["agreed"] = [p]
                self.ver["agreed"] += 1
            else:
                self.counts["mismatches"] += 1
                r["mismatch"] = True
                r["dissented"] = [p]
                self.ver["dissented"] += 1
            return r
        self.out[t].pop(p, None)
        digests = [d for _, d in self.res[t]]
        h = decide(digests, self.single[t])
        if h is not None:
            return self._accept(t, h, p)
        if len(digests) >= self.need[t]:
            if len(digests) >= self.q["maxReplicas"]:
                r["cancel"] = sorted(self.out[t])
                r["failed"] = True
                self.ver["noQuorum"] += 1
                self._fail_task(t, "no-quorum")
                return r
            self.need[t] = len(digests) + 1
        if not self.out[t]:
            self.state[t] = "pending"
        self.sync(t)
        return r

    def _accept(self, t, h, winner):
        r = {"winner": True, "mismatch": False, "unexpected": False, "cancel": [], "agreed": [], "dissented": [], "failed": False}
        self.state[t] = "done"
        self.accepted[t] = h
        if winner in self.peers:
            self.peers[winner]["won"] += 1
        if len(self.res[t]) == 1:
            self.ver["unchecked"] += 1
        else:
            r["agreed"] = [q for q, d in self.res[t] if d == h]
            r["dissented"] = [q for q, d in self.res[t] if d != h]
            self.ver["agreed"] += len(r["agreed"])
            self.ver["dissented"] += len(r["dissented"])
        r["cancel"] = sorted(self.out[t])
        self.out[t] = {}
        self.sync(t)
        return r

    def discount(self, p):
        out = []
        for t in range(self.n):
            if self.state[t] not in ("pending", "running") or all(q != p for q, _ in self.res[t]):
                continue
            self.res[t] = [(q, d) for q, d in self.res[t] if q != p]
            h = decide([d for _, d in self.res[t]], self.single[t])
            if h is None:
                self.need[t] = max(1 if self.single[t] else 2, len(self.res[t]) + 1)
                self.sync(t)
                continue
            winner = [q for q, d in self.res[t] if d == h][-1]
            out.append({"task": t, "accepted": h, "winner": winner, "completion": self._accept(t, h, winner)})
        return out

    def fail(self, t, p, code, now, pause=500):
        if not (0 <= t < self.n) or p not in self.out[t]:
            return {"failed": False, "cancel": []}
        self._drop(t, p)
        if code in DECLINED:
            self.counts["busy"] += 1
            if p in self.peers:
                self.peers[p]["paused"] = now + pause
        if code == "deadline":
            self.counts["late"] += 1
        if code == "lost":
            self.counts["lost"] += 1
        if code in COUNTED:
            self.bad[t] += 1
        elif code in RETRIED_COUNTED:
            self.loss[t] += 1
        if code in RETRIED and self.bad[t] < self.o["maxAttempts"] and self.loss[t] <= self.o["maxRetries"]:
            return {"failed": False, "cancel": []}
        cancel = sorted(self.out[t])
        self._fail_task(t, code)
        return {"failed": True, "cancel": cancel}

    def expired(self, now):
        late = [(t, p) for p in self.peers for t in self.holds(p) if now - self.out[t][p] > self.o["deadlineMs"]]
        return [dict(task=t, peer=p, **self.fail(t, p, "deadline", now)) for t, p in late]

    def starved(self):
        return sorted(t for t in self.wanting if self.wants(t) > 0 and not any(self.may_run(t, p) for p in self.peers))

    def fail_starved(self, t):
        if self.state[t] not in ("pending", "running"):
            return []
        cancel = sorted(self.out[t])
        self.ver["noQuorum"] += 1
        self._fail_task(t, "no-quorum")
        return cancel

    def wins(self):
        return {p: v["won"] for p, v in self.peers.items()}


def run(name, n, opts, ops):
    m = Model(n, **opts)
    steps = []
    for op in ops:
        e = apply(m, op)
        s = dict(op)
        if e is not None:
            s["expect"] = e
        s["state"] = m.snapshot()
        steps.append(s)
    return {"name": name, "taskCount": n, "options": m.o, "quorum": m.q, "steps": steps, "wins": m.wins()}


def apply(m, op):
    k = op["op"]
    if k == "addPeer":
        m.add_peer(op["peer"], op["limit"], op["check"])
        return None
    if k == "setCheck":
        m.set_check(op["peer"], op["check"])
        return None
    if k == "assign":
        return m.assign(op["now"])
    if k == "complete":
        return m.complete(op["task"], op["peer"], op["sha256"], op["now"])
    if k == "fail":
        return m.fail(op["task"], op["peer"], op["code"], op["now"], op.get("pauseMs", 500))
    if k == "expired":
        return m.expired(op["now"])
    if k == "removePeer":
        return m.remove_peer(op["peer"])
    if k == "starved":
        return m.starved()
    if k == "failStarved":
        return m.fail_starved(op["task"])
    if k == "discount":
        return m.discount(op["peer"])
    raise ValueError(k)


A = lambda p, limit, check=1: {"op": "addPeer", "peer": p, "limit": limit, "check": check}
G = lambda now: {"op": "assign", "now": now}
C = lambda t, p, h, now: {"op": "complete", "task": t, "peer": p, "sha256": h, "now": now}
F = lambda t, p, code, now: {"op": "fail", "task": t, "peer": p, "code": code, "now": now}
OPTS = dict(deadlineMs=1000, maxAttempts=3, maxRetries=3, maxReplicas=5, seed=7)


def fixed():
    return [
        run("two agree: accepted, both agreed", 1, OPTS, [A("a", 1), A("b", 1), G(0), C(0, "a", "h", 10), C(0, "b", "h", 20)]),
        run("disagreement: a third copy decides, the odd one dissents", 1, OPTS,
            [A("a", 1), A("b", 1), A("c", 1), G(0), C(0, "a", "x", 10), C(0, "b", "h", 20), G(30), C(0, "c", "h", 40)]),
        run("three different digests need five results", 1, OPTS,
            [A("a", 1), A("b", 1), A("c", 1), A("d", 1), A("e", 1), G(0), C(0, "a", "x", 1), C(0, "b", "y", 2), G(3),
             C(0, "c", "h", 4), G(5), C(0, "d", "h", 6), G(7), C(0, "e", "h", 8)]),
        run("maxReplicas reached without a majority: no-quorum", 1, dict(OPTS, maxReplicas=3),
            [A("a", 1), A("b", 1), A("c", 1), G(0), C(0, "a", "x", 1), C(0, "b", "y", 2), G(3), C(0, "c", "h", 4)]),
        run("own workers (check 0): one result, unchecked", 2, OPTS, [A("me", 2, 0), G(0), C(1, "me", "h1", 1), C(0, "me", "h0", 2)]),
        run("trusted peer: spot checks by the seeded draw", 12, dict(OPTS, seed=3),
            [A("t", 20, 0.3), A("u", 20), G(0)] + [C(i, "t", f"h{i}", 1 + i) for i in range(12)] + [G(20)]
            + [C(i, "u", f"h{i}", 30 + i) for i in range(12)]),
        run("replicas never on the same peer; starved, then failed", 2, OPTS,
            [A("a", 2), G(0), {"op": "starved"}, C(0, "a", "h0", 1), G(2), {"op": "starved"}, A("b", 1), G(3),
             {"op": "starved"}, {"op": "failStarved", "task": 1}, C(0, "b", "h0", 4)]),
        run("a lost copy is dispatched again; a late result still counts", 1, OPTS,
            [A("a", 1), A("b", 1), A("c", 1), G(0), F(0, "a", "lost", 5), G(6), C(0, "a", "h", 7), C(0, "b", "h", 8), C(0, "c", "h", 9)]),
        run("a removed peer's copies come back in task order", 3, OPTS,
            [A("a", 3), A("b", 1), A("c", 1), G(0), {"op": "removePeer", "peer": "a"}, G(1), {"op": "expired", "now": 1500}, G(1600)]),
        run("a penalised peer's results stop counting: tasks judged again", 3, dict(OPTS, maxReplicas=7),
            [A("x", 3), A("y", 3), A("a", 3), A("b", 3), G(0), C(0, "x", "x0", 1), C(0, "y", "y0", 2), G(3), C(0, "a", "h0", 4), G(5),
             C(0, "b", "h0", 6), C(1, "x", "x1", 7), C(1, "y", "h1", 8), C(2, "x", "x2", 9), {"op": "removePeer", "peer": "x"}, {"op": "discount", "peer": "x"}, G(10),
             {"op": "removePeer", "peer": "y"}, {"op": "discount", "peer": "y"}, G(11)]),
        run("after acceptance a result is compared", 1, OPTS,
            [A("a", 1), A("b", 1), A("c", 1), G(0), C(0, "a", "x", 1), C(0, "b", "h", 2), G(3), F(0, "c", "lost", 4), G(5),
             C(0, "c", "h", 6), C(0, "a", "x", 7), {"op": "setCheck", "peer": "b", "check": 0.5}]),
    ]


def scenario(rng, index):
    n = rng.randint(1, 8)
    opts = dict(deadlineMs=rng.choice([300, 1000]), maxAttempts=rng.randint(1, 3), maxRetries=rng.randint(0, 3),
                maxReplicas=rng.choice([2, 3, 5]), seed=rng.randrange(1 << 53))
    m = Model(n, **opts)
    names = ["a", "b", "c", "d", "e", "f"]
    liars = {p for p in names if rng.random() < 0.3}
    steps = []
    added = 0
    now = 0

    def step(op):
        e = apply(m, op)
        s = dict(op)
        if e is not None:
            s["expect"] = e
        s["state"] = m.snapshot()
        steps.append(s)

    for _ in range(rng.randint(2, 4)):
        step(A(names[added], rng.randint(1, 3), rng.choice([1, 1, 0.5, 0.2, 0])))
        added += 1
    for _ in range(rng.randint(10, 45)):
        now += rng.choice([0, 10, 50, 100, 200])
        running = [(t, p) for t in range(n) for p in sorted(m.out[t])]
        r = rng.random()
        if r < 0.25 or (not running and r < 0.6):
            step(G(now))
        elif r < 0.55 and running:
            t, p = rng.choice(running)
            sha = f"x{t}{p}" if p in liars and rng.random() < 0.8 else (f"y{t}" if rng.random() < 0.05 else f"h{t}")
            step(C(t, p, sha, now))
        elif r < 0.6:
            t, p = rng.randrange(n), rng.choice(names[:added])
            step(C(t, p, f"h{t}" if rng.random() < 0.7 else f"x{t}{p}", now))
        elif r < 0.7 and running:
            t, p = rng.choice(running)
            step(F(t, p, rng.choice(CODES), now))
        elif r < 0.77:
            now += rng.choice([0, opts["deadlineMs"] + 1])
            step({"op": "expired", "now": now})
        elif r < 0.8 and m.peers:
            step({"op": "removePeer", "peer": rng.choice(sorted(m.peers))})
        elif r < 0.86 and added < len(names):
            step(A(names[added], rng.randint(1, 3), rng.choice([1, 0.5, 0])))
            added += 1
        elif r < 0.9 and m.peers:
            step({"op": "setCheck", "peer": rng.choice(sorted(m.peers)), "check": rng.choice([1, 0.1, 0.6])})
        elif r < 0.93 and liars:
            step({"op": "discount", "peer": rng.choice(sorted(liars))})
        elif r < 0.96:
            step({"op": "starved"})
            starving = m.starved()
            if starving and rng.random() < 0.7:
                step({"op": "failStarved", "task": rng.choice(starving)})
        else:
            step(G(now))
    return {"name": f"random {index}", "taskCount": n, "options": m.o, "quorum": m.q, "steps": steps, "wins": m.wins()}


def reputation(rng):
    out = []
    for i in range(12):
        trust_after, rate = rng.choice([0, 1, 3, 10]), rng.choice([0, 0.1, 0.5])
        rec = {"agreed": 0, "penalties": 0}
        steps = []
        for _ in range(rng.randint(3, 25)):
            op = "penalise" if rng.random() < 0.15 else "agree"
            if op == "agree":
                rec["agreed"] += 1
            else:
                rec["penalties"] += 1
                rec["agreed"] = 0
            trusted = rec["penalties"] == 0 and rec["agreed"] >= trust_after
            steps.append({"op": op, "agreed": rec["agreed"], "penalties": rec["penalties"], "trusted": trusted,
                          "check": rate if trusted else 1, "avoided": rec["penalties"] > 0})
        out.append({"trustAfter": trust_after, "spotCheckRate": rate, "steps": steps})
    return out


def build(seed):
    rng = random.Random(seed)
    seeds = [0, 1, 5, 7, (1 << 53) - 1, 1 << 52] + [rng.randrange(1 << 53) for _ in range(6)]
    draws = [{"seed": s, "task": t, "bits": draw_bits(s, t), "draw": draw(s, t)} for s in seeds for t in (0, 1, 2, 99, 12345)]
    digests = [["h"], ["h", "h"], ["h", "x"], ["x", "h", "h"], ["x", "y", "h"], ["x", "y", "h", "h"], ["x", "y", "h", "h", "h"],
               ["h", "h", "x", "x"], ["h", "x", "x"], [], ["x", "h", "y", "h", "x"]]
    decisions = [{"digests": d, "single": s, "accepted": decide(d, s)} for d in digests for s in (False, True)]
    return {"about": f"Written by Tests/vectors/make_quorum_vectors.py --seed {seed} from docs/jobs.md ('Verification by quorum'). "
                     "Times in milliseconds; cancel, lost and starved lists sorted.",
            "draws": draws, "decisions": decisions, "reputation": reputation(rng),
            "sequences": fixed() + [scenario(rng, i) for i in range(50)]}


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
        print("quorum.json matches the model")
        return
    OUT.write_text(text)
    data = json.loads(text)
    print(f"wrote {OUT}: {len(data['draws'])} draws, {len(data['decisions'])} decisions, {len(data['sequences'])} sequences, "
          f"{sum(len(s['steps']) for s in data['sequences'])} steps")


if __name__ == "__main__":
    main()
