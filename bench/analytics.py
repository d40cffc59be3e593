"""Section 6: join latency while anonymous clients hammer the analytics (bench/run.py)."""
import json
import re
import statistics
import subprocess
import time

from common import RELEASE, start, start_server, stop, thread_cpu_seconds


NEXT = re.compile(rb'"next" : (?:"([0-9a-f]{12})"|null)')


def hammer(port, halt, counts, index):
    """One anonymous analytics client, as fast as it can on one keep-alive connection: the whole ring in
    one page, the visualizer's paging (1,000 peers a page), then the counters; again and again. It reads
    the answers without parsing them (only `next`, near the top), so that it costs the shared cores little."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    done = nbytes = 0

    def get(path):
        nonlocal done, nbytes
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        done += 1
        nbytes += len(body)
        return r.status, body

    while not halt.is_set():
        get("/api/network?limit=10000")
        after = None
        while not halt.is_set():
            status, body = get("/api/network?limit=1000" + (f"&after={after}" if after else ""))
            m = NEXT.search(body, 0, 400) if status == 200 else None
            if not m or not m.group(1):
                break
            after = m.group(1).decode()
        get("/api/stats")
        get("/metrics")
    counts[index * 2] = done
    counts[index * 2 + 1] = nbytes


def bench_analytics(tmp, peers, samples, clients, rounds, server=None):
    """Join latency at `peers` held peers, quiet and while `clients` anonymous clients hammer the
    analytics routes, in alternating rounds (the same server and the same held peers throughout)."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    extra = ["--max-peers", str(peers + 100), "--max-connections", str(peers + 500)]
    if server:
        cmd = [server, "serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "error",
               "--secret-file", str(tmp / "bench.secret"), "--rate-limit", "1000000", "--rate-burst", "1000000"] + extra
        proc, port = start(cmd, "listening on")
    else:
        proc, port = start_server(tmp, extra)
    results = {"quiet": [], "loaded": [], "requestsPerSecond": [], "mbPerSecond": []}
    try:
        lg = subprocess.Popen([str(RELEASE / "bc-loadgen"), "hold", "--port", str(port), "--peers", str(peers),
                               "--samples", str(samples)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        hold = json.loads(lg.stdout.readline())
        if "error" in hold:
            raise RuntimeError(hold)
        time.sleep(11)   # past the first liveness pings, as in section 2

        def sample():
            lg.stdin.write("go\n")
            lg.stdin.flush()
            out = json.loads(lg.stdout.readline())
            if "error" in out:
                raise RuntimeError(out)
            return out

        for _ in range(rounds):
            results["quiet"].append(sample())
            halt = ctx.Event()
            counts = ctx.Array("d", 2 * clients)
            workers = [ctx.Process(target=hammer, args=(port, halt, counts, i)) for i in range(clients)]
            for w in workers:
                w.start()
            time.sleep(2)   # every client is polling
            t0 = time.monotonic()
            cpu0 = thread_cpu_seconds(proc.pid)
            results["loaded"].append(sample())
            cpu1 = thread_cpu_seconds(proc.pid)
            elapsed = time.monotonic() - t0
            for name in ("lws-service", "analytics"):
                results.setdefault(name, []).append((cpu1.get(name, 0) - cpu0.get(name, 0)) / elapsed)
            halt.set()
            for w in workers:
                w.join(120)
            results["requestsPerSecond"].append(sum(counts[0::2]) / (elapsed + 2))
            results["mbPerSecond"].append(sum(counts[1::2]) / (elapsed + 2) / 1e6)
        lg.stdin.close()
        lg.wait(60)
    finally:
        stop(proc)
    med = lambda key, field: statistics.median(r[field] for r in results[key])
    return {"peers": peers, "samples": samples, "clients": clients, "rounds": rounds,
            "quiet": {f: med("quiet", f) for f in ("p50us", "p99us", "maxus")},
            "loaded": {f: med("loaded", f) for f in ("p50us", "p99us", "maxus")},
            "quietAll": [r["p99us"] for r in results["quiet"]], "loadedAll": [r["p99us"] for r in results["loaded"]],
            "signallingThreadBusy": statistics.median(results["lws-service"]),
            "analyticsThreadBusy": statistics.median(results["analytics"]),
            "requestsPerSecond": statistics.median(results["requestsPerSecond"]),
            "mbPerSecond": statistics.median(results["mbPerSecond"])}


def analytics_report(a):
    q, l = a["quiet"], a["loaded"]
    return f"""## 6. Signalling while anonymous clients hammer the analytics

Join latency (as in section 2, {a['samples']} joins one after another) on a ring of {a['peers']:,} held peers, quiet and
while {a['clients']} anonymous clients poll the analytics as fast as they can, each on its own keep-alive
connection: the whole ring in one `/api/network?limit=10000` page (about 800 KB), then the
visualizer's paging (1,000 peers a page), then `/api/stats` and `/metrics`, again and again.
{a['rounds']} rounds, quiet and loaded alternating; medians over the rounds. `/api/network` pages are
rendered by the analytics thread from its own copy of the ring, so signalling never waits for them
(docs/api.md).

| | p50 | p99 | max | p99 per round |
|---|---:|---:|---:|---|
| quiet | {q['p50us']:.0f} µs | {q['p99us']:.0f} µs | {q['maxus']:.0f} µs | {", ".join(f"{x:.0f}" for x in a['quietAll'])} |
| {a['clients']} analytics clients | {l['p50us']:.0f} µs | {l['p99us']:.0f} µs | {l['maxus']:.0f} µs | {", ".join(f"{x:.0f}" for x in a['loadedAll'])} |

The clients got {a['requestsPerSecond']:,.0f} answers/s ({a['mbPerSecond']:,.0f} MB/s) meanwhile; the signalling thread
was busy {a['signallingThreadBusy']:.0%} of the time and the analytics thread {a['analyticsThreadBusy']:.0%} (CPU time of each thread
over the loaded samples, from `/proc`). The load generator's clients share the same 2 cores, so part of
the latency under load is theirs: remote clients would cost the server's cores less.

"""


