"""Section 9: the cost of signed overlay messages in Swift (bc-signbench; bench/run.py)."""
import datetime
import json
import subprocess

from common import ROOT, RELEASE


def bench_sign(rounds):
    """µs per operation (medians over `rounds`) of signing and verifying one message of 1 KiB and 64 KiB, the
    certificate check with and without the cache, and libcrypto keys parsed per call or once."""
    r = subprocess.run([str(RELEASE / "bc-signbench"), "--rounds", str(rounds)], capture_output=True, text=True,
                       timeout=1800, check=True)
    return {"rows": [json.loads(line) for line in r.stdout.strip().splitlines() if line.strip()], "rounds": rounds}


def sign_report(s, alone=False):
    rows = s["rows"]
    seed = rows[0]["seed"] if rows else "?"

    def table(size):
        return "\n".join(f"| {r['name']} | {r['us']:,.1f} |" for r in rows if r.get("bytes") and abs(r["bytes"] - size) < 256)

    certs = "\n".join(f"| {r['name']} | {r['us']:,.2f} |" for r in rows if "bytes" not in r)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    return f"""## 9. Signed overlay messages: signing and verifying one message

`bc-signbench` (Sources/bc-signbench) times the SignedOverlay target (docs/signed-overlay.md) in one
process, no sockets: the source's `OverlaySigner` (writes the body, signs it once, builds the `S` frame),
the destination's `OverlayVerifier` (every check, with the certificate already cached, or with a fresh
verifier per message so that the certificate is checked each time), a relay's work (parse the head,
re-encode with one more hop), and Ed25519 through libcrypto alone with the key parsed on every call
(`Ed25519.PrivateKey`/`PublicKey`: parsing a private key derives its public key) or once
(`Ed25519.SigningKey`/`VerifyingKey`, what the signer and the verifier keep). Measured
{datetime.date.today().isoformat()}, commit `{commit}`{" (on its own, with `bench/run.py --only sign`)" if alone else ""};
µs per operation, median of {s['rounds']} rounds (seed {seed}); the machine is shared, so compare rows of one run.

Body of about 1 KiB:

| operation | µs |
|---|---:|
{table(1025)}

Body of about 64 KiB:

| operation | µs |
|---|---:|
{table(65537)}

Certificates:

| operation | µs |
|---|---:|
{certs}

"""
