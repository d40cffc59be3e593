"""`serve` settings from flags, environment variables and a configuration file, with one precedence
rule: command line > environment > file > defaults (docs/operations.md)."""
import json
import os
import re
import subprocess

import pytest

from harness import BIN, ROOT, Server


def rows(server):
    return server.stats()["fingerRows"]


@pytest.fixture
def env(monkeypatch):
    for k in list(os.environ):
        if k.startswith("BROWSERCLOUD_") and k != "BROWSERCLOUD_BIN":
            monkeypatch.delenv(k)
    return monkeypatch


def test_precedence_command_line_over_environment_over_file(tmp_path, env):
    conf = tmp_path / "browsercloud.conf"
    conf.write_text("# a comment\nfingers = all\nmax-peers = 7   # trailing comment\n\n")
    s = Server(tmp_path, "--config", conf)                      # file only
    try:
        assert rows(s) == list(range(48))
    finally:
        s.stop()
    env.setenv("BROWSERCLOUD_FINGERS", "0,47")
    s = Server(tmp_path, "--config", conf)                      # environment over file
    try:
        assert rows(s) == [0, 47]
    finally:
        s.stop()
    s = Server(tmp_path, "--config", conf, "--fingers", "0,10,12")  # command line over both
    try:
        assert rows(s) == [0, 10, 12]
    finally:
        s.stop()
    env.setenv("BROWSERCLOUD_CONFIG", str(conf))
    env.delenv("BROWSERCLOUD_FINGERS")
    s = Server(tmp_path)                                          # the file named by the environment
    try:
        assert rows(s) == list(range(48))
    finally:
        s.stop()


@pytest.mark.parametrize("content,message", [
    ("no-such-setting = 1\n", "unknown setting 'no-such-setting'"),
    ("just words\n", "expected `name = value`"),
    ("permessage-deflate = maybe\n", "takes true or false"),
])
def test_bad_configuration_files_are_refused_with_the_line(tmp_path, env, content, message):
    conf = tmp_path / "bad.conf"
    conf.write_text(content)
    r = subprocess.run([BIN, "serve", "--port", "0", "--config", str(conf)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and message in r.stderr and "bad.conf" in r.stderr, r.stderr


def serve(*args, env=None):
    return subprocess.run([BIN, "serve", *map(str, args)], capture_output=True, text=True, timeout=30, env=env)


def table():
    """The settings table as the binary declares it (Settings.swift), with the derived names."""
    r = serve("--print-settings", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# A valid value other than the default, per kind (text settings need a value of their own).
TEXT = {"host": "0.0.0.0", "fingers": "0,47", "public": "/srv/bundle", "secret-file": "/var/lib/bc/secret",
        "server-key-file": "/var/lib/bc/server.ed25519",
        "admin-token": "0123456789abcdefX", "admin-token-file": "/etc/bc/admin", "allowed-origins": "https://a.example",
        "tls-cert": "/etc/bc/cert.pem", "tls-key": "/etc/bc/key.pem", "record-events": "/var/log/bc/events.jsonl",
        "state-file": "/var/lib/bc/state", "tweetnacl-path": "/srv/js/nacl-fast.min.js", "cryptojs-path": "/srv/js/cryptojs",
        "trusted-proxies": "127.0.0.1,::1", "cluster": "redis://10.0.0.5:6380/2", "instance": "node-2",
        "cluster-prefix": "bc-test", "seed": "12345"}


def other_value(row):
    if row["kind"] == "switch":
        return "true"
    if row["kind"] == "choice":
        return next(c for c in row["choices"] if c != row["default"])
    if row["kind"] == "integer":
        return str(int(row["default"]) + 1) if row["default"] != "none" else "8443"
    if row["kind"] == "number":
        return format(float(row["default"]) + 0.25, "g")
    return TEXT[row["name"]]


def values(text):
    return dict(line.split(" = ", 1) for line in text.splitlines())


def test_the_table_derives_every_name():
    rows = table()
    assert len(rows) >= 30
    names = [r["name"] for r in rows]
    assert len(set(names)) == len(names)
    for r in rows:
        assert r["flag"] == "--" + r["name"] and r["fileKey"] == r["name"]
        assert r["environment"] == "BROWSERCLOUD_" + r["name"].upper().replace("-", "_")
        assert r["help"] and r["kind"] in ("switch", "integer", "number", "text", "choice"), r


@pytest.mark.parametrize("source", ["environment", "file", "command line"])
def test_every_setting_works_from_every_source(tmp_path, env, source):
    """Each setting, given a value other than its default through one source, comes out with it."""
    rows = table()
    wanted = {r["name"]: other_value(r) for r in rows}
    args = ["--print-settings", "values"]
    environment = dict(os.environ)
    if source == "environment":
        environment.update({r["environment"]: wanted[r["name"]] for r in rows})
    elif source == "file":
        conf = tmp_path / "all.conf"
        conf.write_text("".join(f"{name} = {value}\n" for name, value in wanted.items()))
        args += ["--config", conf]
    else:
        for r in rows:
            args += [r["flag"]] if r["kind"] == "switch" else [r["flag"], wanted[r["name"]]]
    r = serve(*args, env=environment)
    assert r.returncode == 0, r.stderr
    got = values(r.stdout)
    assert {k: got[k] for k in wanted} == wanted
    # and nothing given: the defaults
    r = serve("--print-settings", "values")
    # ("off", "all" and derived defaults such as "<secret-file>.state" are absent values.)
    assert values(r.stdout) == {row["name"]: row["default"] if row["default"] not in ("off", "all") and not row["default"].startswith("<")
                                else "none" for row in rows}


@pytest.mark.parametrize("args,environment,message", [
    (["--no-such-flag", "1"], {}, "unknown option '--no-such-flag'"),
    (["--port"], {}, "--port needs a value"),
    (["--link-relay=yes"], {}, "--link-relay is a switch"),
    (["--port", "x"], {}, "the command line: 'port' takes an integer, not 'x'"),
    ([], {"BROWSERCLOUD_MAX_PEERS": "many"}, "BROWSERCLOUD_MAX_PEERS: 'max-peers' takes an integer, not 'many'"),
    ([], {"BROWSERCLOUD_EVENT_LOOP": "select"}, "'event-loop' takes one of epoll, poll"),
    ([], {"BROWSERCLOUD_LINK_RELAY": "maybe"}, "BROWSERCLOUD_LINK_RELAY: 'link-relay' takes true or false"),
    (["--trusted-proxies", "127.0.0.1,proxy.example"], {}, "--trusted-proxies takes a comma list of IP addresses"),
    (["--receive-buffer-bytes", "64"], {}, "--receive-buffer-bytes must be 128...65536"),
    (["--write-batch-bytes", "100"], {}, "--write-batch-bytes must be 1024...1048576"),
    ([], {"BROWSERCLOUD_TRIM_MEMORY": "-1"}, "--trim-memory must be 0 (never) or more seconds"),
])
def test_unknown_names_and_bad_values_fail_clearly(env, args, environment, message):
    r = serve("--port", "0", *args, env={**os.environ, **environment})
    assert r.returncode != 0 and message in r.stderr, r.stderr


def test_help_lists_every_setting():
    help_text = serve("--help").stdout
    flags = set(re.findall(r"^\s+--([a-z0-9-]+)", help_text, re.M))
    assert flags == {r["name"] for r in table()} | {"config", "version"}, flags


def test_the_operations_table_is_the_generated_one():
    """docs/operations.md carries `serve --print-settings markdown` verbatim between its markers."""
    docs = (ROOT / "docs/operations.md").read_text()
    start = docs.index("<!-- generated by `browsercloud serve --print-settings markdown`")
    body = docs[docs.index("\n", start) + 1:docs.index("<!-- end of generated table -->")]
    generated = serve("--print-settings", "markdown").stdout
    assert body == generated, "docs/operations.md's settings table differs: paste `browsercloud serve --print-settings markdown`"
