"""The live network view (Public/visualizer.html) in real Chromium, against the real server: peers that
join appear as marks with the right counters, a peer that leaves disappears, and a virtual network
from `browsercloud simulate --json` (also a crowded one) is drawn. Screenshots are saved as artifacts."""
import json
import os
import pathlib
import subprocess

from harness import BIN, Peer

MARKS = "() => document.querySelectorAll('#marks .peer:not(.leaving)').length"


def artifact(tmp_path_factory, name):
    return str(pathlib.Path(os.environ.get("E2E_ARTIFACTS", tmp_path_factory.getbasetemp())) / name)


def test_live_view_follows_joins_and_leaves(page, web_server, tmp_path_factory):
    page.goto(web_server.http + "/visualizer.html")
    peers = []
    try:
        for _ in range(6):
            p = Peer(web_server)
            p.register()
            peers.append(p)
        online = web_server.stats()["peersOnline"]
        page.wait_for_function(f"() => ({MARKS})() === {online}", timeout=10000)
        page.wait_for_function(f"() => document.getElementById('c-peers').textContent === '{online}'", timeout=10000)
        ids = page.evaluate("() => [...document.querySelectorAll('#marks .peer')].map(c => c.dataset.id)")
        assert set(p.peer_id for p in peers) <= set(ids)
        assert page.locator("#links .succ").count() == online      # one successor chord per peer
        page.hover(f"#marks .peer[data-id='{peers[0].peer_id}']")
        assert peers[0].peer_id in page.text_content("#hover")
        page.click(f"#marks .peer[data-id='{peers[0].peer_id}']")
        assert peers[0].peer_id in page.text_content("#selected")
        page.screenshot(path=artifact(tmp_path_factory, "visualizer-live.png"))
        gone = peers.pop()
        gone.close()
        page.wait_for_function(f"() => ({MARKS})() === {online - 1}", timeout=10000)
        assert page.locator(f"#marks .peer[data-id='{gone.peer_id}']:not(.leaving)").count() == 0
        page.wait_for_function(f"() => document.getElementById('c-peers').textContent === '{online - 1}'", timeout=10000)
        assert int(page.text_content("#c-leaves")) >= 1
    finally:
        for p in peers:
            p.close()


def test_a_simulated_network_is_drawn_with_less_detail_when_crowded(page, web_server, tmp_path_factory):
    page.goto(web_server.http + "/visualizer.html")
    for n, chords in [(60, True), (1000, False)]:
        out = subprocess.run([BIN, "simulate", "--peers", str(n), "--lookups", "100", "--json"], capture_output=True, text=True, timeout=120, check=True)
        report = json.loads(out.stdout)
        page.evaluate("(r) => window.visualizer.loadSimulation(r)", report)
        assert page.evaluate(MARKS) == n
        assert "simulated" in page.text_content("#source")
        assert page.text_content("#c-peers") == str(n)
        assert (page.locator("#links .finger").count() > 0) == chords
        page.screenshot(path=artifact(tmp_path_factory, f"visualizer-simulated-{n}.png"))
