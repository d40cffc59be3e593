"""The `wasm` runtime of native peers (docs/jobs.md, "WebAssembly tasks"): a real server, three native
worker peers, and `browsercloud submit wasm` / `wasm-run` processes. Test modules are compiled here from
C with the Swift toolchain's clang (wasm32, no libc); the examples' modules (`make wasm`) are used
when they exist."""
import base64
import os
import pathlib
import random
import re
import subprocess

import pytest

from harness import BIN, ROOT, Server
from native import NativePeer, wait_stable

CLANG = os.environ.get("WASM_CLANG", "/opt/swift/usr/bin/clang")

PRELUDE = r"""
#define EXPORT(n) __attribute__((export_name(n)))
static unsigned char heap[1 << 16];
static unsigned top = 16;
EXPORT("bc_alloc") unsigned char *bc_alloc(unsigned n) {
    if (n > sizeof heap - top) return 0;
    unsigned char *p = heap + top;
    top += (n + 7) & ~7u;
    return p;
}
#define RESULT(ptr, len) (((unsigned long long)(len) << 32) | (unsigned)(unsigned long)(ptr))
"""

SOURCES = {
    # out = input reversed, each byte plus the sum of the shared bytes.
    "reverse": r"""
EXPORT("bc_run") unsigned long long bc_run(unsigned char *s, unsigned sl, unsigned char *in, unsigned il) {
    unsigned k = 0;
    for (unsigned i = 0; i < sl; i++) k += s[i];
    unsigned char *o = bc_alloc(il);
    for (unsigned i = 0; i < il; i++) o[i] = (unsigned char)(in[il - 1 - i] + k);
    return RESULT(o, il);
}""",
    "trap": r"""
EXPORT("bc_run") unsigned long long bc_run(unsigned char *s, unsigned sl, unsigned char *in, unsigned il) {
    __builtin_trap();
}""",
    "endless": r"""
EXPORT("bc_run") unsigned long long bc_run(unsigned char *s, unsigned sl, unsigned char *in, unsigned il) {
    volatile unsigned n = 0;
    for (;;) n++;
}""",
    "memory-hog": r"""
EXPORT("bc_run") unsigned long long bc_run(unsigned char *s, unsigned sl, unsigned char *in, unsigned il) {
    while (__builtin_wasm_memory_grow(0, 1) != (unsigned long)-1) {}
    __builtin_trap();
}""",
    "big-memory": r"""
EXPORT("bc_run") unsigned long long bc_run(unsigned char *s, unsigned sl, unsigned char *in, unsigned il) { return 0; }""",
    "with-import": r"""
extern unsigned now(void) __attribute__((import_module("env"), import_name("now")));
EXPORT("bc_run") unsigned long long bc_run(unsigned char *s, unsigned sl, unsigned char *in, unsigned il) {
    unsigned char *o = bc_alloc(4);
    *(unsigned *)o = now();
    return RESULT(o, 4);
}""",
}
LINK = {"big-memory": ["-Wl,--initial-memory=16842752"], "with-import": ["-Wl,--allow-undefined"]}


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    d = tmp_path_factory.mktemp("wasm")
    out = {}
    for name, body in SOURCES.items():
        (d / f"{name}.c").write_text(PRELUDE + body)
        subprocess.run([CLANG, "--target=wasm32", "-nostdlib", "-O2", "-Wl,--no-entry", *LINK.get(name, []), "-o", str(d / f"{name}.wasm"),
                        str(d / f"{name}.c")], check=True, timeout=60)
        out[name] = d / f"{name}.wasm"
    (d / "malformed.wasm").write_bytes(b"\0asm\1\0\0\0\x01\xff\xff")
    out["malformed"] = d / "malformed.wasm"
    # A valid module made larger than 8 MiB by a custom section.
    valid = out["reverse"].read_bytes()
    payload = b"\1x" + bytes(8 << 20)
    size, n = b"", len(payload)
    while True:
        b, n = n & 0x7f, n >> 7
        size += bytes([b | (0x80 if n else 0)])
        if not n:
            break
    (d / "too-large.wasm").write_bytes(valid + b"\0" + size + payload)
    out["too-large"] = d / "too-large.wasm"
    return out


# A ring per test. (A submitter that joins right after another left gets the same ID from the server;
# its discovery once found no peer in about half of the tries, its messages refused as `replayed`:
# fixed, and kept fixed by test_id_reuse.py.)
@pytest.fixture
def ring(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("wasmring"))
    peers = []
    try:
        peers = [NativePeer(server.ws) for _ in range(3)]
        for p in peers:
            p.wait_registered(timeout=30)
        wait_stable(server, peers)
        yield server, peers
    finally:
        for p in peers:
            p.stop()
        server.stop()


def lines(path, blobs):
    path.write_text("".join(base64.b64encode(b).decode() + "\n" for b in blobs))
    return path


def submit_args(ring, module, inputs, out, *extra, peers=3):
    server, _ = ring
    return [BIN, "submit", "wasm", "--server", server.ws, "--module", str(module), "--inputs", str(inputs), "--out", str(out),
            "--peers", str(peers), "--discovery-wait", "10", *[str(e) for e in extra]]


def submit(ring, module, inputs, out, *extra, peers=3, timeout=240):
    return subprocess.run(submit_args(ring, module, inputs, out, *extra, peers=peers), capture_output=True, text=True, timeout=timeout)


def wasm_run(module, inputs, out, *extra):
    return subprocess.run([BIN, "wasm-run", "--module", str(module), "--inputs", str(inputs), "--out", str(out), *[str(e) for e in extra]],
                          capture_output=True, text=True, timeout=120)


def sent(stdout):
    counts = [int(n) for n in re.findall(r"module sent (\d+) times", stdout)]
    assert counts, stdout
    return counts


def test_job_matches_wasm_run_and_the_module_goes_once_per_peer(ring, modules, tmp_path):
    server, peers = ring
    seed = random.randrange(1 << 32)
    print(f"seed {seed}")
    rng = random.Random(seed)
    blobs = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64))) for _ in range(30)]
    inputs = lines(tmp_path / "inputs.txt", blobs)
    (tmp_path / "shared.bin").write_bytes(bytes([5, 7]))
    ref = wasm_run(modules["reverse"], inputs, tmp_path / "ref.txt", "--shared", tmp_path / "shared.bin")
    assert ref.returncode == 0, ref.stderr
    expected = [bytes((x + 12) % 256 for x in reversed(b)) for b in blobs]
    assert (tmp_path / "ref.txt").read_text() == "".join(base64.b64encode(b).decode() + "\n" for b in expected)
    # Two jobs in a row from one submitter; each job's core starts afresh, the peers keep their modules.
    done = submit(ring, modules["reverse"], inputs, tmp_path / "out.txt", "--shared", tmp_path / "shared.bin", "--repeat", 2)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.txt").read_text() == (tmp_path / "ref.txt").read_text()
    first, second = sent(done.stdout)
    used = len(re.findall(r"^peers used: (.*)$", done.stdout, re.M)[0].split())
    # Once per peer the first job used; not at all in the second unless it used a peer the first did not.
    assert first == used, done.stdout
    assert first + second <= len(peers), done.stdout


@pytest.mark.parametrize("name,code,words", [
    ("trap", "threw", "unreachable"),
    ("memory-hog", "threw", "unreachable"),
])
def test_failing_tasks_report_their_code(ring, modules, tmp_path, name, code, words):
    server, _ = ring
    inputs = lines(tmp_path / "inputs.txt", [b"a", b"b"])
    done = submit(ring, modules[name], inputs, tmp_path / "out.txt")
    assert done.returncode != 0
    assert code in done.stderr and words in done.stderr, done.stderr
    local = wasm_run(modules[name], inputs, tmp_path / "local.txt")
    assert local.returncode != 0 and code in local.stderr, local.stderr


def test_an_endless_task_meets_its_deadline_and_the_peers_serve_the_next_job(ring, modules, tmp_path):
    server, _ = ring
    inputs = lines(tmp_path / "inputs.txt", [b"x"])
    # The next job comes from a second submitter that joins while the first is still there: its tasks
    # queue behind the endless ones on the same single-worker peers.
    endless = subprocess.Popen(submit_args(ring, modules["endless"], inputs, tmp_path / "out.txt", "--deadline", "0.5"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    blobs = [bytes([i]) * 3 for i in range(12)]
    again = submit(ring, modules["reverse"], lines(tmp_path / "in2.txt", blobs), tmp_path / "out2.txt")
    out, err = endless.communicate(timeout=300)
    assert endless.returncode != 0
    assert "deadline" in err, err
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "out2.txt").read_text() == "".join(base64.b64encode(b).decode() + "\n" for b in blobs)


@pytest.mark.parametrize("name,words", [
    ("big-memory", "memory minimum"),
    ("with-import", "imports env.now"),
    ("malformed", "malformed"),
    ("too-large", "above the limit"),
])
def test_refused_modules_are_bad_task(ring, modules, tmp_path, name, words):
    server, _ = ring
    inputs = lines(tmp_path / "inputs.txt", [b"a"])
    done = submit(ring, modules[name], inputs, tmp_path / "out.txt")
    assert done.returncode != 0
    assert "bad-task" in done.stderr and words in done.stderr, done.stderr
    local = wasm_run(modules[name], inputs, tmp_path / "local.txt")
    assert local.returncode != 0 and "bad-task" in local.stderr and words in local.stderr, local.stderr


# The examples' modules (`make wasm`); WASM_DIR points elsewhere (e.g. another build).
RAYTRACER = pathlib.Path(os.environ.get("WASM_DIR", str(ROOT / ".build" / "wasm"))) / "raytracer.wasm"


def test_raytrace_on_the_wasm_runtime_equals_render(ring, tmp_path):
    assert RAYTRACER.exists(), f"{RAYTRACER} is missing: run `make wasm` (`make test` does)"
    server, _ = ring
    ref = tmp_path / "render.png"
    subprocess.run([BIN, "render", "--scene", "small", "--scenes", str(ROOT / "Public/scenes"), "--out", str(ref)],
                   check=True, capture_output=True, timeout=300)
    out = tmp_path / "wasm.png"
    done = subprocess.run([BIN, "submit", "raytrace", "--runtime", "wasm", "--module", str(RAYTRACER), "--server", server.ws,
                           "--scene", "small", "--scenes", str(ROOT / "Public/scenes"), "--tiles", "16", "--peers", "3",
                           "--discovery-wait", "10", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == ref.read_bytes()
