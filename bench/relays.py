"""Sections 1-3 of `make bench`: this server next to what a user might run instead (issue 15).

The competitors: a minimal relay on Node's `ws` (bench/node-relay.js), one on Python's `websockets`
(bench/python-relay.py, from the bench's virtual environment) and the bare libwebsockets echo server
(bench/echo-server.c). All are driven by the same load generator (bc-loadgen; `--protocol minimal` for
the two relays, which have no challenge and no signatures).

1. Memory per idle registered peer at several N (this server and the Node relay; a fresh server per N).
2. Join latency (`register` sent → `registered` received) at 10,000 peers and at the most one process
   holds here (every process is capped at 20,000 open files), for the same two servers.
3. Signal messages per second of server CPU (utime + stime of the server process from /proc over the
   measured window), for all four servers, in alternating rounds; ratios are medians of per-round ratios.
"""
import datetime
import json
import functools
import os
import statistics
import subprocess
import sys
import time

from common import ROOT, RELEASE, rss_kib, start, start_server, stop

NODE_RELAY = ROOT / "bench" / "node-relay.js"
PYTHON_RELAY = ROOT / "bench" / "python-relay.py"
BENCH_PYTHON = ROOT / ".build" / "bench-venv" / "bin" / "python"
ECHO_SERVER = ROOT / ".build" / "echo-server"

NAMES = {"this": "this server", "node": "Node `ws` relay", "python": "Python `websockets` relay", "echo": "bare lws echo"}
# Targets of issue 15: this server's signals per CPU second at least this multiple of each competitor's.
RELAY_TARGETS = {"echo": 0.9, "node": 1.5, "python": 3.5}
JOIN_P99_TARGET = 2.0          # our p99 at most this multiple of the Node relay's at the same N
MEMORY_TARGET_KIB = 4.0        # RSS per idle registered peer, at the largest N


def cpu_seconds(pid):
    """utime + stime of every thread of process `pid` (fields 14 and 15 of /proc/PID/stat), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_competitor(kind, tmp, peers=0):
    """Starts one server on a free loopback port; returns (process, port). `peers`: this server's
    --max-peers and connection limit for a hold of that many peers (0: the relay runs)."""
    if kind == "this":
        # --idle-timeout 120: liveness pings still go out after 10 s of quiet, but a load generator starved of
        # CPU by other work on this shared machine (pongs late by more than 20 s) does not lose its held peers.
        extra = ["--max-peers", str(peers + 100), "--max-connections", str(min(peers + 500, 19_900)),
                 "--idle-timeout", "120"] if peers else []
        return start_server(tmp, extra)
    if kind == "node":
        return start(["node", str(NODE_RELAY), "0"], "listening on")
    if kind == "python":
        return start([str(BENCH_PYTHON if BENCH_PYTHON.exists() else sys.executable), str(PYTHON_RELAY), "0"], "listening on")
    if kind == "echo":
        return start([str(ECHO_SERVER), "0"], "listening on")
    raise ValueError(kind)


@functools.cache
def commit():
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()


def measured_alone(alone, what):
    """The sentence saying a section was measured on its own (`--only`), or nothing."""
    if not alone:
        return ""
    return (f" Measured {datetime.date.today().isoformat()}, commit `{commit()}`, apart from the sections after 3 "
            f"(`bench/run.py --only {alone if isinstance(alone, str) else what}`).")


def load_note(results):
    """The machine's load average (1 min) at the start and end of a measurement: other work shares this
    2-core machine, and a starved load generator sends fewer messages per wake-up of the server."""
    if "load" not in results:
        return ""
    a, b = results["load"]
    return f" The machine's load average (1 min) was {a:.1f} at the start and {b:.1f} at the end (2 cores)."


def read_json(proc):
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError("bc-loadgen ended early")
    out = json.loads(line)
    if "error" in out:
        raise RuntimeError(out)
    return out


# MARK: 3. relay per server CPU

def measure_relay(kind, proc, port, pairs, window, payload, seconds):
    mode = {"this": ["--mode", "signal"], "echo": ["--mode", "echo"]}.get(kind, ["--mode", "signal", "--protocol", "minimal"])
    lg = subprocess.Popen([str(RELEASE / "bc-loadgen"), "relay", "--port", str(port), "--pairs", str(pairs), "--window", str(window),
                           "--payload", str(payload), "--seconds", str(seconds), "--wait-for-go"] + mode,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        read_json(lg)                 # ready: every connection registered (or open, for the echo)
        lg.stdin.write("go\n")
        lg.stdin.flush()
        read_json(lg)                 # measuring: the warm-up second is over
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        out = read_json(lg)
        c1, t1 = cpu_seconds(proc.pid), time.monotonic()
    finally:
        lg.stdin.close()
        lg.wait(60)
    if out["errors"]:
        raise RuntimeError(f"{kind}: relay errors: {out}")
    cpu = c1 - c0
    return {"messagesPerSecond": out["messagesPerSecond"], "messages": out["messages"], "cpuSeconds": cpu,
            "perCpuSecond": out["messages"] / cpu if cpu > 0 else float("inf"), "cores": cpu / (t1 - t0)}


def bench_relays(tmp, pairs=50, window=16, payload=200, seconds=5.0, rounds=3, kinds=("this", "node", "python", "echo")):
    """All four servers run at once (idle between their turns); each round measures each in turn, the order
    rotating by one server per round."""
    load = [os.getloadavg()[0]]
    servers = {k: start_competitor(k, tmp) for k in kinds}
    runs = {k: [] for k in kinds}
    try:
        for r in range(rounds):
            order = list(kinds[r % len(kinds):]) + list(kinds[:r % len(kinds)])
            for k in order:
                proc, port = servers[k]
                runs[k].append(measure_relay(k, proc, port, pairs, window, payload, seconds))
    finally:
        for proc, _ in servers.values():
            stop(proc)
    load.append(os.getloadavg()[0])
    ratios = {k: [a["perCpuSecond"] / b["perCpuSecond"] for a, b in zip(runs["this"], runs[k])] for k in kinds if k != "this"}
    result = {"pairs": pairs, "window": window, "payload": payload, "seconds": seconds, "rounds": rounds, "runs": runs, "load": load,
            "median": {k: statistics.median(x["perCpuSecond"] for x in v) for k, v in runs.items()},
            "ratios": ratios, "ratio": {k: statistics.median(v) for k, v in ratios.items()}}
    (tmp / "relays.json").write_text(json.dumps(result))   # the raw results, for a look or a re-plot
    return result


def relay_report(r, image="img/relay-per-cpu.png", alone=False):
    def row(k):
        v = r["runs"][k]
        rounds = ", ".join(f"{x['perCpuSecond']:,.0f}" for x in v)
        return (f"| {NAMES[k]} | {r['median'][k]:,.0f} | {rounds} | "
                f"{statistics.median(x['messagesPerSecond'] for x in v):,.0f} | {statistics.median(x['cores'] for x in v):.2f} |")
    rows = "\n".join(row(k) for k in r["runs"])
    ratio_rows = "\n".join(
        f"| this server / {NAMES[k]} | **{r['ratio'][k]:.2f}** | {', '.join(f'{x:.2f}' for x in r['ratios'][k])} | ≥ {RELAY_TARGETS[k]} | "
        f"{'met' if r['ratio'][k] >= RELAY_TARGETS[k] else '**not met**'} |" for k in r["ratio"])
    when = measured_alone(alone, "relay")
    return f"""## 3. Signal relay per server CPU second: this server, Node `ws`, Python `websockets`, bare lws echo

{r['pairs']} connection pairs, {r['window']} messages in flight per connection (closed loop), {r['payload']}-byte SDP payload, the same
load generator (`bc-loadgen relay`) for every server. This server relays protocol v2 `signal` frames (it
parses and validates each, looks the target up and sends `{{"type":"signal","from":…}}` to it); the
Node and Python relays (bench/node-relay.js, bench/python-relay.py: minimal reference relays that only
answer `register` and forward `signal`, no ring, no signatures, no rate limits) relay the same frames
(`--protocol minimal`); the bare libwebsockets echo (bench/echo-server.c) sends each frame back to its
sender unparsed. All four servers run at once; each round measures each for {r['seconds']:.0f} s (after 1 s of
warm-up), the order rotating by one server per round. **Per server CPU second** = messages delivered /
the server process's CPU time (utime + stime of all its threads, `/proc/PID/stat`) over the measured
window: the load generator shares the 2 cores and is the bottleneck of the raw rate, so the server's
own CPU per message is what compares them.{when}{load_note(r)}

Where this server's CPU goes: about two thirds is the kernel's (a loopback send does the receiver's
TCP work too), so system calls per message decide the figure. This server frames the messages queued
for one peer itself and hands them to the socket in one write (`writeBatchBytes`, 16 KiB); the bare
echo writes each frame with its own `lws_write`, as libwebsockets' examples do. In user space a usual
`signal` frame is read without building a tree (`decodeUsualSignal`), about 3,200 instructions for
this frame (callgrind).

![Signal messages per second of server CPU, by server](img/relay-per-cpu.png)

| server | signals per server CPU s (median) | rounds | messages/s (median) | server CPU (cores busy, median) |
|---|---:|---|---:|---:|
{rows}

| ratio (median of per-round ratios) | | rounds | target | |
|---|---:|---|---:|---|
{ratio_rows}

"""


# MARK: 1 and 2. memory per idle peer, join latency

def measure_hold(kind, tmp, peers, samples, settle):
    proc, port = start_competitor(kind, tmp, peers)

    def loadgen(n, samples):
        return subprocess.Popen([str(RELEASE / "bc-loadgen"), "hold", "--port", str(port), "--peers", str(n), "--samples", str(samples),
                                 "--all-latencies", "--timeout", "1200"] + (["--protocol", "minimal"] if kind != "this" else []),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def finish(lg):
        lg.stdin.close()
        lg.wait(120)

    try:
        base = rss_kib(proc.pid)
        holder = loadgen(peers, 0)
        try:
            hold = read_json(holder)
            # Memory once the joins have settled: `settle` seconds after the last one, for every server
            # alike (this one returns freed heap memory every 10 s; Node's garbage collector runs too).
            time.sleep(settle)
            held = rss_kib(proc.pid)
            result = {"peers": peers, "baseKiB": base, "heldKiB": held, "bytesPerPeer": (held - base) * 1024 / peers,
                      "joinsPerSecond": hold["joinsPerSecond"], "failures": hold["failures"]}
            if samples:
                # This server pings a peer after 10 s of quiet: the samples run while those pings go out. They
                # come from a second load generator: the one holding N peers has pauses of its own (its
                # service thread also walks N connections), which showed as the servers' tail.
                sampler = loadgen(1, samples)
                try:
                    read_json(sampler)
                    sampler.stdin.write("go\n")
                    sampler.stdin.flush()
                    lat = read_json(sampler)
                finally:
                    finish(sampler)
                holder.stdin.write("go\n")   # zero samples: it reports the held peers it lost
                holder.stdin.flush()
                result.update({"samples": lat["samples"], "open": {k: lat[k] for k in ("p50us", "p90us", "p99us", "maxus")},
                               "register": lat["register"], "latenciesUs": lat["registerLatenciesUs"],
                               "heldLost": read_json(holder)["heldLost"]})
        finally:
            finish(holder)
        return result
    finally:
        stop(proc)


def bench_joins(tmp, sizes=(2000, 5000, 10000, 19500), latency_at=(10000, 19500), samples=1000, settle=11,
                kinds=("this", "node")):
    """For each N (smallest first) and each server in turn: a fresh server, N idle peers held (64 joining at
    once), its RSS before and with them; at the N in `latency_at`, then `samples` joins one at a time."""
    rows = {k: [] for k in kinds}
    load = [os.getloadavg()[0]]
    for n in sizes:
        for k in kinds:
            rows[k].append(measure_hold(k, tmp, n, samples if n in latency_at else 0, settle))
            # What is measured so far, kept at once: a later N may not finish on a loaded machine.
            (tmp / "joins-partial.json").write_text(json.dumps({"sizes": list(sizes), "latencyAt": list(latency_at),
                                                                "samples": samples, "settle": settle, "rows": rows}))
    load.append(os.getloadavg()[0])
    result = {"sizes": list(sizes), "latencyAt": list(latency_at), "samples": samples, "settle": settle, "rows": rows, "load": load}
    (tmp / "joins.json").write_text(json.dumps(result))   # the raw results, for a look or a re-plot
    return result


def joins_report(j, alone=False):
    kinds = list(j["rows"])
    mem_rows = []
    for i, n in enumerate(j["sizes"]):
        cells = []
        for k in kinds:
            r = j["rows"][k][i]
            cells.append(f"{r['baseKiB'] / 1024:.1f} → {r['heldKiB'] / 1024:.1f} MiB | **{r['bytesPerPeer'] / 1024:.2f} KiB** | {r['joinsPerSecond']:,.0f}")
        mem_rows.append(f"| {n:,} | " + " | ".join(cells) + " |")
    largest = {k: j["rows"][k][-1] for k in kinds}
    ours = largest["this"]["bytesPerPeer"] / 1024
    lat_rows, ratio_lines = [], []
    for i, n in enumerate(j["sizes"]):
        if n not in j["latencyAt"]:
            continue
        for k in kinds:
            r = j["rows"][k][i]
            g, o = r["register"], r["open"]
            lat_rows.append(f"| {NAMES[k]} | {n:,} | {g['p50us']:,.0f} µs | {g['p90us']:,.0f} µs | {g['p99us']:,.0f} µs | {g['maxus']:,.0f} µs | "
                            f"{o['p50us']:,.0f} / {o['p99us']:,.0f} µs | {r['heldLost']} |")
        if "node" in kinds:
            ratio = j["rows"]["this"][i]["register"]["p99us"] / j["rows"]["node"][i]["register"]["p99us"]
            ratio_lines.append(f"at {n:,} peers **{ratio:.2f}×** ({'met' if ratio <= JOIN_P99_TARGET else '**not met**'})")
    when = measured_alone(alone, "joins")
    head = " | ".join(f"{NAMES[k]}: RSS before → with peers | per peer | joins/s filling" for k in kinds)
    return f"""## 1. Idle registered peers: memory per peer, this server and the Node `ws` relay

For each N, smallest first, a fresh server of each kind; `bc-loadgen hold` registers N idle peers (64
joining at once; `--protocol minimal` for the Node relay, bench/node-relay.js) and the server's RSS
(`VmRSS`) is read before, and {j['settle']} s after the last peer registered (this server returns freed heap
memory to the system every 10 s, `--trim-memory`; Node's garbage collector has run by then). Memory per peer = (RSS with peers − RSS
before) / N: libwebsockets' (or Node's) connection state and the server's own per-peer state (for this
server: session, ring entry, record, key binding); the kernel's socket buffers are not in RSS.
permessage-deflate is off in both. About 19,500 is the most one process holds here: every process,
server and load generator alike, is capped at 20,000 open files (docs/operations.md, "Sizing").{when}{load_note(j)}

![RSS per idle registered peer against N](img/memory-per-peer.png)

| peers | {head} |
|---:|{'---:|---:|---:|' * len(kinds)}
{chr(10).join(mem_rows)}

At {j['sizes'][-1]:,} peers this server holds each idle registered peer in **{ours:.2f} KiB** (target ≤ {MEMORY_TARGET_KIB:.0f} KiB:
{'met' if ours <= MEMORY_TARGET_KIB else '**not met**'}){f"; the Node relay in {largest['node']['bytesPerPeer'] / 1024:.2f} KiB" if 'node' in kinds else ''}.

## 2. Join latency at {' and '.join(f'{n:,}' for n in j['latencyAt'])} peers, this server and the Node `ws` relay

On the servers of section 1 at those N: {j['samples']:,} joins one after another from a second `bc-loadgen`
process (the one holding the N peers has pauses of its own: its service thread also walks N
connections). Each sample peer closes after its join, so N stays put; this server pushes each join's
and leave's ring changes to the affected peers. The samples start {j['settle']} s after the last peer joined, so
this server's liveness pings (after 10 s of quiet) and their pongs run during them. **Join** = `register` sent → `registered` received (the issue's
measure). For this server the `register` answers the server's `challenge` and carries an Ed25519
signature, which the server verifies, and the `registered` carries a certificate the server signs
(docs/protocol.md, "Key-pair identity"); the Node relay checks nothing. The last column is the whole
join from the WebSocket's opening: for this server it adds the `challenge` frame and the load
generator's key generation and signing; for the Node relay the client sends `register` at once.
This server runs with `--idle-timeout 120` here (pings still go out after 10 s of quiet), so that a load
generator starved of CPU by other work on this shared machine does not lose held peers to late pongs;
the last column counts held peers that closed anyway before the samples ended.

![Join latency distribution](img/join-latency-cdf.png)

| server | peers held | p50 | p90 | p99 | max | from open: p50 / p99 | held peers lost |
|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(lat_rows)}

p99 of this server / p99 of the Node relay (target ≤ {JOIN_P99_TARGET:.0f}×): {'; '.join(ratio_lines)}.

"""
