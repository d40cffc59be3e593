"""Browser tests in real headless Chromium (Debian's package) driven by Playwright, against the real
server serving Public/. See ../shared notes: root needs --no-sandbox; use the real binary, not the
/usr/bin/chromium wrapper."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "integration"))
from harness import Server  # noqa: E402

CHROMIUM = "/usr/lib/chromium/chromium"


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def web_server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("e2e"))
    yield s
    s.stop()


@pytest.fixture
def page(browser, web_server):
    context = browser.new_context()
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(web_server.http + "/")
    yield pg
    context.close()
    assert not errors, errors
