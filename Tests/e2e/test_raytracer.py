"""The ray tracer in real Chromium: the assembled image is byte-identical for every tiling, in a Web
Worker as on the main thread, and matches the reference digests in Tests/vectors/raytracer.json."""
import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
VECTORS = {v["scene"]: v["sha256"] for v in json.loads((ROOT / "Tests/vectors/raytracer.json").read_text())["images"]}

RENDER = """async ({ scene, count }) => {
  const rt = await import('/raytracer.js')
  const s = rt.prepareScene(scene)
  const image = new Uint8ClampedArray(s.width * s.height * 4)
  const tiles = rt.tiles(s.width, s.height, count)
  for (const t of tiles) rt.blit(image, s.width, t, rt.renderTile(s, t))
  const digest = await crypto.subtle.digest('SHA-256', image)
  return { tiles: tiles.length, sha: [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('') }
}"""

WORKER = """async ({ scene }) => {
  const source = `import { prepareScene, renderTile } from '${location.origin}/raytracer.js'
    onmessage = (e) => { const s = prepareScene(e.data); postMessage(renderTile(s, { x: 0, y: 0, width: s.width, height: s.height })) }`
  const worker = new Worker(URL.createObjectURL(new Blob([source], { type: 'text/javascript' })), { type: 'module' })
  const pixels = await new Promise((resolve, reject) => { worker.onmessage = (e) => resolve(e.data); worker.onerror = reject; worker.postMessage(scene) })
  worker.terminate()
  const digest = await crypto.subtle.digest('SHA-256', pixels)
  return [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('')
}"""


def scene(name):
    return json.loads((ROOT / "Public/scenes" / f"{name}.json").read_text())


@pytest.mark.parametrize("name", ["small", "odd", "medium"])
def test_every_tiling_gives_the_reference_image(page, name):
    expected = VECTORS[f"Public/scenes/{name}.json"]
    for count, tiles in [(1, 1), (25, 25), (400, 400)]:
        got = page.evaluate(RENDER, {"scene": scene(name), "count": count})
        assert got["sha"] == expected, (name, count)
        if name == "small":
            assert got["tiles"] == tiles


def test_worker_renders_the_same_bytes(page):
    assert page.evaluate(WORKER, {"scene": scene("small")}) == VECTORS["Public/scenes/small.json"]


@pytest.mark.parametrize("patch,field", [
    ({"width": 0}, "width"),
    ({"samples": 9}, "samples"),
    ({"camera": {"position": [0, 0, 0], "lookAt": [0, 1, 0], "up": [0, 1, 0]}}, "camera"),
    ({"objects": [{"type": "cube"}]}, "objects[0].type"),
    ({"objects": [{"type": "sphere", "center": [0, 0, 0], "radius": -1, "material": {"type": "solid", "color": [1, 1, 1]}}]}, "objects[0].radius"),
    ({"lights": [{"position": [0, "x", 0]}]}, "lights[0].position"),
])
def test_bad_scenes_are_refused_with_the_field_named(page, patch, field):
    bad = {**scene("small"), **patch}
    message = page.evaluate("""async (s) => {
      const rt = await import('/raytracer.js')
      try { rt.prepareScene(s); return null } catch (e) { return e.message }
    }""", bad)
    assert message is not None and field in message, message


def test_tiles_outside_the_image_are_refused(page):
    message = page.evaluate("""async (s) => {
      const rt = await import('/raytracer.js')
      try { rt.renderTile(rt.prepareScene(s), { x: 60, y: 0, width: 10, height: 10 }); return null } catch (e) { return e.message }
    }""", scene("small"))
    assert "not inside" in message

