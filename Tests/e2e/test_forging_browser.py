"""Signed overlay messages between browsers (issue 12, docs/protocol.md "Signed overlay messages"): a page
injects forged, altered, replayed and unsigned frames on its real link to another page (a test hook: the
channel manager's `send`, which sends an `S` text as it is); the receiving page refuses them, counts them
by reason (`overlayCounters`) and emits 'forgery'; honest traffic still arrives with its true source."""

def test_a_page_refuses_and_counts_forged_and_replayed_frames(overlay):
    overlay.spawn(3)
    overlay.wait_stable()
    pages = {peer_id: page for _, page, peer_id in overlay.live}
    # Before any overlay message: each page's verifier knows its successors' holder epochs from the ring
    # updates (docs/protocol.md, "Holder epochs in ring updates"), so an older certificate of theirs is stale.
    epochs = {peer_id: page.evaluate("() => window.peer.epoch") for peer_id, page in pages.items()}
    for peer_id, page in pages.items():
        known, accepted = page.evaluate("""() => [Object.fromEntries(window.peer.successors.map((s) => [s, window.peer.verifier.highestEpoch(s)])),
                                                 window.peer.overlayCounters.accepted]""")
        assert accepted == 0 and known and known == {s: epochs[s] for s in known}, (peer_id, known, epochs, accepted)
    a_id = overlay.live[0][2]
    a = pages[a_id]
    b_id = a.evaluate("() => window.peer.channels.openPeers()[0]")
    c_id = next(p for p in pages if p not in (a_id, b_id))
    b = pages[b_id]
    b.evaluate("""() => {
      window.forgeries = []
      window.peer.events.on('forgery', (f) => window.forgeries.push(f))
      window.inbox = []
    }""")
    before = b.evaluate("() => window.peer.overlayCounters")
    a.evaluate("""async ({ b, c }) => {
      const peer = window.peer
      const send = (text) => peer.channels.send(b, text)
      // 1. srcId rewritten to c's, a's own certificate and signature: wrong-source.
      const f1 = await peer.signer.frame(b, 'f1', Date.now(), { evil: 1 })
      await send(f1.replace(`{"srcId":"${peer.peerId}"`, `{"srcId":"${c}"`))
      // 2. data altered after signing: bad-signature.
      const f2 = await peer.signer.frame(b, 'f2', Date.now(), { evil: 2 })
      await send(f2.replace('"evil":2', '"evil":3'))
      // 3. a genuine frame delivered twice: the second is replayed.
      const f3 = await peer.signer.frame(b, 'f3', Date.now(), { n: 3 })
      await send(f3)
      await send(f3)
      // 4. signed five minutes and more ago: outside the window.
      await send(await peer.signer.frame(b, 'f4', Date.now() - 400000, { evil: 4 }))
      // 5. an unsigned M message claiming c as its source.
      await send(JSON.stringify({ srcId: c, dstId: b, data: { evil: 5 }, hops: 0, id: 'u' }))
    }""", {"b": b_id, "c": c_id})
    b.wait_for_function("() => window.forgeries.length >= 5", timeout=15000)
    reasons = sorted(f["reason"] for f in b.evaluate("() => window.forgeries"))
    assert reasons == sorted(["wrong-source", "bad-signature", "replayed", "outside-window", "unsigned"])
    after = b.evaluate("() => window.peer.overlayCounters")
    for reason in ["wrong-source", "bad-signature", "replayed", "outside-window", "unsigned"]:
        assert after["rejected"][reason] == before["rejected"].get(reason, 0) + 1, (reason, after)
    assert after["forgeries"] == before["forgeries"] + 5
    # Only the genuine message reached the application, with its true source.
    got = b.evaluate("() => window.inbox.filter((m) => m.data && (m.data.evil !== undefined || m.data.n !== undefined))")
    assert [(m["srcId"], m["data"]) for m in got] == [(a_id, {"n": 3})]

    # Honest traffic between every pair still arrives.
    delivered, expected, _ = overlay.all_pairs()
    assert delivered == expected
