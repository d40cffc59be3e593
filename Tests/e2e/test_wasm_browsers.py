"""The `wasm` runtime in browsers (docs/jobs.md, "WebAssembly tasks"): WebAssembly jobs across real
Chromium peers on the overlay give the outputs of an independent Python model of their modules; traps,
endless loops, too much memory, too large, malformed modules and modules with imports are each refused or
reported with their code while the pages go on serving the next job; and a module travels once per
peer across two jobs. The test modules are C compiled here with the Swift toolchain's clang (the
examples' own modules, from `make wasm`, are used for the ray tracer when they are built)."""
import base64
import json
import os
import pathlib
import random
import subprocess
import struct

import pytest

from overlay import N

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLANG = "/opt/swift/usr/bin/clang"
VECTORS = {v["scene"]: v["sha256"] for v in json.loads((ROOT / "Tests/vectors/raytracer.json").read_text())["images"]}

COMMON = r"""
typedef unsigned int u32; typedef unsigned long long u64; typedef unsigned char u8;
extern u8 __heap_base;
static u32 top;
#define EXPORT(name) __attribute__((export_name(#name)))
EXPORT(bc_alloc) u8 *bc_alloc(int n) {
  if (!top) top = (u32)&__heap_base;
  u32 p = top, end = p + (((u32)n + 7u) & ~7u);
  u32 have = (u32)__builtin_wasm_memory_size(0) * 65536u;
  if (end > have && __builtin_wasm_memory_grow(0, (end - have + 65535u) / 65536u) == (__SIZE_TYPE__)-1) return 0;
  top = end;
  return (u8 *)p;
}
static u64 out(u8 *p, u32 n) { return ((u64)n << 32) | (u32)p; }
"""

SOURCES = {
    # out[i] = in[i]·31 + shared[i mod |shared|] + i (mod 256), then the FNV-1a 32 of the input (LE): see mix().
    "mix": r"""EXPORT(bc_run) u64 bc_run(u8 *s, int sl, u8 *in, int il) {
      u8 *o = bc_alloc(il + 4);
      u32 h = 2166136261u;
      for (int i = 0; i < il; i++) { o[i] = (u8)(in[i] * 31u + (sl ? s[i % sl] : 0) + (u32)i); h = (h ^ in[i]) * 16777619u; }
      for (int k = 0; k < 4; k++) o[il + k] = (u8)(h >> (8 * k));
      return out(o, il + 4);
    }""",
    "trap": r"""EXPORT(bc_run) u64 bc_run(u8 *s, int sl, u8 *in, int il) { __builtin_trap(); }""",
    "endless": r"""EXPORT(bc_run) u64 bc_run(u8 *s, int sl, u8 *in, int il) { volatile u32 x = 0; for (;;) x++; }""",
    # Grows memory a page at a time until refused; then traps (input "t") or returns the pages it has (u32 LE).
    "hog": r"""EXPORT(bc_run) u64 bc_run(u8 *s, int sl, u8 *in, int il) {
      while (__builtin_wasm_memory_grow(0, 1) != (__SIZE_TYPE__)-1) {}
      if (il > 0 && in[0] == 't') __builtin_trap();
      u32 pages = (u32)__builtin_wasm_memory_size(0);
      for (int k = 0; k < 4; k++) in[k] = (u8)(pages >> (8 * k));
      return out(in, 4);
    }""",
    "import": r"""extern u32 host_random(void);
      EXPORT(bc_run) u64 bc_run(u8 *s, int sl, u8 *in, int il) { in[0] = (u8)host_random(); return out(in, 1); }""",
    "badptr": r"""EXPORT(bc_run) u64 bc_run(u8 *s, int sl, u8 *in, int il) { return out((u8 *)0xfffffff0u, 64); }""",
    "i32-result": r"""EXPORT(bc_run) u32 bc_run(u8 *s, int sl, u8 *in, int il) { return 0; }""",
    "i64-params": r"""EXPORT(bc_run) u64 bc_run(u64 s, u64 sl, u64 in, u64 il) { return 0; }""",
    "no-run": r"""EXPORT(bc_other) u64 bc_other(u8 *s, int sl, u8 *in, int il) { return 0; }""",
}
FLAGS = {"import": ["-Wl,--allow-undefined"]}


def mix(shared, data):
    """The Python model of the `mix` module."""
    out = bytearray((b * 31 + (shared[i % len(shared)] if shared else 0) + i) & 0xFF for i, b in enumerate(data))
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return bytes(out) + struct.pack("<I", h)


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    """name → module bytes; `big` is `mix` with a memory minimum of 300 pages (the limit is 256)."""
    d = tmp_path_factory.mktemp("wasm")
    built = {}
    for name, body in SOURCES.items():
        (d / f"{name}.c").write_text(COMMON + body)
        targets = [(name, FLAGS.get(name, []))] + ([("big", [f"-Wl,--initial-memory={300 * 65536}"])] if name == "mix" else [])
        for target, flags in targets:
            subprocess.run([CLANG, "--target=wasm32", "-nostdlib", "-O2", "-Wl,--no-entry", *flags, "-o", str(d / f"{target}.wasm"),
                            str(d / f"{name}.c")], check=True)
            built[target] = (d / f"{target}.wasm").read_bytes()
    return built


def salted(module, salt):
    """The same module with a custom section appended: other bytes (another SHA-256), the same behaviour."""
    payload = bytes([4]) + b"salt" + salt
    return module + bytes([0, len(payload)]) + payload


def b64(data):
    return base64.b64encode(data).decode()


RUN = """async ({ module, shared, inputs, peers, options }) => {
  const bytes = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0))
  const text = (b) => { let s = ''; for (const x of b) s += String.fromCharCode(x); return btoa(s) }
  try {
    const { results, stats } = await window.bp.run({ runtime: 'wasm', module: bytes(module), shared: bytes(shared),
      inputs: inputs.map(bytes), peers, ...options })
    return { results: results.map(text), stats }
  } catch (error) {
    return { error: error.message, code: error.code ?? null, failures: error.failures ?? null }
  }
}"""


def ring(overlay):
    if not overlay.live:
        overlay.spawn(N)
    overlay.wait_stable()
    return overlay.live


def run(page, module, inputs, peers, shared=b"", **options):
    return page.evaluate(RUN, {"module": b64(module), "shared": b64(shared), "inputs": [b64(i) for i in inputs],
                               "peers": peers, "options": options})


def random_inputs(seed, count):
    rng = random.Random(seed)
    return [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))) for _ in range(count)]


def test_a_wasm_job_gives_the_outputs_of_the_python_model(overlay, modules):
    live = ring(overlay)
    seed = random.randrange(2 ** 32)
    print(f"seed {seed}")
    inputs = random_inputs(seed, 40)
    shared = bytes(range(7, 20))
    out = run(live[0][1], modules["mix"], inputs, len(live), shared)
    assert "results" in out, out
    assert [base64.b64decode(r) for r in out["results"]] == [mix(shared, i) for i in inputs]
    assert out["stats"]["failed"] == 0 and len(out["stats"]["tasksPerPeer"]) > 1, out["stats"]


COUNT_MODULE_SENDS = """() => {
  window.moduleSends = []
  const explorer = window.bp.explorer
  const send = explorer.send.bind(explorer)
  explorer.send = (dst, data) => {
    if (data?.kind === 'task' && data.shared?.moduleBase64 !== undefined) window.moduleSends.push(dst)
    return send(dst, data)
  }
}"""


def test_the_module_is_sent_once_per_peer_across_two_jobs(overlay, modules):
    live = ring(overlay)
    page = live[0][1]
    page.evaluate(COUNT_MODULE_SENDS)
    module = salted(modules["mix"], os.urandom(8))   # bytes no peer holds yet
    inputs = random_inputs(7, 48)
    sends = []
    peers_used = []
    for _ in range(2):
        out = run(page, module, inputs, len(live))
        assert [base64.b64decode(r) for r in out["results"]] == [mix(b"", i) for i in inputs], out
        peers_used.append({p for p, n in out["stats"]["tasksPerPeer"].items() if n > 0})
        sends.append(page.evaluate("() => window.moduleSends.splice(0)"))
    me = live[0][2]
    first, second = sends
    # Every other peer that computed a task of the first job got the module once; nobody got it twice.
    assert sorted(first) == sorted(set(first)), first
    assert peers_used[0] - {me} <= set(first), (peers_used[0], first)
    assert len(first) >= 1
    # The second job's peers held it already (those new to the module would be sent it once).
    assert not set(second) & set(first), (first, second)
    assert not (peers_used[1] & set(first)) & set(second)
    assert second == [] or peers_used[1] - set(first), (second, peers_used)


CASES = [
    # (module, input, deadlineMs, expected code, words in the message)
    ("trap", b"x", None, "threw", "unreachable"),
    ("hog", b"t", None, "threw", "unreachable"),
    ("endless", b"x", 1500, "deadline", "deadline"),
    ("big", b"x", None, "bad-task", "wasmMaxMemoryPages"),
    ("import", b"x", None, "bad-task", "imports"),
    ("malformed", b"x", None, "bad-task", "malformed"),
    ("invalid", b"x", None, "bad-task", "does not compile"),
    ("no-run", b"x", None, "bad-task", "bc_run"),
    ("i32-result", b"x", None, "bad-task", "i64"),
    ("i64-params", b"x", None, "bad-task", "wrong type"),
    ("badptr", b"x", None, "threw", "outside memory"),
]


def test_bad_modules_are_refused_or_reported_and_the_pages_serve_the_next_job(overlay, modules):
    live = ring(overlay)
    page = live[0][1]
    table = dict(modules, malformed=b"\0asm\x01\0\0\0\x01\xff", invalid=b"\0asm\x01\0\0\0\x01\x03\x01\x60\x00")
    for name, data, deadline, code, words in CASES:
        options = {"maxAttempts": 1, "maxCopies": 1} | ({"deadlineMs": deadline} if deadline else {})
        out = run(page, table[name], [data, data], len(live), **options)
        assert out.get("failures"), (name, out)
        assert {f["code"] for f in out["failures"]} == {code}, (name, out)
        assert all(words in f["message"] for f in out["failures"]), (name, out)
        # The ring serves the next job.
        inputs = random_inputs(len(name), 6)
        nxt = run(page, modules["mix"], inputs, len(live))
        assert [base64.b64decode(r) for r in nxt["results"]] == [mix(b"", i) for i in inputs], (name, nxt)
    # Memory grows up to the limit and no further: memory.grow returns -1 at 256 pages.
    out = run(page, modules["hog"], [b"x"], len(live))
    assert [base64.b64decode(r) for r in out["results"]] == [struct.pack("<I", 256)], out
    # A module above 8 MiB is refused by the submitter before anything is sent ...
    too_large = salted(modules["mix"], b"") + bytes([0, 0x80, 0x80, 0x80, 0x05]) + b"\x04fill" + bytes(5 * 2 ** 21 - 5)
    out = run(page, too_large, [b"x"], len(live))
    assert out["code"] == "bad-task" and "wasmMaxModuleBytes" in out["error"], out


def test_a_worker_peer_refuses_modules_it_is_not_given_correctly(page, modules):
    """The worker's module cache on its own (process/wasm-modules.js): need-module, the SHA-256 check,
    its size limit and least-recently-used eviction."""
    out = page.evaluate("""async ({ mix, other }) => {
      const { WasmModules } = await import('/process/wasm-modules.js')
      const { sha256Hex } = await import('/process/job-protocol.js')
      const bytes = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0))
      const sha = await sha256Hex(bytes(mix))
      const shaOther = await sha256Hex(bytes(other))
      const small = new WasmModules({ limits: { wasmMaxModuleBytes: 100 } })
      const cache = new WasmModules({ maxModules: 1 })
      const codes = async (c, s) => { const r = await c.resolve(s); return r.error?.code ?? (r.module instanceof WebAssembly.Module ? 'ok' : 'none') }
      return {
        missing: await codes(cache, { module: sha, data: '' }),
        wrongSha: await codes(cache, { module: shaOther, data: '', moduleBase64: mix }),
        notHex: await codes(cache, { module: 'x', data: '' }),
        tooLarge: await codes(small, { module: sha, data: '', moduleBase64: mix }),
        given: await codes(cache, { module: sha, data: '', moduleBase64: mix }),
        held: await codes(cache, { module: sha, data: '' }),
        other: await codes(cache, { module: shaOther, data: '', moduleBase64: other }),
        evicted: await codes(cache, { module: sha, data: '' })
      }
    }""", {"mix": b64(modules["mix"]), "other": b64(modules["trap"])})
    assert out == {"missing": "need-module", "wrongSha": "bad-task", "notHex": "bad-task", "tooLarge": "bad-task",
                   "given": "ok", "held": "ok", "other": "ok", "evicted": "need-module"}


def raytracer_module():
    """The examples' ray tracer module: in $BROWSERCLOUD_WASM_DIR, or where `make wasm` puts it."""
    dirs = [pathlib.Path(os.environ["BROWSERCLOUD_WASM_DIR"])] if os.environ.get("BROWSERCLOUD_WASM_DIR") else []
    for p in [d / "raytracer.wasm" for d in dirs] + [ROOT / "Public/wasm/raytracer.wasm", ROOT / ".build/wasm/raytracer.wasm"]:
        if p.exists():
            return p
    return None


def test_raytrace_on_the_wasm_runtime_gives_the_bytes_of_the_vectors(overlay):
    path = raytracer_module()
    assert path is not None, "raytracer.wasm is not built: run `make wasm` (`make test` does)"
    live = ring(overlay)
    page = live[0][1]
    scene = "Public/scenes/small.json"
    out = page.evaluate("""async ({ module, tiles, peers }) => {
      const text = await (await fetch('/scenes/small.json')).text()
      const bytes = Uint8Array.from(atob(module), (c) => c.charCodeAt(0))
      const r = await window.bp.raytrace(text, { tiles, peers, runtime: 'wasm', module: bytes })
      return { sha256: r.sha256, stats: r.stats }
    }""", {"module": b64(path.read_bytes()), "tiles": 25, "peers": len(live)})
    assert out["sha256"] == VECTORS[scene], out["stats"]
    assert out["stats"]["failed"] == 0 and len(out["stats"]["tasksPerPeer"]) > 1, out["stats"]


def test_the_volunteer_page_renders_with_webassembly(overlay):
    """index.html with the WebAssembly runtime chosen: the module comes from the server (/wasm/raytracer.wasm,
    where `make wasm` copies it) and the image is the one of the JavaScript kernel."""
    assert (ROOT / "Public/wasm/raytracer.wasm").exists(), "Public/wasm/raytracer.wasm is missing: run `make wasm` (`make test` does)"
    live = ring(overlay)
    context = overlay.browser.new_context()
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(overlay.base_url + "/")
        page.click("#join")
        page.wait_for_function("() => !document.getElementById('run').disabled", timeout=20000)
        page.select_option("#scene", "small")
        page.select_option("#tiles", "25")
        page.select_option("#runtime", "wasm")
        page.fill("#peers", str(len(live) + 1))
        page.click("#run")
        page.wait_for_function("() => document.getElementById('job-status').textContent.startsWith('done')", timeout=60000)
        assert "WebAssembly" in page.text_content("#job-status")
        assert page.text_content("#sha") == VECTORS["Public/scenes/small.json"]
        assert page.locator("#per-peer tr").count() > 1
        page.click("#leave")
        assert not errors, errors
    finally:
        context.close()
