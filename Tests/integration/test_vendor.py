"""/vendor/: the JavaScript libraries the server serves from where Debian installs them (never copies in the
repository) for pages without WebCrypto: TweetNaCl.js (node-tweetnacl) and CryptoJS's SHA-256 components
(libjs-cryptojs); docs/protocol.md, "Browsers: WebCrypto or tweetnacl". A missing package: 404 and one warning
line at start; `none` serves nothing."""
import pathlib

import pytest
import requests

from harness import wait_until

TWEETNACL = pathlib.Path("/usr/share/nodejs/tweetnacl/nacl-fast.min.js")
CRYPTOJS = pathlib.Path("/usr/share/javascript/cryptojs/components")
CRYPTOJS_FILES = ["core-min.js", "lib-typedarrays-min.js", "sha256-min.js"]


@pytest.fixture(autouse=True)
def packages():
    missing = [str(p) for p in [TWEETNACL, *(CRYPTOJS / f for f in CRYPTOJS_FILES)] if not p.is_file()]
    if missing:
        pytest.fail(f"Debian's node-tweetnacl / libjs-cryptojs are not installed ({missing}): run scripts/install-deps.sh", pytrace=False)


def test_the_debian_files_are_served_as_javascript(server):
    served = {"/vendor/tweetnacl/nacl-fast.min.js": TWEETNACL, **{f"/vendor/cryptojs/{f}": CRYPTOJS / f for f in CRYPTOJS_FILES}}
    for path, file in served.items():
        r = server.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"] == "text/javascript; charset=utf-8", path
        assert r.content == file.read_bytes(), path
        head = requests.head(server.http + path, timeout=10)
        assert head.status_code == 200 and head.content == b"", path
    assert not [line for line in server.stderr_lines if "vendor" in line]


def test_only_the_listed_files_are_served(server):
    assert (CRYPTOJS / "aes-min.js").is_file()   # in the package, but not needed: not served
    for path in ["/vendor/cryptojs/aes-min.js", "/vendor/tweetnacl/nacl.js", "/vendor/", "/vendor/tweetnacl/",
                 "/vendor/cryptojs/../../etc/passwd", "/vendor/cryptojs/%2e%2e/aes-min.js"]:
        assert server.get(path).status_code == 404, path
    assert server.get("/vendor/tweetnacl/nacl-fast.min.js/").status_code == 200   # a trailing slash is ignored, as on routes
    assert requests.post(server.http + "/vendor/tweetnacl/nacl-fast.min.js", timeout=10).status_code == 405


def test_a_missing_package_is_a_404_and_one_warning_at_start(start_server, tmp_path):
    s = start_server("--tweetnacl-path", tmp_path / "no-such.js", "--cryptojs-path", tmp_path / "no-such-dir")
    r = s.get("/vendor/tweetnacl/nacl-fast.min.js")
    assert r.status_code == 404 and "node-tweetnacl" in r.text and str(tmp_path / "no-such.js") in r.text
    assert s.get("/vendor/cryptojs/sha256-min.js").status_code == 404
    s.get("/vendor/cryptojs/core-min.js")
    warnings = wait_until(lambda: (w := [line for line in s.stderr_lines if "vendor library missing" in line]) and len(w) >= 2 and w,
                          message="the warnings")
    assert len(warnings) == 2, warnings   # one line per package, at start, not per request
    assert any("node-tweetnacl" in w for w in warnings) and any("libjs-cryptojs" in w for w in warnings)


def test_none_serves_nothing_and_warns_of_nothing(start_server):
    s = start_server("--tweetnacl-path", "none", "--cryptojs-path", "none")
    assert s.get("/vendor/tweetnacl/nacl-fast.min.js").status_code == 404
    assert s.get("/vendor/cryptojs/core-min.js").status_code == 404
    assert s.get("/").status_code == 200   # the start-up is complete: its lines are in
    assert not [line for line in s.stderr_lines if "vendor" in line]
