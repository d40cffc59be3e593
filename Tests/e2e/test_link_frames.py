"""The browser's link frames (Public/explorer/link-frame.js) against the shared vectors
(Tests/vectors/link-frames.json, written by make_link_frame_vectors.py from docs/protocol.md), which the
native peer's LinkFrame.swift also reproduces."""
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "Tests/vectors/link-frames.json").read_text())


def test_frames_parse_as_the_vectors_say(page):
    assert len(VECTORS["frames"]) >= 300
    mismatches = page.evaluate("""async (vectors) => {
      const { parseFrame } = await import('/explorer/link-frame.js')
      return vectors.map((v) => [v.frame, parseFrame(v.frame), v.expect])
        .filter(([, got, want]) => JSON.stringify(got) !== JSON.stringify(want))
    }""", VECTORS["frames"])
    assert mismatches == [], mismatches[:5]


def test_reassembly_outcomes_are_the_vectors(page):
    assert len(VECTORS["sequences"]) >= 60
    mismatches = page.evaluate("""async (sequences) => {
      const { Reassembler } = await import('/explorer/link-frame.js')
      return sequences.map((s, n) => {
        const r = new Reassembler(s.maxChars)
        const got = []
        for (const [id, index, count, part] of s.parts) {
          got.push(r.add(id, index, count, part))
          if (got.at(-1).status === 'overflow') break
        }
        return [n, got, s.expect]
      }).filter(([, got, want]) => JSON.stringify(got) !== JSON.stringify(want))
    }""", VECTORS["sequences"])
    assert mismatches == [], mismatches[:3]


def test_long_messages_split_into_frames_that_reassemble(page):
    """chunkFrames never splits a surrogate pair, and its frames parse and reassemble to the message."""
    ok = page.evaluate("""async () => {
      const { chunkFrames, parseFrame, Reassembler } = await import('/explorer/link-frame.js')
      const text = 'a😀'.repeat(500) + 'é'.repeat(333)
      const frames = chunkFrames(text, 7, 'id1')
      const r = new Reassembler(1 << 20)
      let whole = null
      for (const f of frames.reverse()) {
        const c = parseFrame(f)
        if (c.kind !== 'chunk' || /[\\ud800-\\udbff]$/.test(c.part)) return 'bad frame ' + f
        const out = r.add(c.id, c.index, c.count, c.part)
        if (out.status === 'complete') whole = out.text
      }
      return whole === text
    }""")
    assert ok is True, ok
