#!/usr/bin/env python3
"""The benchmark plots of docs/ (make bench runs this with .build/bench-venv's Python, which has matplotlib).

Each plot is one function that reads one JSON results file a section of bench/run.py wrote into
.build/bench-results/ and draws one PNG into docs/img/, so plots can be redrawn without rerunning the
benchmarks. A plot whose results file is missing is skipped with a note. Add a plot: write a function
taking (results, out) and list it in PLOTS.

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
