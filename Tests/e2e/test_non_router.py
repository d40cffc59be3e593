"""The browser's neighbour-of-neighbour router (Public/explorer/non-routing.js) against the shared vectors of
Tests/vectors/non-routing.json (an independent Python model, make_non_vectors.py), which the Swift router
(routeNoN, RingTests) also reproduces; and the `N` frames and list bookkeeping of explorer/neighbour-lists.js."""
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "Tests/vectors/non-routing.json").read_text())


def test_non_router_reproduces_every_shared_decision(page):
    mismatches = page.evaluate("""async (vectors) => {
      const { routeNoN } = await import('/explorer/non-routing.js')
      return vectors.map((v, i) => [i, v.kind, routeNoN(v), v.expect]).filter(([, , got, want]) => JSON.stringify(got) !== JSON.stringify(want))
    }""", VECTORS["vectors"])
    assert len(VECTORS["vectors"]) >= 150
    assert mismatches == [], mismatches[:5]


def test_non_router_walks_every_shared_path(page):
    mismatches = page.evaluate("""async ({ rings, paths }) => {
      const { routeNoN } = await import('/explorer/non-routing.js')
      const out = []
      for (const [i, p] of paths.entries()) {
        const table = rings[p.ring]
        const lists = (id) => table[id]?.neighbours
        let at = p.source
        const walked = [at]
        while (walked.length <= Object.keys(table).length + 1) {
          const t = table[at]
          const d = routeNoN({ self: at, dst: p.dst, predecessor: t.predecessor, successors: t.successors, fingers: t.fingers,
                               candidates: t.candidates, neighbours: lists })
          if (!d.next) break
          at = d.next
          walked.push(at)
        }
        if (JSON.stringify(walked) !== JSON.stringify(p.path)) out.push([i, walked, p.path])
      }
      return out
    }""", {"rings": VECTORS["rings"], "paths": VECTORS["paths"]})
    assert len(VECTORS["paths"]) >= 100
    assert mismatches == [], mismatches[:3]


def test_neighbour_frames_are_bounded_and_lists_are_shared_once_per_change(page):
    out = page.evaluate("""async () => {
      const { parseNeighbours, encodeNeighbours, neighbourList } = await import('/explorer/non-routing.js')
      const { NeighbourLists } = await import('/explorer/neighbour-lists.js')
      const a = '0123456789ab', b = 'ba9876543210'
      const parsed = ['N', encodeNeighbours([a, b]), 'N' + Array(64).fill(a).join(','), 'N' + Array(65).fill(a).join(','),
        'N0123456789AB', 'N0123456789ab,', 'Nx'].map((t) => parseNeighbours(t)?.length ?? null)
      const sent = []
      let list = [a]
      const n = new NeighbourLists({ list: () => list, directPeers: () => ['p1', 'p2'], send: async (p, f) => { sent.push([p, f]) }, minIntervalMs: 60000 })
      n.share(); n.share()                   // once per link, not again for the same list
      list = [a, b]; n.share()               // changed within the interval: held back (a timer)
      n.receive('p1', encodeNeighbours([b])); n.receive('p2', 'Nbad')
      const got = [n.list('p1'), n.list('p2') ?? null]
      n.forget('p1')
      const order = neighbourList('000000000100', ['000000000300', '000000000110', '000000000100'], '0000000000f0')
      n.stop()
      return { parsed, sent, got, forgotten: n.list('p1') ?? null, order }
    }""")
    assert out["parsed"] == [0, 2, 64, None, None, None, None]
    assert out["sent"] == [["p1", "N0123456789ab"], ["p2", "N0123456789ab"]]
    assert out["got"] == [["ba9876543210"], None]
    assert out["forgotten"] is None
    assert out["order"] == ["000000000110", "000000000300", "0000000000f0"]
