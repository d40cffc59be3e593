"""Section 12 of make bench: the thesis's evaluation, in browsers (issue 15). The standard scene as 25, 400
and 2,500 tiles on 8 Chromium pages (one Web Worker each) in the bench's own network namespace, next to
the same jobs on 8 native peers (one worker thread each): makespan, per-task round trip (p50, p90) and
tasks per peer. The jobs are submitted by one more page that computes nothing, the same for both rings,
so every task crosses the network and is timed from its task message to its result; the native ring also
gets the same jobs from a native submitter (`browsercloud submit raytrace`). Every image's SHA-256 must
equal `render`'s. Results also go to .build/bench-results/browsers.json (bench/plots.py draws from it)."""
import datetime
import json
import os
import pathlib
import resource
import statistics
import subprocess

from browsers import BrowserLab, SCENES, describe_scene, parse_discovery, parse_submit, quantile
from common import ROOT, RELEASE, cpu_model

RESULTS = ROOT / ".build" / "bench-results"


def jobs(lab, submitter, scene, reference, tile_counts, rounds, peers, label, native_submit=None):
    rows = {t: {"makespans": [], "rtts": [], "perPeer": [], "discovery": []} for t in tile_counts}
    for _ in range(rounds):
        for tiles in tile_counts:
            r = lab.page_job(submitter, scene, tiles, peers)
            if r["sha256"] != reference:
                raise RuntimeError(f"the {tiles}-tile job on {label} rendered other bytes: {r['sha256']}, render's {reference}")
            row = rows[tiles]
            row["makespans"].append(r["makespan"])
            row["discovery"].append(r["stats"]["discoveryMs"] / 1000)
            row["rtts"] += r["rtts"]
            row["perPeer"].append(sorted(r["tasksPerPeer"].values(), reverse=True))
            print(f"section 12, {label}, {tiles} tiles: makespan {r['makespan']:.2f} s, tasks per peer {row['perPeer'][-1]}", flush=True)
            if native_submit:
                makespan, per_peer, discovery = native_submit(tiles)
                row.setdefault("nativeSubmitMakespans", []).append(makespan)
                row.setdefault("nativeSubmitDiscovery", []).append(discovery)
                row.setdefault("nativeSubmitPerPeer", []).append(sorted(per_peer.values(), reverse=True))
                print(f"section 12, {label}, native submitter, {tiles} tiles: makespan {makespan:.2f} s (discovery {discovery:.2f} s)", flush=True)
    out = []
    for tiles, row in rows.items():
        entry = {"tiles": tiles, "makespan": statistics.median(row["makespans"]), "makespans": row["makespans"],
                 "discovery": statistics.median(row["discovery"]), "rttP50": quantile(row["rtts"], 0.5) / 1000,
                 "rttP90": quantile(row["rtts"], 0.9) / 1000, "results": len(row["rtts"]), "perPeer": row["perPeer"]}
        if "nativeSubmitMakespans" in row:
            entry |= {"nativeSubmitMakespan": statistics.median(row["nativeSubmitMakespans"]),
                      "nativeSubmitMakespans": row["nativeSubmitMakespans"], "nativeSubmitPerPeer": row["nativeSubmitPerPeer"],
                      "nativeSubmitDiscovery": row["nativeSubmitDiscovery"]}
        out.append(entry)
    return out


def bench_browsers(tmp, rounds=2, tile_counts=(25, 400, 2500), peers=8, scene="standard"):
    tmp = pathlib.Path(tmp)
    load = os.getloadavg()[0]
    exe = RELEASE / "browsercloud"
    png = tmp / f"{scene}-render-browsers.png"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([str(exe), "render", "--scene", scene, "--scenes", str(SCENES), "--out", str(png)],
                       capture_output=True, text=True, timeout=900, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    one_core_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    reference = r.stdout.split("pixels sha256 ", 1)[1].split(")")[0]
    one_core = float(r.stdout.rsplit(" in ", 1)[1].split()[0])

    def native_submit(tiles):
        out = tmp / f"browsers-native-{tiles}.png"
        stdout = lab.submit(["raytrace", "--scene", scene, "--scenes", SCENES, "--tiles", tiles, "--peers", peers,
                             "--out", out, "--discovery-wait", "30"])
        if out.read_bytes() != png.read_bytes():
            raise RuntimeError(f"the native submitter's {tiles}-tile image differs from render's")
        return (*parse_submit(stdout), parse_discovery(stdout))

    with BrowserLab(tmp, index=12) as lab:
        submitter = lab.submitter()
        pages = lab.pages(peers)
        lab.wait_ring()
        browsers = jobs(lab, submitter, scene, reference, tile_counts, rounds, peers, f"{peers} Chromium pages")
        lab.close_pages(pages)
        lab.start_natives(peers)
        lab.wait_ring()
        natives = jobs(lab, submitter, scene, reference, tile_counts, rounds, peers, f"{peers} native peers", native_submit)
    result = {"measured": datetime.date.today().isoformat(), "cpu": cpu_model(), "scene": scene, "peers": peers, "rounds": rounds,
              "oneCore": one_core, "oneCoreCPU": one_core_cpu, "sha256": reference, "browsers": browsers, "natives": natives,
              "load": [load, os.getloadavg()[0]]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "browsers.json").write_text(json.dumps(result, indent=1))
    return result


def browsers_report(b):
    def rows(entries, what):
        return "\n".join(
            f"| {what} | {e['tiles']:,} | {e['makespan']:.2f} s | {', '.join(f'{x:.2f}' for x in e['makespans'])} | "
            f"{e['rttP50'] * 1000:.0f} ms / {e['rttP90'] * 1000:.0f} ms | {'; '.join(' '.join(map(str, p)) for p in e['perPeer'])} |"
            for e in entries)
    native_submit = "\n".join(
        f"| {e['tiles']:,} | {e['nativeSubmitMakespan']:.2f} s | {', '.join(f'{x:.2f}' for x in e['nativeSubmitMakespans'])} | "
        f"{', '.join(f'{x:.2f} s' for x in e.get('nativeSubmitDiscovery', []))} | "
        f"{'; '.join(' '.join(map(str, p)) for p in e['nativeSubmitPerPeer'])} |" for e in b["natives"])
    first, last = b["browsers"][0], b["browsers"][-1]
    nfirst, nlast = b["natives"][0], b["natives"][-1]
    return f"""## 12. The thesis's evaluation, in browsers

The thesis's experiment on real browsers: {describe_scene(b['scene'])} (`render` on one core:
{b['oneCoreCPU']:.2f} CPU seconds; {b['oneCore']:.2f} s wall-clock on this loaded machine) as 25, 400 and 2,500 tiles on {b['peers']} headless Chromium pages (one browser context and one
Web Worker each, the JavaScript kernel `raytracer.js`, WebRTC data channels between them) in the bench's
own network namespace, next to the same jobs on {b['peers']} native peers (`browsercloud peer --workers 1`,
the Swift kernel, WebSockets). The jobs are submitted with `bp.raytrace` from one more page that computes
nothing (0 workers), the same page for both rings, so every task crosses the network; a task's round
trip is the time from its task message leaving the submitter to its result arriving (the scene goes
with each peer's first task). Everything shares this machine's {os.cpu_count()} cores (measured {b['measured']}); {b['rounds']} round(s),
the tilings alternating within each round; every image's SHA-256 equals `render`'s. The browsers' ring
runs first, then the native peers' ring (the worker pages closed, the native peers started, the same
submitting page), so a change of the machine's other load between the two shows in the comparison.

| peers | tiles | makespan (median) | rounds | task round trip p50 / p90 | tasks per peer (each round) |
|---|---:|---:|---|---:|---|
{rows(b['browsers'], f"{b['peers']} Chromium")}
{rows(b['natives'], f"{b['peers']} native")}

Makespan with 2,500 tiles / with 25 tiles: **{last['makespan'] / first['makespan']:.2f}** on browsers,
**{nlast['makespan'] / nfirst['makespan']:.2f}** on native peers (medians). Browsers / native peers at the
same tiling: {', '.join(f"{e['tiles']:,} tiles {e['makespan'] / n['makespan']:.2f}×" for e, n in zip(b['browsers'], b['natives']))}.
The makespan includes discovery (median {first['discovery']:.2f} s on browsers, {nfirst['discovery']:.2f} s on native peers at 25 tiles).

The same jobs on the native ring from a native submitter (`browsercloud submit raytrace --peers {b['peers']}`):

| tiles | makespan (median) | rounds | discovery (each round) | tasks per peer (each round) |
|---:|---:|---|---|---|
{native_submit}

The machine's load average (1 min) was {b['load'][0]:.1f} at the section's start and {b['load'][1]:.1f} at its end
(other work shares this machine).

![Makespan against tiles, browsers and native peers](img/browsers-makespan.png)

"""
