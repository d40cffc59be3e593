"""Section 7: the one JSON path versus the old scanner + JSONDecoder path (bc-jsonbench; bench/run.py)."""
import datetime
import json
import re
import subprocess

from common import ROOT, RELEASE


def callgrind_instructions(args):
    """Instructions (callgrind's Ir) a bc-jsonbench run executes."""
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", str(RELEASE / "bc-jsonbench")] + args,
                       capture_output=True, text=True, timeout=900)
    m = re.search(r"Collected : (\d+)", r.stderr)
    if r.returncode != 0 or not m:
        raise RuntimeError(f"callgrind failed: {r.stderr[-500:]}")
    return int(m.group(1))


def bench_json(iterations, rounds, fuzz, callgrind_iterations):
    """The old and the new client-frame decoding path on a fixed mix of frames: first a check that both
    give the same answer on the mix and on `fuzz` mutated frames, then ns per frame (old and new
    alternating within each round), then instructions per frame under callgrind (when installed)."""
    exe = str(RELEASE / "bc-jsonbench")
    check = json.loads(subprocess.run([exe, "check", "--fuzz", str(fuzz)], capture_output=True, text=True,
                                      timeout=1800).stdout.strip().splitlines()[-1])
    if check["mismatches"]:
        raise RuntimeError(f"old and new decoding disagree: {check}")
    r = subprocess.run([exe, "time", "--iterations", str(iterations), "--rounds", str(rounds)], capture_output=True,
                       text=True, timeout=1800, check=True)
    rows = [json.loads(line) for line in r.stdout.strip().splitlines()]
    have_valgrind = subprocess.run(["sh", "-c", "command -v valgrind"], capture_output=True).returncode == 0
    if have_valgrind:
        # Two runs, of W and W + N decodes: their difference is N decodes, without the start-up and the
        # one-time costs of the first decodes (type metadata, first allocations).
        n, warm = callgrind_iterations, 100
        for row in rows:
            frame = [] if row["frame"] == "mix" else ["--frame", row["frame"]]
            per = 1 if frame else row["kinds"]
            for p in ("old", "new"):
                short = callgrind_instructions(["run", "--path", p, "--iterations", str(warm)] + frame)
                total = callgrind_instructions(["run", "--path", p, "--iterations", str(warm + n)] + frame)
                row[p + "Ir"] = (total - short) / (n * per)
    return {"rows": rows, "check": check, "iterations": iterations, "rounds": rounds, "callgrind": have_valgrind,
            "callgrindIterations": callgrind_iterations}


def json_report(j, alone=False):
    def line(r):
        name = "**mix (each kind once)**" if r["frame"] == "mix" else r["frame"]
        size = "" if r["frame"] == "mix" else f"{r['bytes']}"
        ir = (f" | {r['oldIr']:,.0f} | {r['newIr']:,.0f} | {r['oldIr'] / r['newIr']:.2f}×" if j["callgrind"] else " | | |")
        return f"| {name} | {size} | {r['oldNs']:,.0f} | {r['newNs']:,.0f} | {r['ratio']:.2f}×{ir} |"
    rows = "\n".join(line(r) for r in j["rows"])
    c = j["check"]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    return f"""## 7. Decoding client frames: one JSON path versus scanner + JSONDecoder

`bc-jsonbench` (Sources/bc-jsonbench) decodes a fixed mix of protocol v2 client frames with the old path
(a marked copy kept only in the benchmark: the validating scanner, then, for every frame that is not a
`signal`, a second parse by Foundation's `JSONDecoder` through a `try?` cascade) and with the new one
(`ClientMessage.decode`: one pass that validates the frame, builds a tree of every top-level member but
`signal`, and leaves `signal` as the bytes the relay forwards). Measured {datetime.date.today().isoformat()}, commit `{commit}`{
" (on its own, with `bench/run.py --only json`, not in the run of the sections above)" if alone else ""}.
Before timing, both paths decoded {c['seeds']} frames (the mix and frames at the edges of the rules) and
{c['fuzz']:,} mutations of them (seed {c['seed']}; {c['accepted']:,} of the {c['checked']:,} frames accepted) with the same
result, message or error code and text, every time. Time: {j['iterations']:,} decodes of one frame in a row, old
and new alternating, {j['rounds']} rounds; medians (the ratio is the median of the per-round ratios).
Instructions: callgrind's count for {j['callgrindIterations']:,} decodes (a run of 100 + N decodes minus a run of 100),
per frame. The count is exact and does not depend on the other work on this shared machine, so it is
the number to compare; the times move with the machine's load.

| frame | bytes | old ns | new ns | old / new time | old instructions | new instructions | old / new instructions |
|---|---:|---:|---:|---:|---:|---:|---:|
{rows}

`signal` frames (the relay's hot path) were decoded by the scan alone before too; they gain from the
faster string scan (plain bytes eight at a time). Every other message skips the second parse, which
was most of its cost. Frames the old path refused from the scan alone (not JSON, a repeated key) cost
about the same: the single pass builds the members' values before the repeated key is judged.

"""


