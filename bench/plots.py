"""The plots of `make bench`, drawn with matplotlib (in the bench's virtual environment, .build/bench-venv)
into docs/img/ as PNG files that the documents show. One function per plot: it takes a section's results
(the dictionaries bench/*.py return) and the file to write, and writes nothing else."""
import pathlib

IMG = pathlib.Path(__file__).resolve().parent.parent / "docs" / "img"


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display here)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def require():
    """Raises ImportError now, before any measurement, when matplotlib is missing (run bench/run.py with
    .build/bench-venv/bin/python, as `make bench` does)."""
    _pyplot()


def _save(fig, path):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


# Relays (bench/relays.py): one colour per server in every plot.
RELAY_COLOURS = {"this": "#1f77b4", "node": "#2ca02c", "python": "#ff7f0e", "echo": "#7f7f7f"}
RELAY_LABELS = {"this": "this server", "node": "Node ws relay", "python": "Python websockets relay", "echo": "bare lws echo"}


def relay_per_cpu(relay, path=IMG / "relay-per-cpu.png"):
    """Bars: signal messages per second of server CPU by server (median of the rounds, each round a dot)."""
    plt = _pyplot()
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
    plt = _pyplot()
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
    plt = _pyplot()
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
