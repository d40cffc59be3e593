"""Browser tests in real headless Chromium (Debian's package) driven by Playwright, against the real
server serving Public/. See ../shared notes: root needs --no-sandbox; use the real binary, not the
/usr/bin/chromium wrapper."""
import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "integration"))
from harness import Server  # noqa: E402
from netns import NetNS  # noqa: E402
from overlay import CHROMIUM, Overlay, Timeline  # noqa: E402


@pytest.fixture(scope="session")
def playwright():
    """One Playwright driver for the session (the sync API allows only one at a time)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Debian's Chromium is missing: no executable {CHROMIUM} (scripts/install-deps.sh --test installs "
                    "the chromium package)", pytrace=False)
    b = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
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


@pytest.fixture(scope="module")
def namespace():
    if os.geteuid() != 0:
        pytest.fail("this test needs root: it creates a network namespace (ip netns add) for Chromium's WebRTC "
                    "(CI runs as root); run pytest as root", pytrace=False)
    with NetNS() as ns:
        yield ns


@pytest.fixture(scope="module")
def ring_server(namespace, tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("overlay"), host=namespace.address, prefix=namespace.prefix)
    s.restarts = []   # servers started in its place (same address and port) by the restart scenario
    yield s
    for r in [s] + s.restarts:
        r.stop()


@pytest.fixture(scope="module")
def overlay(playwright, namespace, ring_server, tmp_path_factory, request):
    timeline = Timeline()
    wrapper = namespace.chromium_wrapper(tmp_path_factory.mktemp("bin"), CHROMIUM)
    # WebCrypto (SHA-256 of job results) exists only in secure contexts; http://10.x is not one. A
    # real deployment serves https (or localhost); the test marks its own origin as trustworthy.
    browser = playwright.chromium.launch(executable_path=wrapper, headless=True,
                                         args=[f"--unsafely-treat-insecure-origin-as-secure={ring_server.http}"])
    yield Overlay(browser, ring_server.http, ring_server.ws, timeline)
    browser.close()
    artifact = pathlib.Path(os.environ.get("E2E_ARTIFACTS", tmp_path_factory.getbasetemp())) / f"{request.module.__name__}-timeline.json"
    timeline.save(artifact)
    print(f"timeline: {artifact}", file=sys.stderr)
