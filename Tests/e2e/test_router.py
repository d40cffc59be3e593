"""The JavaScript router against the shared routing vectors (Tests/vectors/routing.json), which the
Swift router must also reproduce."""
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_router_reproduces_the_shared_routing_vectors(page):
    vectors = json.loads((ROOT / "Tests/vectors/routing.json").read_text())["vectors"]
    mismatches = page.evaluate("""async (vectors) => {
      const { route } = await import('/explorer/ring.js')
      return vectors.map((v, i) => [i, route(v), v.expect]).filter(([, got, want]) => JSON.stringify(got) !== JSON.stringify(want))
    }""", vectors)
    assert mismatches == [], mismatches[:5]
