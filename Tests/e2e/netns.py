"""A network namespace made by the test itself (Chromium never uses 127.0.0.1 for ICE): a veth pair with
one end inside, an IPv4 address (IPv6 off), lo up and a default route, so WebRTC host candidates exist. Only addresses
inside this namespace are used. Removed afterwards, also on failure."""
import os
import subprocess


class NetNS:
    def __init__(self, index=7):
        tag = f"bc{os.getpid() % 100000}"
        self.name = tag
        self.outer = f"{tag}o"
        self.inner = f"{tag}i"
        self.address = f"10.213.{index}.1"
        self.gateway = f"10.213.{index}.2"

    def run(self, *cmd, inside=False):
        full = (["ip", "netns", "exec", self.name] if inside else []) + list(cmd)
        subprocess.run(full, check=True, capture_output=True, timeout=20)

    def __enter__(self):
        self.remove()
        self.run("ip", "netns", "add", self.name)
        try:
            # No IPv6 inside: its link-local addresses would finish duplicate address detection a second or
            # two after the links come up, and Chromium, seeing the addresses change, aborts the page loads
            # under way with ERR_NETWORK_CHANGED (seen in CI when a page loaded right after the namespace was made).
            for conf in ("all", "default"):
                self.run("sysctl", "-qw", f"net.ipv6.conf.{conf}.disable_ipv6=1", inside=True)
            self.run("ip", "link", "add", self.outer, "type", "veth", "peer", "name", self.inner)
            self.run("ip", "link", "set", self.inner, "netns", self.name)
            self.run("sysctl", "-qw", f"net.ipv6.conf.{self.inner}.disable_ipv6=1", inside=True)
            self.run("ip", "link", "set", self.outer, "up")
            self.run("ip", "addr", "add", f"{self.address}/24", "dev", self.inner, inside=True)
            self.run("ip", "link", "set", self.inner, "up", inside=True)
            self.run("ip", "link", "set", "lo", "up", inside=True)
            self.run("ip", "route", "add", "default", "via", self.gateway, inside=True)
        except Exception:
            self.remove()
            raise
        return self

    def __exit__(self, *exc):
        self.remove()

    def remove(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=20)
        subprocess.run(["ip", "link", "del", self.outer], capture_output=True, timeout=20)

    @property
    def prefix(self):
        return ("ip", "netns", "exec", self.name)

    def chromium_wrapper(self, directory, chromium):
        """A launcher that starts Chromium inside the namespace (Playwright talks to it over pipes)."""
        path = directory / "chromium-in-netns"
        path.write_text(f"#!/bin/sh\nexec ip netns exec {self.name} {chromium} \"$@\"\n")
        path.chmod(0o755)
        return str(path)
