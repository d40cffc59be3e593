"""Section 8: the server's instructions per join, counted by callgrind (exact and repeatable whatever
else the machine runs, unlike times). The server runs under `valgrind --tool=callgrind`; bc-loadgen
registers `peers` idle peers (64 in parallel), then `samples` more one after another (each closes after
its join). Two runs, with `small` and `large` held peers, give the marginal cost of one join at that size
of ring (its ring changes and the pushes to the affected peers included) without the start-up."""
import json
import re
import subprocess
import tempfile

from common import RELEASE


def server_instructions(release, peers, samples):
    """Instructions (callgrind's Ir) a server executes from start to a graceful stop around one hold run."""
    with tempfile.TemporaryDirectory() as tmp:
        # A copy without debug information: valgrind 3.19 (Debian 12) gives up on the DWARF 5 that Swift 6
        # writes for the server ("Possibly corrupted debuginfo file"); the symbols stay, the count is the same.
        server = f"{tmp}/browsercloud"
        subprocess.run(["strip", "--strip-debug", "-o", server, str(release / "browsercloud")], check=True)
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", server, "serve",
               "--host", "127.0.0.1", "--port", "0", "--log-level", "error", "--secret-file", f"{tmp}/secret",
               "--rate-limit", "1000000", "--rate-burst", "1000000", "--max-peers", str(peers + samples + 100),
               "--max-connections", str(peers + samples + 500)]
        server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = server.stdout.readline()
            port = int(line.strip().rsplit(":", 1)[-1].split()[-1])
            lg = subprocess.Popen([str(release / "bc-loadgen"), "hold", "--port", str(port), "--peers", str(peers),
                                   "--samples", str(samples)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            hold = json.loads(lg.stdout.readline())
            if "error" in hold:
                raise RuntimeError(hold)
            lg.stdin.write("go\n")
            lg.stdin.flush()
            json.loads(lg.stdout.readline())
            lg.stdin.close()
            lg.wait(300)
        finally:
            server.terminate()
            _, err = server.communicate(timeout=600)
        m = re.search(r"Collected : (\d+)", err)
        if not m:
            raise RuntimeError(f"callgrind gave no count: {err[-500:]}")
        return int(m.group(1))


def bench_joincost(small=1000, large=2000, samples=300, releases=None):
    """Per build (name → release directory): instructions of the two runs and per join in between."""
    have = subprocess.run(["sh", "-c", "command -v valgrind"], capture_output=True).returncode == 0
    if not have:
        return None
    out = {}
    for name, release in (releases or {"this build": RELEASE}).items():
        a = server_instructions(release, small, samples)
        b = server_instructions(release, large, samples)
        out[name] = {"small": a, "large": b, "perJoin": (b - a) / (large - small)}
    return {"small": small, "large": large, "samples": samples, "builds": out}


def joincost_report(j):
    if j is None:
        return "## 8. Server instructions per join\n\nNot measured: valgrind is not installed.\n\n"
    rows = "\n".join(f"| {name} | {r['small'] / 1e9:.3f} G | {r['large'] / 1e9:.3f} G | {r['perJoin']:,.0f} |"
                     for name, r in j["builds"].items())
    return f"""## 8. Server instructions per join (callgrind)

The server under `valgrind --tool=callgrind`, from start to a graceful stop: bc-loadgen registers
{j['small']:,} (then, in a second run, {j['large']:,}) idle peers, 64 in parallel, then {j['samples']} more one after
another. The difference of the two runs over the {j['large'] - j['small']:,} extra peers is the cost of one join at
that size of ring, with its ring changes and the updates pushed to the affected peers (IDs are drawn at
random, so the count moves by a few per cent between runs). Instruction counts do not depend on the
other work on this shared machine.

| build | {j['small']:,} peers | {j['large']:,} peers | instructions per join |
|---|---:|---:|---:|
{rows}

"""
