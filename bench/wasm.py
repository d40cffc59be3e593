"""Section 11 of make bench: WebAssembly tasks (docs/jobs.md, "WebAssembly tasks").

One core, side by side in one run: the standard scene rendered whole by the native Swift kernel
(`browsercloud render`, one thread), by the ray tracer module in WasmKit (`browsercloud wasm-run`, one
task = the whole image; and bc-wasmbench with fuel metering off and on), and in Chromium by the module
and by the JavaScript kernel (one Web Worker each, bench/browsers.py). Every output's SHA-256 must equal
`render`'s. Then ray-trace jobs on a ring of native peers, and on a mixed ring of Chromium pages and
native peers, with the `wasm` runtime next to the `raytrace` runtime. Results also go to
.build/bench-results/wasm.json (bench/plots.py draws from it)."""
import base64
import datetime
import hashlib
import json
import os
import pathlib
import resource
import statistics
import struct
import subprocess

from browsers import BrowserLab, SCENES, describe_scene, need_raytracer_module, parse_submit
from common import ROOT, RELEASE, cpu_model

RESULTS = ROOT / ".build" / "bench-results"
RUNTIMES = [  # key, label in the report
    ("native", "native Swift kernel (`browsercloud render`)"),
    ("wasmkit", "Wasm in WasmKit (`browsercloud wasm-run`, fuel metered; incl. compile)"),
    ("fuelOff", "WasmKit, fuel metering off (bc-wasmbench)"),
    ("fuelOn", "WasmKit, fuel metering on (bc-wasmbench)"),
    ("chromiumWasm", "Wasm in Chromium (one Web Worker)"),
    ("chromiumJs", "JavaScript in Chromium (`raytracer.js`, one Web Worker)"),
]


def run(cmd, timeout=3600):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[0]} {cmd[1]} failed ({r.returncode}): {r.stderr[-2000:]} {r.stdout[-2000:]}")
    return r.stdout


def run_cpu(cmd, timeout=3600):
    """run(cmd) and the CPU seconds (user + system) the process used: the one-core figures of this section,
    which the machine's other load does not stretch as it stretches wall-clock time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = run(cmd, timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return out, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def check(what, sha, reference):
    if sha != reference:
        raise RuntimeError(f"{what} rendered other bytes: SHA-256 {sha}, render's {reference}")


def one_core(tmp, lab, module, scene, rounds, fuel_rows=None):
    """Seconds per runtime per round (alternating within each round), compile times, the reference SHA-256."""
    exe, bench = RELEASE / "browsercloud", RELEASE / "bc-wasmbench"
    shared = SCENES / f"{scene}.json"
    width, height = (json.loads(shared.read_text())[k] for k in ("width", "height"))
    inputs = tmp / f"{scene}-whole.b64"
    inputs.write_text(base64.b64encode(struct.pack("<4I", 0, 0, width, height)).decode() + "\n")
    outputs = tmp / f"{scene}-whole.out.b64"
    # Fuel metering off vs on runs the top `fuel_rows` rows of the image (default all of them): its
    # reference is `render --tile` of the same strip.
    strip = f"0,0,{width},{min(height, fuel_rows or height)}"
    out = run([exe, "render", "--scene", scene, "--scenes", SCENES, "--out", tmp / f"{scene}-strip.png", "--tile", strip])
    strip_reference = out.split("pixels sha256 ", 1)[1].split(")")[0]
    times = {k: [] for k, _ in RUNTIMES}   # wall-clock seconds of the work itself, as each runtime reports it
    cpu = {k: [] for k, _ in RUNTIMES}     # CPU seconds of the process (Chromium: its whole process tree)
    compile_times = {"fuelOff": [], "fuelOn": [], "chromiumWasm": []}
    instantiate = []
    reference = None
    for i in range(rounds):
        out, seconds = run_cpu([exe, "render", "--scene", scene, "--scenes", SCENES, "--out", tmp / f"{scene}-render.png"])
        cpu["native"].append(seconds)
        sha = out.split("pixels sha256 ", 1)[1].split(")")[0]
        reference = reference or sha
        check("render", sha, reference)
        times["native"].append(float(out.rsplit(" in ", 1)[1].split()[0]))

        # The deadline is a fuel budget: large enough never to stop the whole image.
        out, seconds = run_cpu([exe, "wasm-run", "--module", module, "--shared", shared, "--inputs", inputs, "--out", outputs,
                                "--deadline", "1000000"])
        cpu["wasmkit"].append(seconds)
        times["wasmkit"].append(float(out.rsplit(" in ", 1)[1].split()[0]))
        check("wasm-run", hashlib.sha256(base64.b64decode(outputs.read_text().strip())).hexdigest(), reference)

        # One process per mode (its CPU time is that mode's), the order alternating by round.
        for mode in (("off", "on") if i % 2 == 0 else ("on", "off")):
            out, seconds = run_cpu([bench, "--module", module, "--shared", shared, "--tile", strip, "--modes", mode])
            r = json.loads(out)
            key = "fuelOn" if r["fuel"] else "fuelOff"
            cpu[key].append(seconds)
            check(f"bc-wasmbench (fuel {'on' if r['fuel'] else 'off'})", r["sha256"], strip_reference)
            times[key].append(r["runSeconds"])
            compile_times[key].append(r["compileSeconds"])

        for runtime, key in (("wasm", "chromiumWasm"), ("js", "chromiumJs")):
            r = lab.one_core(runtime, scene)
            check(f"Chromium ({runtime})", r["sha256"], reference)
            times[key].append(r["runSeconds"])
            cpu[key].append(r["cpuSeconds"])
            if runtime == "wasm":
                compile_times[key].append(r["compileSeconds"])
                instantiate.append(r["instantiateSeconds"])
        print(f"section 11, round {i + 1}: " + ", ".join(f"{k} {cpu[k][-1]:.2f} s CPU ({times[k][-1]:.2f} s)" for k in times), flush=True)
    fuel_keys = ("fuelOff", "fuelOn")
    ratios = {k: [t / n for t, n in zip(v, cpu["native"])] for k, v in cpu.items() if k not in fuel_keys}
    fuel = [on / off for on, off in zip(cpu["fuelOn"], cpu["fuelOff"])]
    return {"scene": scene, "width": width, "height": height, "rounds": rounds, "sha256": reference, "strip": strip,
            "cpuSeconds": cpu, "median": {k: statistics.median(v) for k, v in cpu.items()},
            "wallSeconds": times, "wallMedian": {k: statistics.median(v) for k, v in times.items()},
            "ratio": {k: statistics.median(v) for k, v in ratios.items()}, "ratios": ratios,
            "compileSeconds": {k: statistics.median(v) for k, v in compile_times.items()},
            "instantiateSeconds": statistics.median(instantiate), "fuelRatio": statistics.median(fuel), "fuelRatios": fuel}


def ring_jobs(tmp, lab, module, scene, tiles, rounds, label, natives, pages):
    """`submit raytrace` (runtime raytrace, then wasm, alternating) on the lab's current ring."""
    reference = tmp / f"{scene}-render.png"
    kinds = {n.peer_id: "native" for n in natives} | {p[2]: "browser" for p in pages}
    peers = len(natives) + len(pages)
    rows = {}
    for _ in range(rounds):
        for runtime in ("raytrace", "wasm"):
            out_png = tmp / f"ring-{runtime}.png"
            args = ["raytrace", "--scene", scene, "--scenes", SCENES, "--tiles", tiles, "--peers", peers, "--out", out_png,
                    "--discovery-wait", "30"] + (["--runtime", "wasm", "--module", module] if runtime == "wasm" else [])
            row = rows.setdefault(runtime, {"makespans": [], "native": [], "browser": [], "perPeer": [], "failures": []})
            # A job that fails (e.g. discovery finds no free peer on a loaded machine) is recorded and
            # reported, not averaged; an image other than render's stops the bench.
            try:
                stdout = lab.submit(args)
            except RuntimeError as error:
                row["failures"].append(str(error)[-300:])
                print(f"section 11, {label} ring, {runtime}: FAILED {error}", flush=True)
                continue
            makespan, per_peer = parse_submit(stdout)
            if out_png.read_bytes() != reference.read_bytes():
                raise RuntimeError(f"the {runtime} job on the {label} ring rendered an image other than render's")
            row["makespans"].append(makespan)
            for kind in ("native", "browser"):
                row[kind].append(sum(n for p, n in per_peer.items() if kinds.get(p) == kind))
            row["perPeer"].append(sorted(per_peer.values(), reverse=True))
            print(f"section 11, {label} ring, {runtime}: makespan {makespan:.2f} s, tasks per peer {row['perPeer'][-1]}", flush=True)
    for row in rows.values():
        row["makespan"] = statistics.median(row["makespans"]) if row["makespans"] else float("nan")
    ratio = rows["wasm"]["makespan"] / rows["raytrace"]["makespan"]
    return {"label": label, "natives": len(natives), "browsers": len(pages), "tiles": tiles, "rounds": rounds, "rows": rows,
            "ratio": ratio}


def bench_wasm(tmp, rounds=3, ring_rounds=2, ring_tiles=100, ring_natives=2, ring_pages=2, scene="standard", fuel_rows=None):
    module = need_raytracer_module()
    tmp = pathlib.Path(tmp)
    load = os.getloadavg()[0]
    with BrowserLab(tmp) as lab:
        cores = one_core(tmp, lab, module, scene, rounds, fuel_rows)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "wasm-one-core.json").write_text(json.dumps(cores, indent=1))   # kept if the ring jobs fail
        # A page that computes nothing lets the lab see the ring (the server is reachable only inside the namespace).
        lab.submitter()
        natives = lab.start_natives(ring_natives)
        lab.wait_ring()
        native_ring = ring_jobs(tmp, lab, module, scene, ring_tiles, ring_rounds, "native", natives, [])
        pages = lab.pages(ring_pages)
        lab.wait_ring()
        mixed_ring = ring_jobs(tmp, lab, module, scene, ring_tiles, ring_rounds, "mixed", natives, pages)
    result = {"measured": datetime.date.today().isoformat(), "cpu": cpu_model(), "oneCore": cores, "rings": [native_ring, mixed_ring],
              "load": [load, os.getloadavg()[0]]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "wasm.json").write_text(json.dumps(result, indent=1))
    return result


def wasm_report(w):
    c = w["oneCore"]
    rows = "\n".join(
        f"| {label} | {c['median'][k]:.2f} s | {', '.join(f'{x:.2f}' for x in c['cpuSeconds'][k])} | {c['wallMedian'][k]:.2f} s | {c['ratio'][k]:.2f}× |"
        for k, label in RUNTIMES if k in c["ratio"])
    fuel_rows = "\n".join(
        f"| {label} | {c['median'][k]:.2f} s | {', '.join(f'{x:.2f}' for x in c['cpuSeconds'][k])} | {c['wallMedian'][k]:.2f} s |"
        for k, label in RUNTIMES if k not in c["ratio"])
    ring_rows = []
    for ring in w["rings"]:
        for runtime in ("raytrace", "wasm"):
            r = ring["rows"][runtime]
            where = f"{ring['natives']} native" + (f" + {ring['browsers']} Chromium" if ring["browsers"] else "")
            split = f"{statistics.median(r['native']):.0f} / {statistics.median(r['browser']):.0f}" if ring["browsers"] and r["native"] else "—"
            failed = f" ({len(r['failures'])} failed: {r['failures'][0].split(': ')[-1].strip()})" if r.get("failures") else ""
            median = f"{r['makespan']:.2f} s" if r["makespans"] else "failed"
            ring_rows.append(f"| {where} | `{runtime}` | {median} | {', '.join(f'{x:.2f}' for x in r['makespans'])}{failed} | "
                             f"{split} | {'; '.join(' '.join(map(str, p)) for p in r['perPeer'])} |")
    native_ring, mixed_ring = w["rings"]
    return f"""## 11. WebAssembly tasks: one core, fuel metering, jobs

{describe_scene(c['scene']).capitalize()} rendered whole, as one task, on
one core by each runtime, side by side in one run (measured {w['measured']}; {c['rounds']} round(s), the runtimes
alternating within each round). The figures are **CPU seconds** (user + system) of the process that
renders, from the kernel's accounting (`getrusage` of the child; for Chromium, `/proc` of its whole
process tree while the worker runs, so the fetches, the compile and V8's background threads count),
because this machine is shared and its other load stretches wall-clock time unevenly; the wall-clock
time of the work itself, as each runtime reports it (Chromium: `performance.now()` in the worker), is
shown next to it. The ratio is the median of the per-round ratios of CPU seconds to the native kernel's.
Every output's SHA-256 equals `render`'s pixels ({c['sha256'][:16]}…), or the bench fails.
WasmKit runs the module `make wasm` builds (`.build/wasm/raytracer.wasm`; shared bytes = the scene's JSON
text, input = the tile 0, 0, {c['width']}, {c['height']}); Chromium runs it and `Public/raytracer.js` in one
module Web Worker of a headless page in the bench's own network namespace, timed inside the worker with
`performance.now()`.

| runtime | CPU s (median) | rounds (CPU s) | wall s (median) | vs native (CPU) |
|---|---:|---|---:|---:|
{rows}

Compile times, not in the figures above (median): WasmKit {c['compileSeconds']['fuelOff']:.3f} s (parse and
eager compile, fuel off) / {c['compileSeconds']['fuelOn']:.3f} s (on); Chromium {c['compileSeconds']['chromiumWasm']:.3f} s
(`compileModule`: checks, memory limit, `WebAssembly.compile`), then {c['instantiateSeconds'] * 1000:.2f} ms to instantiate.
`wasm-run`'s time includes its compile; the Chromium Wasm run includes one instantiation (`runTask`).

The cost of WasmKit's fuel metering: the tile {c['strip']} (x, y, width, height; checked against
`render --tile`), run by bc-wasmbench in one process with the engine's fuel metering off and on, the
order alternating by round, one process per run. Both take the same steps; only `EngineConfiguration.fuelMetering` differs
(on: an unbounded budget, so it never stops the run). Native peers always meter (the deadline).

| WasmKit, that tile | CPU s (median) | rounds (CPU s) | wall s of the run (median) |
|---|---:|---|---:|
{fuel_rows}

**Fuel metering on / off: {c['fuelRatio']:.3f}** in CPU seconds (median of per-round ratios {', '.join(f'{x:.3f}' for x in c['fuelRatios'])}).

Ray-trace jobs of the same scene in {native_ring['tiles']} tiles, submitted by `browsercloud submit raytrace
[--runtime wasm]` (a native peer with no workers) in the namespace: the `raytrace` runtime (Swift kernel on
native peers, `raytracer.js` in pages) next to the `wasm` runtime (the module in WasmKit on native peers,
in V8 in pages), alternating, {native_ring['rounds']} round(s); each peer has one worker; every image equals `render`'s.

| ring | runtime | makespan (median) | rounds | tasks native / browsers | tasks per peer (each round) |
|---|---|---:|---|---|---|
{chr(10).join(ring_rows)}

`wasm` / `raytrace` makespan (ratio of the medians): {"; ".join(f"**{r['ratio']:.2f}×** on the {r['label']} ring" if r['ratio'] == r['ratio'] else f"none on the {r['label']} ring (a job failed)" for r in w['rings'])}.

The machine's load average (1 min) was {w['load'][0]:.1f} at the section's start and {w['load'][1]:.1f} at its end
(other work shares this machine: compare the ratios of one round, not absolute figures).

![One core: seconds per runtime](img/wasm-one-core.png)

"""
