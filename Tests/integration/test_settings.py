"""`serve` settings from flags, environment variables and a configuration file, with one precedence
rule: command line > environment > file > defaults (docs/operations.md)."""
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


def test_every_flag_is_in_the_operations_table():
    """`serve --help` shows every setting; docs/operations.md lists each with its variable."""
    help_text = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True, timeout=30).stdout
    flags = set(re.findall(r"^\s+--([a-z0-9-]+)", help_text, re.M)) - {"help", "version"}
    table = (ROOT / "docs/operations.md").read_text()
    missing = [f for f in sorted(flags) if f"`--{f}`" not in table or f"BROWSERCLOUD_{f.upper().replace('-', '_')}" not in table and f != "config"]
    assert not missing, missing
