"""Section 9: the cost of signed overlay messages in Swift (bc-signbench; bench/run.py)."""
import datetime
import json
import re
import subprocess

from common import ROOT, RELEASE

FRAMES = 60      # signed frames each run prepares (the same in both callgrind runs of an operation)
WARM = 5         # operations in the shorter callgrind run


def callgrind_instructions(args):
    """Instructions (callgrind's Ir) a bc-signbench run executes."""
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", str(RELEASE / "bc-signbench")] + args,
                       capture_output=True, text=True, timeout=900)
    m = re.search(r"Collected : (\d+)", r.stderr)
    if r.returncode != 0 or not m:
        raise RuntimeError(f"callgrind failed: {r.stderr[-500:]}")
    return int(m.group(1))


def bench_sign(rounds):
    """µs per operation (every operation once per round, interleaved; medians over `rounds`) of signing and
    verifying one message of 1 KiB and 64 KiB, the certificate check with and without the cache, and libcrypto
    keys parsed per call or once; then instructions per operation under callgrind (when installed): a run of
    WARM + N operations minus a run of WARM, both preparing the same FRAMES frames."""
    exe = str(RELEASE / "bc-signbench")
    r = subprocess.run([exe, "time", "--rounds", str(rounds)], capture_output=True, text=True, timeout=1800, check=True)
    rows = [json.loads(line) for line in r.stdout.strip().splitlines() if line.strip()]
    have_valgrind = subprocess.run(["sh", "-c", "command -v valgrind"], capture_output=True).returncode == 0
    if have_valgrind:
        for row in rows:
            # verify-cached must not run out of prepared frames (it would start a new verifier).
            n = 2000 if row["name"].startswith(("relay", "certificate-cached")) else FRAMES - WARM - 5
            run = ["run", "--op", row["name"], "--frames", str(FRAMES), "--iterations"]
            row["instructions"] = (callgrind_instructions(run + [str(WARM + n)]) - callgrind_instructions(run + [str(WARM)])) / n
    return {"rows": rows, "rounds": rounds, "callgrind": have_valgrind}


def sign_report(s, alone=False):
    rows = s["rows"]
    seed = rows[0]["seed"] if rows else "?"

    def line(r):
        ir = f" | {r['instructions']:,.0f}" if s["callgrind"] else " |"
        return f"| {r['title']} | {r['us']:,.1f}{ir} |"

    def table(label):
        return "\n".join(line(r) for r in rows if r["name"].endswith("-" + label))

    certs = "\n".join(line(r) for r in rows if r["name"].startswith("certificate"))
    by_name = {r["name"]: r for r in rows}

    def versus(label):
        """Per message: what each role pays signed and unsigned, and the difference."""
        out = []
        for role, signed, unsigned in [("source", "sign", "unsigned-send"), ("each relay", "relay", "unsigned-relay"),
                                       ("destination (certificate cached)", "verify-cached", "unsigned-receive")]:
            a, b = by_name.get(f"{signed}-{label}"), by_name.get(f"{unsigned}-{label}")
            if not a or not b:
                continue
            ir = (f" | {a['instructions']:,.0f} | {b['instructions']:,.0f} | {a['instructions'] - b['instructions']:+,.0f}"
                  if s["callgrind"] else " | | |")
            out.append(f"| {role} | {a['us']:,.1f} | {b['us']:,.1f} | {a['us'] - b['us']:+,.1f}{ir} |")
        return "\n".join(out)
    versus_head = ("| per message | signed µs | unsigned µs | difference µs | signed instructions | unsigned instructions | difference |\n"
                   "|---|---:|---:|---:|---:|---:|---:|")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    size = {label: next((r["bytes"] for r in rows if r["name"].endswith("-" + label) and r["name"].startswith("sign") and "bytes" in r), 0)
            for label in ("1k", "64k")}
    head = "| operation | µs | instructions |\n|---|---:|---:|"
    return f"""## 9. Signed overlay messages: signing and verifying one message

`bc-signbench` (Sources/bc-signbench) times the SignedOverlay target (docs/protocol.md, "Signed overlay messages") in one
process, no sockets: the source's `OverlaySigner` (writes the body, signs it once, builds the `S` frame),
the destination's `OverlayVerifier` (every check, with the certificate already cached, or with a fresh
verifier per message so that the certificate is checked too), a relay's work (parse the head, re-encode
with one more hop), and Ed25519 through libcrypto alone with the key parsed on every call
(`Ed25519.PrivateKey`/`PublicKey`: parsing a private key derives its public key) or once
(`Ed25519.SigningKey`/`VerifyingKey`, what the signer and the verifier keep). Measured
{datetime.date.today().isoformat()}, commit `{commit}`{" (on its own, with `bench/run.py --only sign`)" if alone else ""}.
Time: µs per operation, every operation once per round (interleaved, so the load of this shared machine
falls on all of them), median of {s['rounds']} rounds (keys from seed {seed}). Instructions: callgrind's count
per operation (a run of {WARM} + N operations minus a run of {WARM}, both preparing the same {FRAMES} frames); exact,
and independent of the machine's load, so the column to compare.

What one message costs each role, signed (`S` frame) next to the unsigned path (`M` message, the
envelope's JSON written at the source, parsed and written again at every relay, parsed at the destination):

Body of about {size['1k']:,} bytes:

{versus_head}
{versus("1k")}

Body of about {size['64k']:,} bytes:

{versus_head}
{versus("64k")}

Every operation, body of {size['1k']:,} bytes:

{head}
{table("1k")}

Every operation, body of {size['64k']:,} bytes:

{head}
{table("64k")}

Certificates:

{head}
{certs}

"""
