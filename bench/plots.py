#!/usr/bin/env python3
"""The benchmark plots of docs/ (make bench runs this with .build/bench-venv's Python, which has matplotlib).

Each plot is one function that reads one JSON results file a section of bench/run.py wrote into
.build/bench-results/ and draws one PNG into docs/img/, so plots can be redrawn without rerunning the
benchmarks. A plot whose results file is missing is skipped with a note. Add a plot: write a function
taking (results, out) and list it in PLOTS. The plots of sections 1-3 (relay_per_cpu, join_latency_cdf,
memory_per_peer) are called by bench/run.py with the results it just measured.

    bench/plots.py [--results DIR] [--out DIR] [--only NAME ...]"""
import argparse
import json
import math
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")   # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def browsers_makespan(b, out):
    """Section 12 (browsers.json): job makespan against tiles, Chromium pages and native peers."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    series = [(f"{b['peers']} Chromium pages", [(e["tiles"], e["makespan"]) for e in b["browsers"]], "o-"),
              (f"{b['peers']} native peers", [(e["tiles"], e["makespan"]) for e in b["natives"]], "s-")]
    if all("nativeSubmitMakespan" in e for e in b["natives"]):
        series.append((f"{b['peers']} native peers, native submitter", [(e["tiles"], e["nativeSubmitMakespan"]) for e in b["natives"]], "^--"))
    for label, points, style in series:
        ax.plot([t for t, _ in points], [m for _, m in points], style, label=label)
    ax.axhline(b.get("oneCoreCPU", b["oneCore"]), color="grey", linestyle=":", label="one core, native (`render`, CPU s)")
    ax.set_xscale("log")
    ax.set_xticks([e["tiles"] for e in b["browsers"]], [f"{e['tiles']:,}" for e in b["browsers"]])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("tiles (tasks)")
    ax.set_ylabel("makespan (s), median")
    ax.set_title(f"Scene '{b.get('scene', 'standard')}' on one 2-core machine ({b['measured']})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def wasm_one_core(w, out):
    """Section 11 (wasm.json): seconds per runtime for the standard scene on one core, with ratios to native."""
    c = w["oneCore"]
    labels = {"native": "native Swift", "wasmkit": "WasmKit (wasm-run)", "fuelOff": "WasmKit, fuel off", "fuelOn": "WasmKit, fuel on",
              "chromiumWasm": "Chromium Wasm", "chromiumJs": "Chromium JavaScript"}
    keys = [k for k in labels if k in c["ratio"]]   # the whole-image runs (the fuel runs are of a strip)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    bars = ax.barh([labels[k] for k in keys], [c["median"][k] for k in keys], color=["#4c72b0" if k == "native" else "#dd8452" for k in keys])
    for bar, k in zip(bars, keys):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {c['median'][k]:.1f} s ({c['ratio'][k]:.2f}×)", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(right=max(c["median"].values()) * 1.35)
    ax.set_xlabel("CPU seconds (median), one core")
    ax.set_title(f"'{c['scene']}' scene {c['width']}×{c['height']}, one core ({w['measured']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def overlay_hops(o, out):
    """bench/overlay.py (overlay.json): mean hops per lookup against peers, per routing rule and finger policy
    (least-occupied IDs, the server's), with Chord's ½·log2 N and issue 15's bound ½·log2 N + 0.5."""
    rows = [r for r in o["routing"] if r["ids"] == "least-occupied"]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    styles = {"greedy": "o-", "NoN without lists": "^:", "NoN": "s-"}
    for fingers in sorted({r["fingers"] for r in rows}):
        for rule, style in styles.items():
            pts = sorted((r["peers"], r["hopsMean"]) for r in rows if r["fingers"] == fingers and r["rule"] == rule)
            if pts:
                ax.plot([n for n, _ in pts], [h for _, h in pts], style, alpha=1.0 if fingers == "auto" else 0.5,
                        label=f"{rule}, fingers {fingers}")
    ns = sorted({r["peers"] for r in rows})
    ax.plot(ns, [0.5 * math.log2(n) for n in ns], color="grey", linestyle="--", label="Chord ½·log2 N")
    ax.plot(ns, [0.5 * math.log2(n) + 0.5 for n in ns], color="black", linestyle=":", label="bound ½·log2 N + 0.5")
    ax.set_xscale("log")
    ax.set_xticks(ns, [f"{n:,}" for n in ns])
    ax.set_xlabel("peers (least-occupied IDs)")
    ax.set_ylabel("hops per lookup, mean")
    ax.set_title(f"Hops to the responsible peer ({o['measured']})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


IMG = ROOT / "docs" / "img"


def _save(fig, path):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# Sections 1-3 are drawn by bench/run.py itself, from the dictionaries bench/relays.py returns.
# Relays (bench/relays.py): one colour per server in every plot.
RELAY_COLOURS = {"this": "#1f77b4", "node": "#2ca02c", "python": "#ff7f0e", "echo": "#7f7f7f"}
RELAY_LABELS = {"this": "this server", "node": "Node ws relay", "python": "Python websockets relay", "echo": "bare lws echo"}


def relay_per_cpu(relay, path=IMG / "relay-per-cpu.png"):
    """Bars: signal messages per second of server CPU by server (median of the rounds, each round a dot)."""
    kinds = list(relay["runs"])
    fig, ax = plt.subplots(figsize=(7, 4))
    medians = [relay["median"][k] / 1000 for k in kinds]
    bars = ax.bar(range(len(kinds)), medians, color=[RELAY_COLOURS[k] for k in kinds])
    for i, k in enumerate(kinds):
        ax.plot([i] * len(relay["runs"][k]), [x["perCpuSecond"] / 1000 for x in relay["runs"][k]], "k.", markersize=5)
    ax.bar_label(bars, labels=[f"{m:,.0f}k" for m in medians], padding=3)
    ax.set_xticks(range(len(kinds)), [RELAY_LABELS[k] for k in kinds])
    ax.set_ylabel("signals per server CPU second (thousands)")
    ax.set_title(f"Relay per server CPU second ({relay['pairs']} pairs, {relay['payload']}-byte payload; "
                 f"median of {relay['rounds']} rounds)", fontsize=10)
    ax.set_ylim(0, max(max(x["perCpuSecond"] for x in v) for v in relay["runs"].values()) / 1000 * 1.15)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def join_latency_cdf(joins, path=IMG / "join-latency-cdf.png"):
    """CDF of join latency (register sent → registered), this server against the Node relay, one line per
    server and N (solid: the larger N)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, n in enumerate(joins["sizes"]):
        if n not in joins["latencyAt"]:
            continue
        style = "-" if n == max(joins["latencyAt"]) else "--"
        for k, rows in joins["rows"].items():
            xs = sorted(x / 1000 for x in rows[i]["latenciesUs"])
            ys = [(j + 1) / len(xs) for j in range(len(xs))]
            ax.step(xs, ys, style, where="post", color=RELAY_COLOURS[k], label=f"{RELAY_LABELS[k]}, {n:,} peers")
    ax.set_xscale("log")
    ax.set_xlabel("join latency, register → registered (ms, log scale)")
    ax.set_ylabel("fraction of joins")
    ax.set_title(f"Join latency distribution ({joins['samples']:,} joins one at a time)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def memory_per_peer(joins, path=IMG / "memory-per-peer.png", target_kib=4.0):
    """RSS per idle registered peer (KiB) against N, this server and the Node relay, with the target."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for k, rows in joins["rows"].items():
        ax.plot([r["peers"] for r in rows], [r["bytesPerPeer"] / 1024 for r in rows], "o-", color=RELAY_COLOURS[k],
                label=RELAY_LABELS[k])
    ax.axhline(target_kib, color="#d62728", linestyle=":", label=f"target for this server ({target_kib:.0f} KiB)")
    ax.set_xlabel("idle registered peers held (N)")
    ax.set_ylabel("RSS per peer (KiB)")
    ax.set_ylim(bottom=0)
    ax.set_title("Memory per idle registered peer: (RSS with N peers − RSS before) / N", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


PLOTS = {  # name: (function, results file, image)
    "browsers-makespan": (browsers_makespan, "browsers.json", "browsers-makespan.png"),
    "wasm-one-core": (wasm_one_core, "wasm.json", "wasm-one-core.png"),
    "overlay-hops": (overlay_hops, "overlay.json", "overlay-hops.png"),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default=str(ROOT / ".build" / "bench-results"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"))
    ap.add_argument("--only", nargs="*", choices=sorted(PLOTS))
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in a.only or PLOTS:
        draw, results, image = PLOTS[name]
        path = pathlib.Path(a.results) / results
        if not path.exists():
            print(f"plots: {name}: no {path} (run its section of bench/run.py first); skipped", file=sys.stderr)
            continue
        draw(json.loads(path.read_text()), out / image)
        print(f"plots: wrote {out / image}")


if __name__ == "__main__":
    main()
