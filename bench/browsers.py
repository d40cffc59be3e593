"""What the browser benchmark sections (11 and 12) share: a lab of real headless Chromium pages and
native peers on one rendezvous server, all inside a network namespace the bench creates itself (Chromium
never uses 127.0.0.1 for WebRTC; /work/shared/notes/browser-testing.md), built from the e2e tests'
own helpers (Tests/e2e/netns.py, overlay.py; Tests/integration/native.py, harness.py); a ray-trace job
submitted from a page with per-task round trips; a whole image rendered in one Web Worker of a page.

Needs root (ip netns) and Debian's Chromium; the release binaries (common.RELEASE) and `make wasm`."""
import importlib.util
import json
import os
import pathlib
import sys

from common import ROOT, RELEASE

# The test helpers start the binary named by BROWSERCLOUD_BIN: the bench's release build.
os.environ["BROWSERCLOUD_BIN"] = str(RELEASE / "browsercloud")


def _helper(name, path):
    """A test helper module loaded from its file under `name` (bench/ has modules of the same names as some
    of them, overlay and cluster, so the test directories are not put on sys.path)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_harness = _helper("harness", ROOT / "Tests" / "integration" / "harness.py")   # native.py imports it by this name
Server = _harness.Server
NativePeer = _helper("test_native", ROOT / "Tests" / "integration" / "native.py").NativePeer
NetNS = _helper("test_netns", ROOT / "Tests" / "e2e" / "netns.py").NetNS
_overlay = _helper("test_overlay", ROOT / "Tests" / "e2e" / "overlay.py")
CHROMIUM, Overlay, Timeline = _overlay.CHROMIUM, _overlay.Overlay, _overlay.Timeline

SCENES = ROOT / "Public" / "scenes"
WASM_MODULE = ROOT / ".build" / "wasm" / "raytracer.wasm"


def need_raytracer_module():
    """The ray tracer module of `make wasm`, and its copy that the server serves to pages."""
    for p in (WASM_MODULE, ROOT / "Public" / "wasm" / "raytracer.wasm"):
        if not p.exists():
            raise RuntimeError(f"{p} is missing: run `make wasm` (make bench does)")
    return WASM_MODULE


def quantile(xs, q):
    """The q-quantile (0..1) of xs by the nearest-rank method."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


# Wraps the page's explorer once: the time each task message leaves, the time its result arrives (by
# worker, job and task; a re-sent task restarts its clock). Only the submitting page is wrapped.
INSTRUMENT = """() => {
  if (window.rtt) return
  window.rtt = { sent: new Map(), times: [] }
  const explorer = window.bp.explorer
  const send = explorer.send.bind(explorer)
  explorer.send = (dst, data) => {
    if (data?.kind === 'task') window.rtt.sent.set(`${dst}|${data.jobId}|${data.taskId}`, performance.now())
    return send(dst, data)
  }
  explorer.events.on('message', (m) => {
    const d = m.data
    if (d?.kind !== 'result') return
    const key = `${m.srcId}|${d.jobId}|${d.taskId}`
    const t = window.rtt.sent.get(key)
    if (t !== undefined) { window.rtt.times.push(performance.now() - t); window.rtt.sent.delete(key) }
  })
}"""

RAYTRACE = """async ({ scene, tiles, peers, runtime }) => {
  window.rtt.times = []
  window.rtt.sent.clear()
  const text = await (await fetch(`/scenes/${scene}.json`)).text()
  const options = { tiles, peers, runtime }
  if (runtime === 'wasm') options.module = '/wasm/raytracer.wasm'
  try {
    // The 'raytrace' runtime sends the scene as an object; 'wasm' sends its JSON text as the shared bytes.
    const r = await window.bp.raytrace(runtime === 'wasm' ? text : JSON.parse(text), options)
    return { sha256: r.sha256, stats: r.stats, rtts: window.rtt.times }
  } catch (error) {
    return { error: error.message, code: error.code ?? null, failures: error.failures ?? null }
  }
}"""

# One module Web Worker renders the whole image once, then is terminated. Times are taken inside the
# worker with performance.now(): 'js' times renderTile (raytracer.js) on the prepared scene; 'wasm' times
# compileModule (check, limit, WebAssembly.compile), one bare instantiation, and runTask (the task
# worker's ABI call, with its own instantiation) on the ray tracer module. The output's SHA-256 is taken
# in the worker (WebCrypto).
ONE_CORE = """async ({ runtime, scene }) => {
  const origin = location.origin
  const source = `
    const hex = async (b) => [...new Uint8Array(await crypto.subtle.digest('SHA-256', b))].map((x) => x.toString(16).padStart(2, '0')).join('')
    self.onmessage = async ({ data }) => {
      try {
        const text = await (await fetch(data.origin + '/scenes/' + data.scene + '.json')).text()
        const { width, height } = JSON.parse(text)
        if (data.runtime === 'js') {
          const { prepareScene, renderTile } = await import(data.origin + '/raytracer.js')
          const scene = prepareScene(JSON.parse(text))
          const t0 = performance.now()
          const pixels = renderTile(scene, { x: 0, y: 0, width, height })
          const t1 = performance.now()
          postMessage({ runSeconds: (t1 - t0) / 1000, compileSeconds: 0, sha256: await hex(pixels), bytes: pixels.length })
        } else {
          const { compileModule, runTask } = await import(data.origin + '/process/wasm-module.js')
          const bytes = new Uint8Array(await (await fetch(data.origin + '/wasm/raytracer.wasm')).arrayBuffer())
          const t0 = performance.now()
          const module = await compileModule(bytes)
          const t1 = performance.now()
          new WebAssembly.Instance(module, {})
          const t2 = performance.now()
          const input = new Uint8Array(new Uint32Array([0, 0, width, height]).buffer)
          const pixels = runTask(module, new TextEncoder().encode(text), input)
          const t3 = performance.now()
          postMessage({ runSeconds: (t3 - t2) / 1000, compileSeconds: (t1 - t0) / 1000, instantiateSeconds: (t2 - t1) / 1000,
            sha256: await hex(pixels), bytes: pixels.length })
        }
      } catch (error) {
        postMessage({ error: String(error && error.stack || error) })
      }
    }`
  const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }))
  const worker = new Worker(url, { type: 'module' })
  try {
    return await new Promise((resolve) => {
      worker.onmessage = ({ data }) => resolve(data)
      worker.onerror = (e) => resolve({ error: e.message || 'worker error' })
      worker.postMessage({ runtime, scene, origin })
    })
  } finally {
    worker.terminate()
    URL.revokeObjectURL(url)
  }
}"""


def _stat(pid):
    """(ppid, CPU seconds of the process and its waited-for children) from /proc/PID/stat."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[1]), sum(int(f) for f in fields[11:15]) / tick


def tree_cpu_seconds(marker):
    """CPU seconds (user + system, with reaped children) of the process whose command line contains
    `marker` and of all its descendants now alive."""
    procs = {}
    for d in pathlib.Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                procs[int(d.name)] = (_stat(d.name), (d / "cmdline").read_bytes())
            except (FileNotFoundError, ProcessLookupError):
                pass
    roots = [p for p, (_, cmd) in procs.items() if marker.encode() in cmd]
    if not roots:
        raise RuntimeError(f"no process with {marker!r} in its command line")
    tree, grew = set(roots), True
    while grew:
        new = {p for p, ((ppid, _), _) in procs.items() if ppid in tree} - tree
        grew = bool(new)
        tree |= new
    return sum(procs[p][0][1] for p in tree)


class BrowserLab:
    """A rendezvous server, Chromium pages and native peers in a network namespace of the bench's own.
    Use as a context manager: everything it started is stopped, and the namespace removed, on exit
    (also on failure)."""

    def __init__(self, tmp, index=11):
        if os.geteuid() != 0:
            raise RuntimeError("the browser benchmarks need root: they create a network namespace (ip netns add) for "
                               "Chromium's WebRTC; run as root, or leave these sections out (--no-browsers)")
        if not os.access(CHROMIUM, os.X_OK):
            raise RuntimeError(f"Debian's Chromium is missing: no executable {CHROMIUM}")
        # A directory per lab (its server's secret, the Chromium launcher naming its namespace).
        self.tmp = pathlib.Path(tmp) / f"lab-{index}"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.index = index
        self.natives = []

    def __enter__(self):
        from playwright.sync_api import sync_playwright
        self.ns = NetNS(index=self.index)
        self.ns.__enter__()
        try:
            self.server = Server(self.tmp, host=self.ns.address, prefix=self.ns.prefix)
            self.playwright = sync_playwright().start()
            wrapper = self.ns.chromium_wrapper(self.tmp, CHROMIUM)
            # WebCrypto exists only in secure contexts; the bench marks its own origin as trustworthy (as the e2e tests do).
            self.browser = self.playwright.chromium.launch(
                executable_path=wrapper, headless=True, args=[f"--unsafely-treat-insecure-origin-as-secure={self.server.http}"])
            self.overlay = Overlay(self.browser, self.server.http, self.server.ws, Timeline())
        except Exception:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for n in self.natives:
            n.stop()
        self.natives = []
        for name in ("browser", "playwright"):
            thing = getattr(self, name, None)
            if thing is not None:
                try:
                    thing.close() if name == "browser" else thing.stop()
                except Exception as error:   # already gone: nothing left to stop
                    print(f"bench: closing {name}: {error}", file=sys.stderr)
        if getattr(self, "server", None) is not None:
            self.server.stop()
        self.ns.__exit__()

    # MARK: peers

    def pages(self, n, workers=1):
        """`n` more pages, each a peer with `workers` Web Workers; returns [(context, page, peerId)]."""
        return self.overlay.spawn(n, workers=workers)

    def submitter(self):
        """A page that submits and computes nothing (0 workers): every task crosses the network, and its
        explorer is wrapped to time each task's round trip."""
        page = self.overlay.spawn(1, workers=0)[0][1]
        page.evaluate(INSTRUMENT)
        return page

    def close_pages(self, pages):
        for p in pages:
            self.overlay.close(self.overlay.pages.index(p))

    def start_natives(self, n, workers=1):
        """`n` more native peers (`browsercloud peer --workers W`) in the namespace."""
        new = [NativePeer(self.server.ws, prefix=self.ns.prefix, listen=f"{self.ns.address}:0", workers=workers) for _ in range(n)]
        self.natives += new
        for p in new:
            p.wait_registered()
        return new

    def stop_natives(self):
        for n in self.natives:
            n.stop()
        self.natives = []

    def wait_ring(self, timeout=180):
        """Until every page and native peer holds the server's ring state and its links are open."""
        self.overlay.wait_stable(timeout=timeout, natives=self.natives)

    # MARK: measurements

    def page_job(self, page, scene, tiles, peers, runtime="raytrace"):
        """A `bp.raytrace` job from `page` (made by submitter()): {sha256, makespan (s), tasksPerPeer,
        rtts (ms, one per result received)}. Raises if the job failed."""
        out = page.evaluate(RAYTRACE, {"scene": scene, "tiles": tiles, "peers": peers, "runtime": runtime})
        if "error" in out:
            raise RuntimeError(f"the {tiles}-tile {runtime} job failed: {json.dumps(out)[:2000]}")
        stats = out["stats"]
        if stats.get("failed"):
            raise RuntimeError(f"the {tiles}-tile {runtime} job had failed tasks: {stats}")
        return {"sha256": out["sha256"], "makespan": stats["makespanMs"] / 1000, "tasksPerPeer": stats["tasksPerPeer"],
                "rtts": out["rtts"], "stats": stats}

    def one_core(self, runtime, scene):
        """The whole image of `scene` rendered in one Web Worker of a fresh page: {runSeconds, compileSeconds,
        instantiateSeconds (wasm), sha256 (of the RGBA pixels), bytes, cpuSeconds}. cpuSeconds: the CPU time
        of the whole Chromium process tree while the worker ran (fetches, compile and render included)."""
        context = self.browser.new_context()
        try:
            page = context.new_page()
            page.goto(self.server.http + "/")
            marker = f"--unsafely-treat-insecure-origin-as-secure={self.server.http}"
            before = tree_cpu_seconds(marker)
            out = page.evaluate(ONE_CORE, {"runtime": runtime, "scene": scene})
            out["cpuSeconds"] = tree_cpu_seconds(marker) - before
        finally:
            context.close()
        if "error" in out:
            raise RuntimeError(f"the one-core {runtime} render in Chromium failed: {out['error']}")
        return out

    def submit(self, args, timeout=1800):
        """`browsercloud submit ...` inside the namespace (a native submitter, 0 workers); its stdout."""
        import subprocess
        cmd = list(self.ns.prefix) + [str(RELEASE / "browsercloud"), "submit"] + [str(a) for a in args] + [
            "--server", self.server.ws, "--listen", f"{self.ns.address}:0"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        if r.returncode != 0:
            raise RuntimeError(f"submit failed ({r.returncode}): {r.stderr[-2000:]}")
        return r.stdout


def parse_submit(stdout):
    """makespan (s) and tasks per peer from `browsercloud submit`'s summary."""
    makespan = float(stdout.split("makespan ", 1)[1].split()[0])
    per_peer = {}
    for line in stdout.splitlines():
        parts = line.split()
        if line.startswith("  ") and len(parts) == 3 and parts[2] == "tasks":
            per_peer[parts[0]] = int(parts[1])
    return makespan, per_peer


def parse_discovery(stdout):
    """The discovery seconds of `browsercloud submit`'s summary ("makespan M s (discovery D s)")."""
    return float(stdout.split("(discovery ", 1)[1].split()[0])


def scene_text(scene):
    return (SCENES / f"{scene}.json").read_text()


def describe_scene(scene):
    """'the `standard` scene (1280×720, 3×3 samples per pixel, 37 objects)'."""
    d = json.loads(scene_text(scene))
    s = d.get("samples", 1)
    return f"the `{scene}` scene ({d['width']}×{d['height']}, {s}×{s} samples per pixel, {len(d.get('objects', []))} objects)"
