#!/usr/bin/env python3
"""Writes Tests/vectors/non-routing.json: neighbour-of-neighbour routing decisions and whole paths that every
router (Public/explorer/non-routing.js, Swift's routeNoN in the Ring target used by the native peers and the
simulator) must reproduce. The expected answers come from this independent Python model of the rule in
docs/protocol.md ("Neighbour-of-neighbour routing"; Manku, Naor, Wieder, STOC 2004), with its own ring:
sorted members, Chord fingers successor(n + 2^i), r successors, predecessors.

Run: python3 Tests/vectors/make_non_vectors.py (seeded: the same file every time; the seed is printed)."""
import bisect
import json
import pathlib
import random

BITS = 48
SPACE = 1 << BITS
SEED = 15
MAX_LIST = 64


def dist(a, b):
    """Clockwise distance from a to b."""
    return (b - a) % SPACE


def between_open(x, lo, hi):
    """x in (lo, hi) on the circle; the circle minus lo when lo == hi."""
    d = dist(lo, x)
    return d != 0 and (lo == hi or d < dist(lo, hi))


def between_open_closed(x, lo, hi):
    """x in (lo, hi]; the whole circle when lo == hi."""
    return lo == hi or 0 < dist(lo, x) <= dist(lo, hi)


def hx(n):
    return format(n, "012x")


class Ring:
    """Members on the 48-bit circle with Chord's tables (rows: the finger rows in force)."""

    def __init__(self, members, rows, r=3):
        self.m = sorted(set(members))
        self.rows = rows
        self.r = r

    def succ(self, point):
        i = bisect.bisect_left(self.m, point % SPACE)
        return self.m[i % len(self.m)]

    def pred(self, n):
        i = bisect.bisect_left(self.m, n)
        return self.m[i - 1]

    def successors(self, n):
        i = self.m.index(n)
        k = min(self.r, len(self.m) - 1)
        return [self.m[(i + j) % len(self.m)] for j in range(1, k + 1)]

    def finger_rows(self, n):
        """Row -> successor(n + 2^row), None when that is n itself."""
        out = {}
        for row in self.rows:
            f = self.succ(n + (1 << row))
            out[row] = None if f == n else f
        return out

    def fingers(self, n):
        return [f for f in self.finger_rows(n).values() if f is not None]

    def candidates(self, n):
        """The links a peer routes over: fingers and successors."""
        return sorted(set(self.fingers(n)) | set(self.successors(n)))

    def neighbour_list(self, n):
        """What a peer tells its links: fingers, successors and predecessor, nearest first, at most 64."""
        s = set(self.fingers(n)) | set(self.successors(n))
        if len(self.m) > 1:
            s.add(self.pred(n))
        s.discard(n)
        return sorted(s, key=lambda w: dist(n, w))[:MAX_LIST]


def auto_rows(count):
    top = 0
    while (1 << top) < max(count, 1):
        top += 1
    top = min(BITS - 1, top + 2)
    return [0] + list(range(BITS - top, BITS))


def non_route(me, dst, predecessor, successors, fingers, candidates, lists):
    """The rule of docs/protocol.md, written from the text. fingers: row -> peer or None."""
    if predecessor is None:
        if not successors:
            return {"deliver": True}
    elif between_open_closed(dst, predecessor, me):
        return {"deliver": True}
    live = [s for s in successors if s in candidates]
    if live and live[0] == successors[0] and between_open_closed(dst, me, successors[0]):
        return {"next": successors[0]}
    # 2b: successor j holds (successor j-1, successor j] (the list is consecutive, successor 0 is me);
    # row i's finger is successor(me + 2^i): it holds every key from its start to itself.
    before = me
    for s in successors:
        if s in candidates and between_open_closed(dst, before, s):
            return {"next": s}
        before = s
    for row in sorted(fingers):
        f = fingers[row]
        if f is None or f == me or f not in candidates:
            continue
        start = (me + (1 << row)) % SPACE
        if dist(start, dst) <= dist(start, f):
            return {"next": f}
    span = dist(me, dst)
    ranked = []
    for v in candidates:
        if not between_open(v, me, dst):
            continue
        reach = [dist(me, v)]
        for w in lists.get(v, [])[:MAX_LIST]:
            if dist(me, v) < dist(me, w) < span:
                reach.append(dist(me, w))
        ranked.append((max(reach), dist(me, v), v))
    if ranked:
        return {"next": max(ranked)[2]}
    if live:
        return {"next": live[0]}
    return {"error": "no-route"}


def walk(ring, lists, source, key):
    """A whole lookup with every link up and every list current: the peers visited, source first."""
    path = [source]
    at = source
    for _ in range(len(ring.m) + 2):
        d = non_route(at, key, ring.pred(at) if len(ring.m) > 1 else None, ring.successors(at), ring.finger_rows(at),
                      set(ring.candidates(at)), lists)
        if "next" not in d:
            break
        at = d["next"]
        path.append(at)
    assert at == ring.succ(key), (hx(source), hx(key))
    return path


def even_ids(rng, count):
    """Least-occupied-like: halve the largest arc each time, starting anywhere."""
    ids = [rng.randrange(SPACE)]
    while len(ids) < count:
        s = sorted(ids)
        arcs = [(dist(s[i], s[(i + 1) % len(s)]) or SPACE, s[i]) for i in range(len(s))]
        length, start = max(arcs)
        ids.append((start + length // 2) % SPACE)
    return ids


def make_rings(rng):
    rings = []
    rings.append(("even-64", Ring(even_ids(rng, 64), auto_rows(64))))
    rings.append(("random-40", Ring([rng.randrange(SPACE) for _ in range(40)], auto_rows(40))))
    base = rng.randrange(SPACE)
    clustered = [(base + rng.randrange(1 << 20)) % SPACE for _ in range(20)] + [rng.randrange(SPACE) for _ in range(12)]
    rings.append(("clustered-32", Ring(clustered, sorted(set(auto_rows(32)) | {8, 12, 16, 20}))))
    rings.append(("even-12", Ring(even_ids(rng, 12), auto_rows(12))))
    return rings


def decisions(rng, name, ring, count):
    """Single decisions, with some links down, some lists missing, stale or false."""
    out = []
    full = {n: ring.neighbour_list(n) for n in ring.m}
    for k in range(count):
        me = rng.choice(ring.m)
        cands = ring.candidates(me)
        kind = ["full", "full", "missing", "stale", "liar", "down", "exact", "stale-finger"][k % 8]
        if kind == "exact":
            dst = rng.choice(ring.m)
        else:
            dst = rng.randrange(SPACE)
        if kind == "down" and len(cands) > 1:
            cands = rng.sample(cands, rng.randrange(1, len(cands)))
        lists = {v: list(full[v]) for v in cands}
        if kind == "missing":
            for v in rng.sample(cands, max(1, len(cands) // 2)):
                del lists[v]
        if kind == "stale":
            for v in cands:
                lists[v] = lists[v][:-2] + [rng.randrange(SPACE) for _ in range(2)]
        if kind == "liar" and cands:
            liar = rng.choice(cands)
            lists[liar] = [(dst - 1 - rng.randrange(4)) % SPACE, (me + 1) % SPACE]
        succs = ring.successors(me)
        pred = ring.pred(me) if len(ring.m) > 1 else None
        rows = ring.finger_rows(me)
        if kind == "stale-finger":
            # The server's update is late: a finger row still names an older peer (the rule trusts it).
            row = rng.choice(sorted(rows))
            rows[row] = rng.choice(ring.m)
        expect = non_route(me, dst, pred, succs, rows, set(cands), lists)
        out.append({
            "ring": name, "kind": kind, "self": hx(me), "dst": hx(dst),
            "predecessor": None if pred is None else hx(pred),
            "successors": [hx(s) for s in succs],
            "fingers": {str(r): (None if f is None else hx(f)) for r, f in sorted(rows.items())},
            "candidates": [hx(c) for c in sorted(cands)],
            "neighbours": {hx(v): [hx(w) for w in ws] for v, ws in sorted(lists.items())},
            "expect": {k2: (hx(v2) if k2 == "next" else v2) for k2, v2 in expect.items()},
        })
    return out


def special_decisions():
    """Hand-written cases of the rule's edges (tie-break, alone, no route, the successor first)."""
    a, b, c, d = 0x100, 0x200, 0x300, 0x1000
    v = []
    # Alone: deliver.
    v.append({"kind": "alone", "self": hx(a), "dst": hx(d), "predecessor": None, "successors": [], "candidates": [], "neighbours": {},
              "expect": {"deliver": True}})
    # Two candidates reach the same neighbour: the one farther from self wins.
    v.append({"kind": "tie", "self": hx(a), "dst": hx(d), "predecessor": hx(0x0f0), "successors": [hx(0x110)],
              "candidates": [hx(0x110), hx(b), hx(c)], "neighbours": {hx(b): [hx(0x800)], hx(c): [hx(0x800)]},
              "expect": {"next": hx(c)}})
    # A nearer candidate whose neighbour is closer to dst than every candidate wins.
    v.append({"kind": "two-hop", "self": hx(a), "dst": hx(d), "predecessor": hx(0x0f0), "successors": [hx(0x110)],
              "candidates": [hx(0x110), hx(b), hx(c)], "neighbours": {hx(b): [hx(0xf00)], hx(c): [hx(0x800)]},
              "expect": {"next": hx(b)}})
    # A neighbour exactly at dst does not count (only (v, dst) does): greedy's choice.
    v.append({"kind": "at-dst", "self": hx(a), "dst": hx(d), "predecessor": hx(0x0f0), "successors": [hx(0x110)],
              "candidates": [hx(0x110), hx(b), hx(c)], "neighbours": {hx(b): [hx(d), hx(0x1001)]},
              "expect": {"next": hx(c)}})
    # dst in (self, successor]: the successor, whatever the lists say.
    v.append({"kind": "successor", "self": hx(a), "dst": hx(0x105), "predecessor": hx(0x0f0), "successors": [hx(0x110)],
              "candidates": [hx(0x110), hx(b)], "neighbours": {hx(b): [hx(0x104)]}, "expect": {"next": hx(0x110)}})
    # No candidate link up: no route.
    v.append({"kind": "no-route", "self": hx(a), "dst": hx(d), "predecessor": hx(0x0f0), "successors": [hx(0x110)],
              "candidates": [], "neighbours": {}, "expect": {"error": "no-route"}})
    # The first successor is down and no candidate precedes dst: the first live successor.
    v.append({"kind": "around", "self": hx(a), "dst": hx(0x105), "predecessor": hx(0x0f0), "successors": [hx(0x110), hx(0x120)],
              "candidates": [hx(0x120)], "neighbours": {hx(0x120): [hx(0x104)]}, "expect": {"next": hx(0x120)}})
    # 2b: row 12's start is 0x1100 and its finger 0x1300 holds dst 0x1200: straight there, past dst.
    v.append({"kind": "finger-holds", "self": hx(a), "dst": hx(0x1200), "predecessor": hx(0x0f0), "successors": [hx(0x110)],
              "fingers": {"0": hx(0x110), "8": hx(0x300), "12": hx(0x1300)},
              "candidates": [hx(0x110), hx(0x300), hx(0x1300)], "neighbours": {hx(0x300): [hx(0x11ff)]}, "expect": {"next": hx(0x1300)}})
    # 2b needs the finger's link: with it down, NoN's step 3.
    v.append({"kind": "finger-down", "self": hx(a), "dst": hx(0x1200), "predecessor": hx(0x0f0), "successors": [hx(0x110)],
              "fingers": {"0": hx(0x110), "8": hx(0x300), "12": hx(0x1300)},
              "candidates": [hx(0x110), hx(0x300)], "neighbours": {hx(0x300): [hx(0x11ff)]}, "expect": {"next": hx(0x300)}})
    # The third successor holds dst (after the second): straight there.
    v.append({"kind": "successor-holds", "self": hx(a), "dst": hx(0x125), "predecessor": hx(0x0f0),
              "successors": [hx(0x110), hx(0x120), hx(0x130)], "fingers": {"0": hx(0x110)},
              "candidates": [hx(0x110), hx(0x120), hx(0x130)], "neighbours": {hx(0x120): [hx(0x124)]}, "expect": {"next": hx(0x130)}})
    # A row pointing back at self (null) is skipped.
    v.append({"kind": "finger-null", "self": hx(a), "dst": hx(0x1200), "predecessor": hx(0x0f0), "successors": [hx(0x110)],
              "fingers": {"0": hx(0x110), "3": None}, "candidates": [hx(0x110), hx(0x300)], "neighbours": {}, "expect": {"next": hx(0x300)}})
    for x in v:
        x["ring"] = "hand-written"
        x.setdefault("fingers", {})
        got = non_route(int(x["self"], 16), int(x["dst"], 16), None if x["predecessor"] is None else int(x["predecessor"], 16),
                        [int(s, 16) for s in x["successors"]], {int(r): (None if f is None else int(f, 16)) for r, f in x["fingers"].items()},
                        {int(c, 16) for c in x["candidates"]},
                        {int(k, 16): [int(w, 16) for w in ws] for k, ws in x["neighbours"].items()})
        assert {k: (hx(val) if k == "next" else val) for k, val in got.items()} == x["expect"], x
    return v


def main():
    print(f"seed {SEED}")
    rng = random.Random(SEED)
    rings = make_rings(rng)
    vectors = special_decisions()
    paths = []
    tables = {}
    for name, ring in rings:
        vectors += decisions(rng, name, ring, 42)
        lists = {n: ring.neighbour_list(n) for n in ring.m}
        tables[name] = {hx(n): {"predecessor": hx(ring.pred(n)), "successors": [hx(s) for s in ring.successors(n)],
                                "fingers": {str(r): (None if f is None else hx(f)) for r, f in ring.finger_rows(n).items()},
                                "candidates": [hx(c) for c in ring.candidates(n)], "neighbours": [hx(w) for w in lists[n]]}
                        for n in ring.m}
        for _ in range(40):
            source = rng.choice(ring.m)
            key = rng.choice(ring.m) if rng.random() < 0.25 else rng.randrange(SPACE)
            paths.append({"ring": name, "source": hx(source), "dst": hx(key), "path": [hx(p) for p in walk(ring, lists, source, key)]})
    out = {
        "about": "Neighbour-of-neighbour routing decisions and paths every router must reproduce "
                 "(generated by make_non_vectors.py, seed %d; docs/protocol.md, \"Neighbour-of-neighbour routing\"). "
                 "`rings`: each peer's predecessor, successors, candidates (its links) and neighbour list; "
                 "`paths`: lookups with every link up and every list current, the peers visited, source first." % SEED,
        "vectors": vectors,
        "rings": tables,
        "paths": paths,
    }
    path = pathlib.Path(__file__).resolve().parent / "non-routing.json"
    # One vector, ring table or path per line: small diffs, a file a person can read.
    def block(items):
        return ",\n".join("  " + json.dumps(x, separators=(",", ":")) for x in items)
    text = ("{\n \"about\": " + json.dumps(out["about"]) + ",\n \"vectors\": [\n" + block(out["vectors"]) + "\n ],\n \"rings\": {\n"
            + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in out["rings"].items())
            + "\n },\n \"paths\": [\n" + block(out["paths"]) + "\n ]\n}\n")
    assert json.loads(text) == out
    path.write_text(text)
    print(f"{len(vectors)} decisions, {len(paths)} paths -> {path}")


if __name__ == "__main__":
    main()
