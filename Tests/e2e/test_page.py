"""The page a volunteer opens: it joins the ring, shows its place in it, and leaves."""
import re


def test_page_joins_shows_state_and_leaves(page, web_server):
    page.click("#join")
    page.wait_for_function("() => document.getElementById('status').textContent === 'in the ring'", timeout=10000)
    peer_id = page.text_content("#peer-id")
    assert re.fullmatch(r"[0-9a-f]{12}", peer_id)
    assert web_server.get(f"/api/peers/{peer_id}").status_code == 200
    assert page.locator("#fingers tr").count() >= 3          # auto rows for a lone peer: 0, 46, 47
    page.wait_for_function("() => document.querySelectorAll('#ring circle').length >= 2", timeout=10000)
    page.screenshot(path=str(web_server.secret_file) + ".png")
    page.click("#leave")
    page.wait_for_function("() => document.getElementById('status').textContent === 'left'", timeout=10000)
