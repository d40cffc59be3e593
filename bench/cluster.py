"""Section 10: cluster mode (docs/cluster.md) on this machine, next to single-process mode, in one run.

Configurations: one process without --cluster ("single"), and 1, 2 and 3 instances of
`browsercloud serve --cluster` sharing a redis-server started for the purpose (a fresh one per
configuration and round, so its counters start at zero). Per configuration and round:
- hold: bc-loadgen registers `peers` idle peers spread over the instances (64 in parallel), then joins
  `samples` more one at a time (spread too; each closes after its join): join latency at that N, and,
  from `INFO commandstats` and /proc before and after each phase, the Redis calls and redis-server CPU
  per join (filling) and per join + leave (samples);
- relay: `pairs` signal pairs in a closed loop, both partners on the first instance ("same"), and with
  2 or 3 instances a second run with the partner on the second instance ("cross"): messages per second
  of all the server processes' CPU (every instance plus redis-server), and Redis calls per signal.
Then, once, the idle peers 3 instances hold: one bc-loadgen per instance (each process here, server and
load generator alike, is capped at 20,000 open files), RSS per peer and the total reached.
"""
import datetime
import json
import os
import shutil
import socket
import statistics
import subprocess
import threading
import time
import urllib.request

from common import ROOT, RELEASE, rss_kib, start, stop, thread_cpu_seconds

REDIS = shutil.which("redis-server")
TICK = os.sysconf("SC_CLK_TCK")
CONFIGS = [0, 1, 2, 3]   # 0: single process (no --cluster); k: k cluster instances


def label(k):
    return "single process" if k == 0 else f"cluster, {k} instance{'s' if k > 1 else ''}"


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), from /proc/<pid>/stat, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout, what):
    """Polls `check` until it returns true; raises after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


class Redis:
    """A throwaway redis-server on a free loopback port (no persistence)."""

    def __init__(self, directory):
        self.port = free_port()
        self.proc = subprocess.Popen([REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory),
                                      "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.ping(), 15, "redis-server to answer PING")

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def command(self, *args):
        """One command; the reply's text (bulk strings, simple strings; `:n` for integers)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall((f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)).encode())
            data = b""
            while b"\r\n" not in data:
                data += s.recv(65536)
            head, rest = data.split(b"\r\n", 1)
            if head.startswith(b"$"):
                n = int(head[1:])
                while len(rest) < n + 2:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    rest += chunk
                return rest[:n].decode()
            return head.decode()

    def ping(self):
        try:
            return self.command("PING") == "+PONG"
        except OSError:
            return False

    def commandstats(self):
        """Calls per command since the start (`INFO commandstats`), without INFO itself (our own calls)."""
        out = {}
        for line in self.command("INFO", "commandstats").splitlines():
            if line.startswith("cmdstat_"):
                name, rest = line[len("cmdstat_"):].split(":", 1)
                if name != "info":
                    out[name] = int(dict(kv.split("=") for kv in rest.split(","))["calls"])
        return out

    def used_memory(self):
        for line in self.command("INFO", "memory").splitlines():
            if line.startswith("used_memory:"):
                return int(line.split(":")[1])
        return 0

    def stop(self):
        stop(self.proc)


class Setup:
    """k cluster instances on one Redis (k = 0: one process without --cluster); every instance's HTTP port."""

    def __init__(self, tmp, k, max_connections=19_900):
        self.k = k
        self.dir = tmp / f"cluster-{k}-{time.monotonic_ns()}"
        self.dir.mkdir(parents=True)
        self.redis = Redis(self.dir) if k else None
        self.servers = []
        try:
            for i in range(max(k, 1)):
                cmd = [str(RELEASE / "browsercloud"), "serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "error",
                       "--secret-file", str(self.dir / f"i{i}.secret"), "--rate-limit", "1000000", "--rate-burst", "1000000",
                       "--max-peers", "200000", "--max-connections", str(max_connections)]
                if k:
                    # All instances share the server key: the first creates it before the others start.
                    cmd += ["--cluster", self.redis.url, "--instance", f"bench{i}", "--server-key-file", str(self.dir / "server.ed25519")]
                self.servers.append(start(cmd, "listening on"))
            for _, port in self.servers:
                wait_for(lambda: self.health(port).get("status") == "ok", 30, f"instance on port {port} to be healthy")
        except BaseException:
            self.stop()
            raise

    @property
    def ports(self):
        return [port for _, port in self.servers]

    def health(self, port):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                return json.loads(r.read())
        except Exception:   # 503 while the log is unreachable, or not up yet
            return {}

    def wait_ring(self, count, timeout=60):
        """Until every instance's replica holds exactly `count` peers (joins and leaves applied everywhere)."""
        wait_for(lambda: all(self.health(p).get("peersOnline") == count for p in self.ports), timeout,
                 f"every instance to show {count} peers")

    def snapshot(self):
        """Server CPU seconds (every instance plus redis-server), Redis calls per command, the time."""
        pids = [proc.pid for proc, _ in self.servers] + ([self.redis.proc.pid] if self.redis else [])
        threads = {}
        for proc, _ in self.servers:
            for name, seconds in thread_cpu_seconds(proc.pid).items():
                threads[name] = threads.get(name, 0) + seconds
        return {"cpu": sum(cpu_seconds(p) for p in pids), "redisCpu": cpu_seconds(self.redis.proc.pid) if self.redis else 0.0,
                "calls": self.redis.commandstats() if self.redis else {}, "t": time.monotonic(), "threads": threads}

    def rss_kib(self):
        return sum(rss_kib(proc.pid) for proc, _ in self.servers)

    def stop(self):
        for proc, _ in self.servers:
            stop(proc)
        if self.redis:
            self.redis.stop()


def delta(a, b, count):
    """Per-unit differences of two snapshots: server CPU µs, redis CPU µs, Redis calls (total and per command)."""
    calls = {c: (b["calls"].get(c, 0) - a["calls"].get(c, 0)) / count for c in b["calls"]}
    calls = {c: v for c, v in calls.items() if v > 0}
    threads = {n: (b["threads"].get(n, 0) - a["threads"].get(n, 0)) / count * 1e6 for n in b["threads"]}
    return {"threadsUs": {n: v for n, v in threads.items() if v > 0},"cpuUs": (b["cpu"] - a["cpu"]) / count * 1e6, "redisCpuUs": (b["redisCpu"] - a["redisCpu"]) / count * 1e6,
            "calls": sum(calls.values()), "byCommand": calls, "seconds": b["t"] - a["t"]}


def read_json(proc):
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"bc-loadgen ended early: {proc.stderr.read() if proc.stderr else ''}")
    out = json.loads(line)
    if "error" in out:
        raise RuntimeError(out)
    return out


def measure_hold(setup, peers, samples):
    """Fill `peers` peers, then `samples` joins one at a time, spread over the instances."""
    rss0 = setup.rss_kib()
    s0 = setup.snapshot()
    lg = subprocess.Popen([str(RELEASE / "bc-loadgen"), "hold", "--ports", ",".join(map(str, setup.ports)),
                           "--peers", str(peers), "--samples", str(samples), "--timeout", "240"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        hold = read_json(lg)
        setup.wait_ring(peers)
        s1 = setup.snapshot()
        rss1 = setup.rss_kib()
        lg.stdin.write("go\n")
        lg.stdin.flush()
        latency = read_json(lg)
        setup.wait_ring(peers)
        s2 = setup.snapshot()
    finally:
        lg.stdin.close()
        lg.wait(60)
    setup.wait_ring(0)
    return {"joinsPerSecond": hold["joinsPerSecond"], "p50us": latency["p50us"], "p99us": latency["p99us"],
            "bytesPerPeer": (rss1 - rss0) * 1024 / peers, "fill": delta(s0, s1, peers), "samples": delta(s1, s2, samples)}


def measure_relay(setup, ports, pairs, window, payload, seconds):
    """Closed-loop signals between `pairs` pairs, first partners on ports[0], second on ports[1]."""
    lg = subprocess.Popen([str(RELEASE / "bc-loadgen"), "relay", "--ports", ",".join(map(str, ports)), "--pairs", str(pairs),
                           "--window", str(window), "--payload", str(payload), "--seconds", str(seconds), "--wait-for-go"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        read_json(lg)                 # ready: all registered
        setup.wait_ring(2 * pairs)    # every instance knows every partner
        lg.stdin.write("go\n")
        lg.stdin.flush()
        read_json(lg)                 # measuring: the warm-up second is over
        s0 = setup.snapshot()
        out = read_json(lg)
        s1 = setup.snapshot()
    finally:
        lg.stdin.close()
        lg.wait(60)
    if out["errors"]:
        raise RuntimeError(f"relay errors: {out}")
    setup.wait_ring(0)
    d = delta(s0, s1, out["messages"])
    return {"messagesPerSecond": out["messagesPerSecond"], "perCpuSecond": 1e6 / d["cpuUs"] if d["cpuUs"] > 0 else float("inf"),
            "cpuUs": d["cpuUs"], "redisCpuUs": d["redisCpuUs"], "threadsUs": d["threadsUs"], "calls": d["calls"],
            "byCommand": d["byCommand"]}


def measure_held(tmp, per_instance, instances=3):
    """Idle peers `instances` instances hold: one bc-loadgen per instance (each capped at 20,000 files)."""
    setup = Setup(tmp, instances)
    lgs = []
    try:
        rss0 = [rss_kib(proc.pid) for proc, _ in setup.servers]
        redis0 = setup.redis.used_memory()
        t0 = time.monotonic()
        lgs = [subprocess.Popen([str(RELEASE / "bc-loadgen"), "hold", "--port", str(port), "--peers", str(per_instance),
                                 "--samples", "1", "--timeout", "600"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True) for port in setup.ports]
        # The ring's size over time, from the first instance's replica (every instance applies every join).
        timeline, done = [], threading.Event()

        def watch():
            while not done.is_set():
                n = setup.health(setup.ports[0]).get("peersOnline")
                if n is not None:
                    timeline.append((time.monotonic() - t0, n))
                done.wait(0.5)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            held = [read_json(lg) for lg in lgs]
            total = per_instance * instances
            setup.wait_ring(total, timeout=120)
        finally:
            done.set()
            watcher.join()
        seconds = time.monotonic() - t0
        timeline.append((seconds, total))
        calls = setup.redis.commandstats()
        time.sleep(11)   # memory once the joins settled, as in section 1 (freed heap is returned every 10 s)
        rss1 = [rss_kib(proc.pid) for proc, _ in setup.servers]
        redis1 = setup.redis.used_memory()
        return {"perInstance": per_instance, "instances": instances, "total": total, "seconds": seconds,
                "joinsPerSecond": total / seconds, "failures": sum(h["failures"] for h in held),
                "closedEarly": {k: sum(h.get("closedBeforeRegistered", {}).get(k, 0) for h in held)
                                for k in sorted({k for h in held for k in h.get("closedBeforeRegistered", {})})},
                "rssKiB": rss1, "bytesPerPeerInstance": [(b - a) * 1024 / per_instance for a, b in zip(rss0, rss1)],
                "bytesPerPeerAll": (sum(rss1) - sum(rss0)) * 1024 / total, "redisBytesPerPeer": (redis1 - redis0) / total,
                "thirds": thirds(timeline, total), "snapshots": calls.get("xtrim", 0),
                "snapshotBytes": int(setup.redis.command("STRLEN", "browsercloud:snapshot").lstrip(":") or 0)}
    finally:
        for lg in lgs:
            lg.stdin.close()
        for lg in lgs:
            lg.wait(120)
        setup.stop()


def thirds(timeline, total):
    """Joins per second while the ring grew through each third of `total`, from (seconds, size) samples."""
    rates = []
    for lo, hi in ((0, total // 3), (total // 3, 2 * total // 3), (2 * total // 3, total)):
        a = next(((t, n) for t, n in timeline if n >= lo), None)
        b = next(((t, n) for t, n in timeline if n >= hi), None)
        rates.append((b[1] - a[1]) / (b[0] - a[0]) if a and b and b[0] > a[0] else float("nan"))
    return rates


def bench_cluster(tmp, peers=3000, samples=300, pairs=20, window=16, payload=200, seconds=3.0, rounds=2, held_per_instance=19_000):
    """All measurements of section 10; None when redis-server is not installed."""
    if not REDIS:
        return None
    started, load = time.monotonic(), os.getloadavg()[0]
    runs = {k: [] for k in CONFIGS}
    for _ in range(rounds):
        for k in CONFIGS:
            setup = Setup(tmp, k)
            try:
                r = {"hold": measure_hold(setup, peers, samples)}
                p = setup.ports
                r["same"] = measure_relay(setup, [p[0], p[0]], pairs, window, payload, seconds)
                if k >= 2:
                    r["cross"] = measure_relay(setup, [p[0], p[1]], pairs, window, payload, seconds)
            finally:
                setup.stop()
            runs[k].append(r)
    rounds_seconds = time.monotonic() - started
    held = measure_held(tmp, held_per_instance)
    return {"peers": peers, "samples": samples, "pairs": pairs, "window": window, "payload": payload, "seconds": seconds,
            "rounds": rounds, "runs": runs, "held": held, "runSeconds": time.monotonic() - started, "roundsSeconds": rounds_seconds,
            "date": datetime.date.today().isoformat(),
            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip(),
            "load": [load, os.getloadavg()[0]]}


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def cluster_report(c):
    heading = "## 10. Cluster: 1, 2 and 3 instances next to one process"
    if c is None:
        return f"{heading}\n\nNot measured: redis-server is not installed.\n\n"
    runs, rounds = c["runs"], c["rounds"]

    def values(k, f):
        return [f(r) for r in runs[k]]

    def ratio(k, f, single=None):
        """Median over rounds of value(k) / value(single) within the round (`single`: the single process's
        figure to compare with, when it is another than `f`)."""
        return med([f(a) / (single or f)(b) for a, b in zip(runs[k], runs[0])])

    p50 = lambda r: r["hold"]["p50us"]
    p99 = lambda r: r["hold"]["p99us"]
    same = lambda r: r["same"]["perCpuSecond"]
    cross = lambda r: r["cross"]["perCpuSecond"]
    rows = []
    for k in CONFIGS:
        cells = [label(k), f"{med(values(k, p50)):.0f} µs", f"{med(values(k, p99)):.0f} µs",
                 f"{med(values(k, same)):,.0f}", f"{med(values(k, cross)):,.0f}" if k >= 2 else "–",
                 f"{med(values(k, lambda r: r['same']['messagesPerSecond'])):,.0f}",
                 f"{med(values(k, lambda r: r['hold']['bytesPerPeer'])) / 1024:.1f} KiB",
                 f"{med(values(k, lambda r: r['hold']['joinsPerSecond'])):,.0f}"]
        rows.append("| " + " | ".join(cells) + " |")
    ratio_rows = []
    for k in CONFIGS[1:]:
        cells = [label(k), f"{ratio(k, p50):.2f}", f"{ratio(k, p99):.2f}", f"{ratio(k, same):.2f}",
                 f"{ratio(k, cross, same):.2f}" if k >= 2 else "–",
                 f"{ratio(k, lambda r: r['hold']['joinsPerSecond']):.2f}"]
        ratio_rows.append("| " + " | ".join(cells) + " |")
    redis_rows = []
    for k in CONFIGS[1:]:
        fill = [r["hold"]["fill"] for r in runs[k]]
        smp = [r["hold"]["samples"] for r in runs[k]]
        cells = [label(k), f"{med([f['calls'] for f in fill]):.1f}", f"{med([f['redisCpuUs'] for f in fill]):.0f} µs",
                 f"{med([s['calls'] for s in smp]):.1f}", f"{med([s['redisCpuUs'] for s in smp]):.0f} µs",
                 f"{med([r['same']['calls'] for r in runs[k]]):.3f}",
                 f"{med([r['cross']['calls'] for r in runs[k]]):.2f}" if k >= 2 else "–",
                 f"{med([r['cross']['redisCpuUs'] for r in runs[k]]):.1f} µs" if k >= 2 else "–"]
        redis_rows.append("| " + " | ".join(cells) + " |")

    def commands(items):
        names = sorted({n for d in items for n in d}, key=lambda n: -med([d.get(n, 0) for d in items]))
        return ", ".join(f"{n.upper()} {med([d.get(n, 0) for d in items]):.2f}" for n in names
                         if med([d.get(n, 0) for d in items]) >= 0.005) or "none"
    k3 = runs[3]
    by_join = commands([r["hold"]["fill"]["byCommand"] for r in k3])
    by_sample = commands([r["hold"]["samples"]["byCommand"] for r in k3])
    by_signal = commands([r["cross"]["byCommand"] for r in k3])
    k2 = runs[2]

    def thread_rows(kind):
        items = [r[kind]["threadsUs"] for r in k2]
        names = sorted({n for d in items for n in d}, key=lambda n: -med([d.get(n, 0) for d in items]))
        shown = [n for n in names if med([d.get(n, 0) for d in items]) >= 0.05]
        return shown, {n: med([d.get(n, 0) for d in items]) for n in shown}
    same_threads, same_us = thread_rows("same")
    cross_threads, cross_us = thread_rows("cross")
    thread_names = same_threads + [n for n in cross_threads if n not in same_threads]
    names = {"lws-service": "lws-service (the server's service thread)",
             "oot.default-qos": "`…oot.default-qos` threads: the cluster link's reader, writer and subscriber"}
    thread_table = "\n".join(f"| {names.get(n, n)} | {same_us.get(n, 0):.1f} µs | {cross_us.get(n, 0):.1f} µs |" for n in thread_names)
    thread_table += (f"\n| redis-server | {med([r['same']['redisCpuUs'] for r in k2]):.1f} µs | {med([r['cross']['redisCpuUs'] for r in k2]):.1f} µs |"
                     f"\n| **all server processes** | **{med([r['same']['cpuUs'] for r in k2]):.1f} µs** | **{med([r['cross']['cpuUs'] for r in k2]):.1f} µs** |")
    h = c["held"]
    lock_note = ("" if h["snapshots"] * 2 >= h["total"] // 1000 else
                 ": the checkpoint lock (`SET <prefix>:checkpoint-lock … NX PX 10000`) is not released after a "
                 "checkpoint, so the cluster writes at most one every 10 s, and under a fast stream of joins the log "
                 "grows to 10 s of entries between snapshots, more than `--checkpoint-entries` says")
    closed_early = (": " + ", ".join(f"{n} {k}" for k, n in h["closedEarly"].items())) if h.get("closedEarly") else ""
    per_inst = ", ".join(f"{b / 1024:.1f}" for b in h["bytesPerPeerInstance"])
    rss = ", ".join(f"{x / 1024:.0f}" for x in h["rssKiB"])
    return f"""{heading}

`browsercloud serve --cluster redis://… --instance NAME` (docs/cluster.md) with 1, 2 and 3 instances on
this machine, each with its own port and all sharing one redis-server (7.0, no persistence) and one
server key, next to one process without `--cluster`. Measured on {c['date']}, commit `{c['commit']}`, in one run ({rounds} rounds); in each round the
configurations run one after another, each on fresh processes (a fresh redis-server too, so its
counters start at zero). Ratios are cluster / single process within a round, median over the rounds
(this run's rounds; absolute figures drift on this shared 2-core machine). The instances, redis-server
and the load generators share the 2 cores, so more instances add no cores: what this section shows is
the cost of the cluster, not a speedup.

- Join latency: bc-loadgen holds {c['peers']:,} idle peers spread over the instances in turn (64 joining in
  parallel: the join rate column), then {c['samples']} joins one at a time, also spread (each closes after its
  join, so N stays put); `register` sent → `registered` received. No 11 s settle as in section 2.
- Relay: {c['pairs']} pairs, {c['window']} signals in flight per connection, {c['payload']}-byte payload, {c['seconds']:.0f} s after 1 s of warm-up,
  once with both partners on the first instance (same) and, with 2 and 3 instances, once with each
  partner on another instance (cross). Per CPU second: signals delivered / (CPU seconds of every
  instance + redis-server, `utime + stime` from `/proc/<pid>/stat`) over the measured window.
- Memory: sum of the instances' RSS with the peers held minus before, per peer (every instance holds
  the whole ring's replica, besides its own peers' connections).

| configuration | join p50 | join p99 | same-instance signals per server CPU s | cross-instance signals per server CPU s | same-instance signals/s | RSS per peer (all instances) | join rate filling |
|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

Ratios to one process (median of per-round ratios):

| configuration | join p50 | join p99 | same-instance per CPU s | cross-instance per CPU s | join rate filling |
|---|---:|---:|---:|---:|---:|
{chr(10).join(ratio_rows)}

### Redis operations per join and per signal

`INFO commandstats` read before and after each phase (the INFO calls themselves left out); the
background (heartbeats every second, the readers' blocking `XREAD`s returning) is included, spread
over the phase. Redis CPU from `/proc/<redis pid>/stat`.

| configuration | calls per join (filling) | redis CPU per join | calls per join + leave (one at a time) | redis CPU per join + leave | calls per same-instance signal | calls per cross-instance signal | redis CPU per cross-instance signal |
|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(redis_rows)}

With 3 instances, by command (median; the commands the append script runs inside `EVAL` count too):
per join while filling: {by_join}; per join + leave one at a time: {by_sample}; per cross-instance
signal: {by_signal}.

Where the CPU of one signal goes with 2 instances (both instances' threads added up, by thread name;
median over the rounds):

| thread | same instance | cross instance |
|---|---:|---:|
{thread_table}

### Idle peers one machine holds with 3 instances

One bc-loadgen per instance, each holding {h['perInstance']:,} peers on its instance: **{h['total']:,} peers held**
({h['failures']} connections closed or failed before registering{closed_early}, each replaced by another) in {h['seconds']:.0f} s ({h['joinsPerSecond']:,.0f} joins/s, every join applied by all 3 instances; while the
ring grew through its first, second and last third: {", ".join(f"{x:,.0f}" for x in h['thirds'])} joins/s).
Instance RSS with the peers held, 11 s after the last join: {rss} MiB; per peer held (RSS growth of each instance / its own
peers, which includes the whole ring's replica): {per_inst} KiB; all instances together {h['bytesPerPeerAll'] / 1024:.1f} KiB
per peer; redis-server `used_memory` grew {h['redisBytesPerPeer']:.0f} bytes per peer (peer records, the log
since the last checkpoint and the snapshot). {h['snapshots']} checkpoints were written while filling ({h['total'] // 1000} by `--checkpoint-entries`,
1,000 log entries){lock_note}; the last snapshot is {h['snapshotBytes'] / 1e6:.1f} MB of JSON.

Why {h['total']:,}: every process here, server and load generator alike, is capped at 20,000 open files (the
hard limit; even root cannot raise it), so one process holds just under 20,000 WebSocket peers and
one load generator holds as many client connections. Each instance keeps a few files for its
listening socket, its 3 Redis connections and the logs, so {h['perInstance']:,} per instance leaves a margin;
each load generator connects from 127.0.0.1 to one instance's port, well inside the 28,232 loopback
source ports per destination. More instances (and load generators) on more ports would hold more;
each instance's replica of the whole ring then grows with the total.

### Where the ceiling is, and what would lift it

- **One log serialises every mutation.** Every join and leave is one `EVAL` (`INCR` + `XADD`) on the
  one stream and is read and applied by every instance (one `XREAD` per instance when joins come one
  at a time), so adding instances adds no join capacity: the join rate while filling is
  {ratio(3, lambda r: r['hold']['joinsPerSecond']):.2f}× one process's with 3 instances, and joins cost the single-threaded redis-server
  {med([r['hold']['fill']['redisCpuUs'] for r in k3]):.0f} µs of CPU each with 3 instances (its one core alone would cap the whole cluster near
  {round(1e6 / max(med([r['hold']['fill']['redisCpuUs'] for r in k3]), 1), -3):,.0f} joins/s, before any instance's own work, and every instance applies every join to its replica and pushes the
  ring changes to its own affected peers).
  What would lift it: per-instance streams (each instance appends its own peers' mutations to its own
  stream; a peer's mutations stay in order because one instance holds it, and replicas merge the
  streams), and Redis Cluster shards for those streams, so appends spread over several Redis cores.
- **Cross-instance signals cost {ratio(2, lambda r: r['cross']['cpuUs'], lambda r: r['same']['cpuUs']):.1f}× a same-instance one** in server CPU (median ratio with 2 instances,
  {med([r['cross']['cpuUs'] for r in k2]):.0f} µs against {med([r['same']['cpuUs'] for r in k2]):.0f} µs): a `PUBLISH` to the target instance's channel, redis-server's fan-out
  ({med([r['cross']['redisCpuUs'] for r in k2]):.1f} µs), and the link's writer and subscriber threads (JSON encoding and parsing of the forwarded
  message, one hand-off to the service thread per message). The cluster's cross-instance relay is
  bounded by one redis-server core at about {round(1e6 / max(med([r['cross']['redisCpuUs'] for r in k2]), 0.1), -3):,.0f} signals/s. What would lift it: sharded Pub/Sub
  (`SPUBLISH`, Redis 7) over Redis Cluster shards, or direct instance-to-instance connections for
  forwarded messages (Redis then only carries the log); batching the subscriber's hand-offs.
  Signals between peers on the same instance cost Redis nothing (calls per same-instance signal above)
  and cost the instance what they cost one process (same-instance ratios above, within this machine's drift).
- **Snapshots cost O(N).** Each checkpoint serialises the whole replica ({h['snapshotBytes'] / 1e6:.1f} MB at {h['total']:,} peers) every
  1,000 entries, so the per-join share grows with N; a new instance loads it whole. Incremental
  checkpoints (a Redis hash of peer records changed by `HSET`, the stream trimmed behind it) or a
  checkpoint interval that grows with N would keep it O(changes).
- **Memory.** Every instance holds the whole ring's replica: with 3 instances each peer costs memory in
  all of them ({h['bytesPerPeerAll'] / 1024:.1f} KiB per peer over all 3 at {h['total']:,} peers, against section 1's single process), so
  the per-machine peer count grows with instances until the replicas dominate.

Section run time: {c['runSeconds']:.0f} s ({c['roundsSeconds']:.0f} s for the rounds, the rest filling the 3 instances); the machine's load average (1 min) was {c['load'][0]:.1f} at its start and
{c['load'][1]:.1f} at its end (other work shares this machine: compare ratios, not absolute figures).

"""
