#!/usr/bin/env python3
"""Rendezvous server benchmarks (make bench). Everything runs on loopback, in one run, on this machine:

1. Idle registered peers at several N: resident memory per peer, this server next to a minimal Node `ws`
   relay (bench/relays.py, bench/node-relay.js).
2. Join latency (register -> registered) at 10,000 peers and at the most one process holds here, joins one
   at a time, this server next to the Node relay.
3. Signal messages per second of server CPU: this server, the Node relay, a minimal Python `websockets`
   relay (bench/python-relay.py) and a bare libwebsockets echo server, driven by the same native load
   generator, in alternating rounds; ratios.
4. The pure ring: cost of a join plus a leave.
5. Ray-tracing jobs on 2 native worker peers versus one core: speedup, efficiency, overhead per task.
6. Join latency while anonymous clients hammer the analytics.
7. Decoding client frames: the one JSON path versus the old scanner + JSONDecoder path (bc-jsonbench).
9. Signed overlay messages: signing and verifying one message in Swift (bc-signbench).
10. Cluster mode: 1, 2 and 3 instances on one redis-server next to one process (join latency, relay per
    server CPU second, Redis calls per join and per signal, idle peers 3 instances hold; bench/cluster.py).
11. WebAssembly tasks: the standard scene on one core natively, in WasmKit (fuel metering off and on) and in
    Chromium (Wasm and JavaScript); Wasm ray-trace jobs on native and mixed rings (bench/wasm.py).
12. The thesis's evaluation in browsers: 8 Chromium pages next to 8 native peers, 25, 400 and 2,500 tiles
    (bench/browserjobs.py). Sections 11 and 12 need root and Chromium (bench/browsers.py).

Writes a Markdown report (default docs/benchmarks.md) and prints it; sections 1-3 also draw their plots
into docs/img/ (bench/plots.py, matplotlib: run with .build/bench-venv/bin/python, as `make bench` does)."""
import argparse
import datetime
import os
import pathlib
import platform
import statistics
import subprocess
import json
import time
import urllib.request

from analytics import analytics_report, bench_analytics
from browserjobs import bench_browsers, browsers_report
from cluster import bench_cluster, cluster_report
from common import ROOT, RELEASE, start_server, stop, loadgen, cpu_model
from joincost import bench_joincost, joincost_report
from jsonbench import bench_json, json_report
import plots
from relays import bench_joins, bench_relays, joins_report, relay_report
from signbench import bench_sign, sign_report
from wasm import bench_wasm, wasm_report


def bench_ring():
    r = loadgen(["ring", "--sizes", "1000,10000,100000"])
    return [json.loads(line) for line in r.stdout.strip().splitlines()]


def bench_jobs(tmp, rounds, tile_counts=(25, 400, 2500)):
    """The standard scene rendered by `render` on one core, then submitted across 2 native worker peers
    (one worker thread each) with 25, 400 and 2500 tiles, in alternating rounds."""
    exe = str(RELEASE / "browsercloud")
    scenes = str(ROOT / "Public" / "scenes")
    reference = tmp / "standard-render.png"
    singles = []
    for _ in range(2):
        r = subprocess.run([exe, "render", "--scene", "standard", "--scenes", scenes, "--out", str(reference)],
                           capture_output=True, text=True, timeout=900, check=True)
        singles.append(float(r.stdout.rsplit(" in ", 1)[1].split()[0]))
    server, port = start_server(tmp, [])
    peers = [subprocess.Popen([exe, "peer", "--server", f"ws://127.0.0.1:{port}", "--workers", "1", "--log-level", "error"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    # Until both worker peers are in the ring (at most 60 s).
    deadline = time.monotonic() + 60
    while json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stats", timeout=10))["peersOnline"] < 2:
        if time.monotonic() > deadline:
            raise RuntimeError("the 2 worker peers did not join within 60 s")
        time.sleep(0.05)
    makespans = {t: [] for t in tile_counts}
    try:
        for _ in range(rounds):
            for tiles in tile_counts:
                out = tmp / f"standard-{tiles}.png"
                r = subprocess.run([exe, "submit", "raytrace", "--server", f"ws://127.0.0.1:{port}", "--scene", "standard",
                                    "--scenes", scenes, "--tiles", str(tiles), "--peers", "2", "--out", str(out),
                                    "--discovery-wait", "30"],   # ends when both answered; long only when loaded
                                   capture_output=True, text=True, timeout=900)
                if r.returncode != 0:
                    raise RuntimeError(f"submit failed: {r.stderr}")
                if out.read_bytes() != reference.read_bytes():
                    raise RuntimeError(f"the {tiles}-tile image differs from render's")
                makespans[tiles].append(float(r.stdout.split("makespan ", 1)[1].split()[0]))
    finally:
        for p in peers:
            stop(p)
        stop(server)
    one_core = statistics.median(singles)
    rows = []
    for tiles in tile_counts:
        m = statistics.median(makespans[tiles])
        speedup = one_core / m
        rows.append({"tiles": tiles, "makespan": m, "all": makespans[tiles], "speedup": speedup, "efficiency": speedup / 2,
                     "overheadMs": (2 * m - one_core) / tiles * 1000})
    first, last = tile_counts[0], tile_counts[-1]
    ratios = [b / a for a, b in zip(makespans[first], makespans[last])]
    return {"oneCore": one_core, "singles": singles, "rows": rows, "rounds": rounds,
            "ratio": statistics.median(ratios), "ratios": ratios}


def jobs_report(jobs):
    jobs_rows = "\n".join(f"| {r['tiles']:,} | {r['makespan']:.2f} s | {', '.join(f'{x:.2f}' for x in r['all'])} | {r['speedup']:.2f}× | {r['efficiency']:.2f} | {r['overheadMs']:.2f} ms |" for r in jobs["rows"])
    jobs_first, jobs_last = jobs["rows"][0]["tiles"], jobs["rows"][-1]["tiles"]
    measured = datetime.date.today().isoformat()
    return f"""## 5. Ray-tracing jobs on native peers: speedup and scheduling overhead

The standard scene (1280×720, 3×3 samples per pixel, 37 objects) rendered by `browsercloud render` in
one process on one core: **{jobs['oneCore']:.2f} s** (median of {", ".join(f"{x:.2f}" for x in jobs['singles'])} s).
Then the same scene submitted with `browsercloud submit raytrace --peers 2` to a ring of 2 native
worker peers (`browsercloud peer --workers 1`, one worker thread each) plus the submitting peer
(no workers), with the server, all on this 2-core machine (measured {measured}); {jobs['rounds']} rounds, the tilings alternating
within each round; every image is checked byte for byte against the one-core render.

| tiles | makespan (median) | rounds | speedup vs one core | parallel efficiency | scheduling overhead per task |
|---:|---:|---|---:|---:|---:|
{jobs_rows}

Speedup = one-core time / makespan; parallel efficiency = speedup / 2 workers (target ≥ 0.85);
overhead per task = (2 × makespan − one-core time) / tiles: the worker time each task costs beyond
rendering (messages, JSON, base64, SHA-256, scheduling, idle gaps), on the same 2 cores.
**Makespan with {jobs_last} tiles / with {jobs_first} tiles: {jobs['ratio']:.3f}** (median of per-round ratios
{", ".join(f"{x:.3f}" for x in jobs['ratios'])}; target ≤ 1.05). The thesis found its 2500-tile job slower than
25 tiles because of messaging overhead; here each task carries only its tile, since the scene goes
to each peer once (docs/jobs.md, "shared").

"""


def run_cluster(tmp, a):
    return bench_cluster(tmp, peers=a.cluster_peers, samples=a.cluster_samples, pairs=a.cluster_pairs, window=a.window,
                         payload=a.payload, seconds=a.cluster_seconds, rounds=a.cluster_rounds, held_per_instance=a.cluster_held)


def run_wasm(tmp, a):
    return bench_wasm(tmp, rounds=a.wasm_rounds, ring_rounds=a.wasm_ring_rounds, ring_tiles=a.wasm_ring_tiles, scene=a.bench_scene)


def run_browsers(tmp, a):
    return bench_browsers(tmp, rounds=a.browser_rounds, peers=a.browser_peers, scene=a.bench_scene)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--peers", type=int, default=10000, help="section 6: idle peers held")
    ap.add_argument("--samples", type=int, default=1000, help="sections 2 and 6: joins timed one at a time")
    ap.add_argument("--join-sizes", default="2000,5000,10000,19500", help="section 1: comma list of N (idle peers "
                    "held; every process is capped at 20,000 open files)")
    ap.add_argument("--latency-at", default="10000,19500", help="section 2: the N of --join-sizes where joins are timed")
    ap.add_argument("--pairs", type=int, default=50, help="section 3: connection pairs")
    ap.add_argument("--window", type=int, default=16, help="sections 3 and 10: messages in flight per connection")
    ap.add_argument("--payload", type=int, default=200, help="sections 3 and 10: bytes of SDP payload")
    ap.add_argument("--seconds", type=float, default=5, help="section 3: seconds measured per server and round")
    ap.add_argument("--rounds", type=int, default=3, help="section 3: rounds over the 4 servers")
    ap.add_argument("--job-rounds", type=int, default=5)
    ap.add_argument("--only-jobs", action="store_true", help="run section 5 only and replace it in the existing report")
    ap.add_argument("--analytics-clients", type=int, default=8)
    ap.add_argument("--analytics-rounds", type=int, default=3)
    ap.add_argument("--only-analytics", action="store_true", help="run section 6 only and print it")
    ap.add_argument("--server", help="browsercloud binary for --only-analytics (default: the release build)")
    ap.add_argument("--json-iterations", type=int, default=20000)
    ap.add_argument("--json-rounds", type=int, default=5)
    ap.add_argument("--json-fuzz", type=int, default=200000)
    ap.add_argument("--json-callgrind-iterations", type=int, default=2000)
    ap.add_argument("--sign-rounds", type=int, default=7)
    ap.add_argument("--cluster-peers", type=int, default=3000, help="section 10: idle peers held while join latency is sampled")
    ap.add_argument("--cluster-samples", type=int, default=300, help="section 10: joins timed one at a time")
    ap.add_argument("--cluster-pairs", type=int, default=20, help="section 10: signal pairs of the relay runs")
    ap.add_argument("--cluster-seconds", type=float, default=3, help="section 10: seconds per relay run")
    ap.add_argument("--cluster-rounds", type=int, default=2, help="section 10: rounds over the 4 configurations")
    ap.add_argument("--cluster-held", type=int, default=19000, help="section 10: idle peers held per instance with 3 "
                    "instances (each process is capped at 20,000 open files)")
    ap.add_argument("--no-cluster", action="store_true", help="skip section 10 (cluster mode; also skipped without redis-server)")
    ap.add_argument("--wasm-rounds", type=int, default=3, help="section 11: rounds of the one-core runs")
    ap.add_argument("--wasm-ring-rounds", type=int, default=2, help="section 11: rounds of the ring jobs")
    ap.add_argument("--wasm-ring-tiles", type=int, default=100, help="section 11: tiles of the ring jobs")
    ap.add_argument("--browser-rounds", type=int, default=2, help="section 12: rounds over the 3 tilings")
    ap.add_argument("--browser-peers", type=int, default=8, help="section 12: Chromium pages, and native peers")
    ap.add_argument("--bench-scene", default="standard", help="sections 11 and 12: the shipped scene rendered (Public/scenes)")
    ap.add_argument("--no-browsers", action="store_true", help="skip sections 11 and 12 (they need root and Chromium)")
    ap.add_argument("--only", choices=["relays", "joins", "relay", "json", "joincost", "sign", "cluster", "wasm", "browsers"],
                    help="run only this section (relays: sections 1-3; joins: 1 and 2; relay: 3) and put it into --out (replacing "
                    "the section if --out has it, else before the closing line, else as the whole file)")
    ap.add_argument("--baseline", metavar="DIR", help="section 8: also measure the release build in DIR (another "
                    "commit's browsercloud and bc-loadgen), side by side")
    a = ap.parse_args()
    tmp = ROOT / ".build" / "bench-tmp"
    tmp.mkdir(parents=True, exist_ok=True)

    releases = {"this build": RELEASE, **({"baseline": pathlib.Path(a.baseline)} if a.baseline else {})}
    sizes = [int(x) for x in a.join_sizes.split(",")]
    latency_at = [int(x) for x in a.latency_at.split(",")]
    run_joins = lambda: bench_joins(tmp, sizes, latency_at, a.samples)
    run_relays = lambda: bench_relays(tmp, a.pairs, a.window, a.payload, a.seconds, a.rounds)
    last_heading = None   # a section of several headings (joins: 1 and 2) ends after its last one
    if a.only:
        if a.only == "relays":
            joins, relay = run_joins(), run_relays()
            plots.join_latency_cdf(joins)
            plots.memory_per_peer(joins)
            plots.relay_per_cpu(relay)
            section = joins_report(joins, alone="relays") + relay_report(relay, alone="relays")
            heading, last_heading = "## 1. ", "## 3. "
        elif a.only == "joins":
            joins = run_joins()
            plots.join_latency_cdf(joins)
            plots.memory_per_peer(joins)
            section, heading, last_heading = joins_report(joins, alone=True), "## 1. ", "## 2. "
        elif a.only == "relay":
            relay = run_relays()
            plots.relay_per_cpu(relay)
            section, heading = relay_report(relay, alone=True), "## 3. "
        elif a.only == "json":
            section, heading = json_report(bench_json(a.json_iterations, a.json_rounds, a.json_fuzz, a.json_callgrind_iterations), alone=True), "## 7. "
        elif a.only == "sign":
            section, heading = sign_report(bench_sign(a.sign_rounds), alone=True), "## 9. "
        elif a.only == "cluster":
            section, heading = cluster_report(run_cluster(tmp, a)), "## 10. "
        elif a.only == "wasm":
            section, heading = wasm_report(run_wasm(tmp, a)), "## 11. "
        elif a.only == "browsers":
            section, heading = browsers_report(run_browsers(tmp, a)), "## 12. "
        else:
            section, heading = joincost_report(bench_joincost(releases=releases)), "## 8. "
        out = pathlib.Path(a.out)
        old = out.read_text() if out.exists() else ""
        if heading in old:
            start = old.index(heading)
            # The section ends where the next one (or the closing line) starts.
            after = old.index(last_heading, start) if last_heading and last_heading in old[start:] else start
            ends = [i for i in (old.find("\n## ", after) + 1, old.find("Reproduce: `make bench`", start)) if i > 0]
            end = min(ends, default=len(old))
            out.write_text(old[:start] + section + old[end:])
        elif "Reproduce: `make bench`" in old:
            end = old.index("Reproduce: `make bench`")
            out.write_text(old[:end] + section + old[end:])
        else:
            out.write_text(section)
        print(section)
        return
    if a.only_analytics:
        print(analytics_report(bench_analytics(tmp, a.peers, a.samples, a.analytics_clients, a.analytics_rounds, a.server)))
        return
    jobs = bench_jobs(tmp, a.job_rounds)
    if not a.only_jobs:
        ring = bench_ring()
        joins = run_joins()
        relay = run_relays()
        plots.join_latency_cdf(joins)
        plots.memory_per_peer(joins)
        plots.relay_per_cpu(relay)
        analytics = bench_analytics(tmp, a.peers, a.samples, a.analytics_clients, a.analytics_rounds)
        json_section = json_report(bench_json(a.json_iterations, a.json_rounds, a.json_fuzz, a.json_callgrind_iterations))
        joincost_section = joincost_report(bench_joincost(releases=releases))
        sign_section = sign_report(bench_sign(a.sign_rounds))
        cluster_section = "" if a.no_cluster else cluster_report(run_cluster(tmp, a))
        wasm_section = "" if a.no_browsers else wasm_report(run_wasm(tmp, a))
        browsers_section = "" if a.no_browsers else browsers_report(run_browsers(tmp, a))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    jobs_section = jobs_report(jobs)
    if a.only_jobs:
        old = pathlib.Path(a.out).read_text()
        start = old.index("## 5. ")
        end = old.index("## 6. ") if "## 6. " in old else old.index("Reproduce: `make bench`")
        pathlib.Path(a.out).write_text(old[:start] + jobs_section + old[end:])
        print(jobs_section)
        return
    ring_rows = "\n".join(f"| {r['peers']:,} | {r['fingerRows']} | {r['updatesPerJoinAndLeave']:.1f} | {r['nsPerJoinAndLeave'] / 1000:.1f} µs |" for r in ring)
    report = f"""# Benchmarks

Measured by `make bench` (`bench/run.py`) in one run on {datetime.date.today().isoformat()}, commit `{commit}`,
on {os.cpu_count()} × {cpu_model()}, Linux {platform.release()}. Release builds; the server, the load
generator and the echo server share the machine's cores over loopback. The load generator
(`bc-loadgen`) is native: it runs on the same libwebsockets transport as the server.

{joins_report(joins)}{relay_report(relay)}## 4. Ring meta-state: cost of one join plus one leave

The pure `Ring` target alone (no sockets): least-occupied ID allocation, insertion, removal of a random
peer, and the per-peer change sets, auto finger rows, r = 3.

| peers | finger rows | updates pushed per join + leave | time per join + leave |
|---:|---:|---:|---:|
{ring_rows}

The work grows with F log N plus the updates, not with N: a join or leave touches only the peers whose
state changes. The one O(N) step is the memmove of the sorted member array (8 bytes per peer), visible
at 100,000 peers.

{jobs_section}{analytics_report(analytics)}{json_section}{joincost_section}{sign_section}{cluster_section}{wasm_section}{browsers_section}Reproduce: `make bench` (options: `python3 bench/run.py --help`; one section: `.build/bench-venv/bin/python bench/run.py --only relays|joins|relay|json|joincost|sign|cluster|wasm|browsers --out FILE`; section 8 next to another build: `--baseline DIR`; without section 10: `--no-cluster`; without sections 11 and 12: `--no-browsers`; plots: `.build/bench-venv/bin/python bench/plots.py`).
"""
    pathlib.Path(a.out).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
