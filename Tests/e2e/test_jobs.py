"""The job engine (browser-process.js) across real Chromium peers on the overlay: ray-trace jobs give the
bytes of a single render whatever the tiling and whoever rendered what, a job survives 30% of its
workers closing, and a throwing or endless task is reported without hurting the job or the page."""
import json
import math
import pathlib

from overlay import N

ROOT = pathlib.Path(__file__).resolve().parents[2]
VECTORS = {v["scene"]: v["sha256"] for v in json.loads((ROOT / "Tests/vectors/raytracer.json").read_text())["images"]}

SUBMIT = """async ({ name, tiles, peers, samples }) => {
  const scene = await (await fetch(`/scenes/${name}.json`)).json()
  if (samples) scene.samples = samples
  window.started = new Promise((resolve) => {
    const off = window.bp.events.on('progress', ({ done }) => { if (done >= 1) { off(); resolve() } })
  })
  window.jobDone = false
  window.job = window.bp.raytrace(scene, { tiles, peers }).then((r) => ({ sha256: r.sha256, stats: r.stats }))
  window.job.then(() => { window.jobDone = true }, () => { window.jobDone = true })
}"""

# The bytes of the scene rendered in one piece in a Web Worker of the page (the single-peer reference).
REFERENCE = """async ({ name, samples }) => {
  const scene = await (await fetch(`/scenes/${name}.json`)).json()
  scene.samples = samples
  const source = `import { prepareScene, renderTile } from '${location.origin}/raytracer.js'
    onmessage = async (e) => { const s = prepareScene(e.data); const px = renderTile(s, { x: 0, y: 0, width: s.width, height: s.height })
      postMessage(Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', px)), (b) => b.toString(16).padStart(2, '0')).join('')) }`
  const worker = new Worker(URL.createObjectURL(new Blob([source], { type: 'text/javascript' })), { type: 'module' })
  const sha = await new Promise((resolve, reject) => { worker.onmessage = (e) => resolve(e.data); worker.onerror = reject; worker.postMessage(scene) })
  worker.terminate()
  return sha
}"""


def ring(overlay):
    if not overlay.live:
        overlay.spawn(N)
    overlay.wait_stable()
    return overlay.live


def job_result(page, timeout=120000):
    return page.evaluate(f"""() => Promise.race([window.job,
      new Promise((_, reject) => setTimeout(() => reject(new Error('job timed out')), {timeout}))])""")


def test_raytrace_jobs_give_the_bytes_of_a_single_render(overlay):
    live = ring(overlay)
    page = live[0][1]
    for tiles in (25, 400):
        page.evaluate(SUBMIT, {"name": "small", "tiles": tiles, "peers": N})
        result = job_result(page)
        stats = result["stats"]
        assert result["sha256"] == VECTORS["Public/scenes/small.json"], (tiles, stats)
        assert stats["tasks"] == tiles and sum(stats["tasksPerPeer"].values()) == tiles
        assert len(stats["peers"]) == N, stats          # discovery through the overlay found every peer
        assert len(stats["tasksPerPeer"]) > 1, stats    # and more than one of them rendered tiles
        assert stats["failed"] == 0 and stats["mismatches"] == 0


def test_a_job_survives_30_percent_of_its_workers_closing(overlay):
    live = ring(overlay)
    submitter = live[0][1]
    others = [i for i, p in enumerate(overlay.pages) if p[0] is not None][1:]
    leaving = others[:math.ceil(0.3 * len(others))]
    # The medium scene with 6x6 samples per pixel: long enough (about 12 s of one core) to close pages
    # mid-job even when closing a browser context takes seconds on a loaded machine.
    submitter.evaluate(SUBMIT, {"name": "medium", "tiles": 100, "peers": len(live), "samples": 6})
    submitter.evaluate("() => window.started")   # the first tile is in: every worker has its tasks
    overlay.close(leaving[0])
    # At least this worker left mid-job (closing a page takes a while: the later ones may come after the end).
    assert not submitter.evaluate("() => window.jobDone"), "the job ended before a page closed: the scenario proves nothing"
    for index in leaving[1:]:
        overlay.close(index)
    result = job_result(submitter)
    stats = result["stats"]
    assert result["sha256"] == submitter.evaluate(REFERENCE, {"name": "medium", "samples": 6}), stats
    assert stats["failed"] == 0 and stats["peersLost"] >= 1, stats
    assert sum(stats["tasksPerPeer"].values()) == 100
    lost = {e["payload"]["peerId"] for e in overlay.timeline.of("peer-lost")}
    assert lost <= {overlay.pages[i][2] for i in leaving}, (lost, stats)


def test_throwing_and_endless_tasks_are_reported_and_hurt_nothing(overlay):
    live = ring(overlay)
    page = live[0][1]
    before = len(overlay.timeline.of("task-run"))
    out = page.evaluate("""async (peers) => {
      const task = function (x) {
        if (x === 3) throw new Error('task three throws')
        if (x === 7) for (;;) {}
        return x * 2
      }
      try {
        await window.bp.execute([...Array(16).keys()], task, peers, { tasks: 16, deadlineMs: 1500, maxAttempts: 2 })
        return null
      } catch (error) {
        return { name: error.name, message: error.message, results: error.results, failures: error.failures }
      }
    }""", len(live))
    assert out is not None and out["name"] == "JobError", out
    assert {f["task"]: f["code"] for f in out["failures"]} == {3: "threw", 7: "deadline"}, out
    assert "task three throws" in json.dumps(out["failures"])
    assert out["results"] == [None if x in (3, 7) else x * 2 for x in range(16)]
    # Reported where it happened too: the peers that ran them saw the error and the deadline.
    runs = overlay.timeline.of("task-run")[before:]
    assert any(e["payload"]["code"] == "threw" for e in runs) and any(e["payload"]["code"] == "deadline" for e in runs)
    # The pages are unharmed: the next job and the overlay both work.
    assert page.evaluate("(peers) => window.bp.execute([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], function (a) { return a + 1 }, peers)",
                         len(live)) == list(range(1, 12))
    delivered, expected, _ = overlay.all_pairs()
    assert delivered == expected


def test_the_page_renders_a_job_across_the_ring(overlay, tmp_path_factory):
    """index.html as a volunteer uses it: join, choose scene, tiles and peers, render; the image is drawn
    tile by tile and the page shows the digest, the makespan and the tasks per peer."""
    import os
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
        page.fill("#peers", str(len(live) + 1))
        page.click("#run")
        page.wait_for_function("() => document.getElementById('job-status').textContent.startsWith('done')", timeout=60000)
        assert page.text_content("#sha") == VECTORS["Public/scenes/small.json"]
        assert page.locator("#per-peer tr").count() > 1
        assert page.evaluate("() => document.getElementById('progress').value") == 1
        # The canvas holds the image (its pixels are the job's bytes).
        assert page.evaluate("""async () => {
          const c = document.getElementById('canvas')
          const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data
          const d = new Uint8Array(await crypto.subtle.digest('SHA-256', pixels))
          return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('')
        }""") == VECTORS["Public/scenes/small.json"]
        out = pathlib.Path(os.environ.get("E2E_ARTIFACTS", tmp_path_factory.getbasetemp())) / "raytrace-page.png"
        page.screenshot(path=str(out), full_page=True)
        page.click("#leave")
        assert not errors, errors
    finally:
        context.close()
