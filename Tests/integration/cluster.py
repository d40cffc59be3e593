"""Cluster mode for tests (docs/cluster.md): a real redis-server the test starts on a free loopback port, and
real `browsercloud serve --cluster` instances sharing one server key."""
import shutil
import socket
import subprocess

from harness import Server, wait_until

REDIS = shutil.which("redis-server")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """redis-server on 127.0.0.1:<port>. `persistent` keeps its data in `directory` (append-only file,
    fsync on every write), so that a stop and a start keep the cluster's log, as an operator would run it."""

    def __init__(self, directory, persistent=False, port=None):
        assert REDIS, "redis-server is missing: scripts/install-deps.sh installs it (Debian package redis-server)"
        self.directory = directory
        self.persistent = persistent
        self.port = port or free_port()
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        args = [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory), "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.command("PING") == "+PONG", timeout=15, message="redis-server answers PING")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def command(self, *args):
        """One command in RESP; the first line of the reply (enough for PING, EXISTS, XLEN, GET of short values)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                request = f"*{len(args)}\r\n" + "".join(f"${len(str(a).encode())}\r\n{a}\r\n" for a in args)
                s.sendall(request.encode())
                data = b""
                while not data.endswith(b"\r\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                return data.decode(errors="replace").split("\r\n")[0]
        except OSError:
            return None


def instance(tmp_path, redis, name, *args, key_file=None, **kw):
    """One cluster instance; all instances of a test share the server key file (the first creates it)."""
    key = key_file or (tmp_path / "server.ed25519")
    directory = tmp_path / name
    directory.mkdir(exist_ok=True)
    return Server(directory, "--cluster", redis.url,
                  "--instance", name, "--server-key-file", key, "--heartbeat-interval", "0.2", "--instance-timeout", "1.5",
                  *args, **kw)


def ring_of(server):
    """(peerId, predecessor, successors, fingers) of every peer in an instance's /api/network, sorted."""
    network = server.get("/api/network?limit=10000").json()
    return sorted((p["peerId"], p["predecessor"], tuple(p["successors"]), tuple(sorted(p["fingers"].items())))
                  for p in network["peers"])


def wait_same_ring(servers, ids, timeout=15):
    """Until every instance's /api/network holds exactly `ids` and all instances show the same ring."""
    want = sorted(ids)
    last = {}

    def same():
        rings = [ring_of(s) for s in servers]
        last["rings"] = rings
        return [p[0] for p in rings[0]] == want and all(r == rings[0] for r in rings)
    try:
        wait_until(same, timeout=timeout, interval=0.05, message="the instances show the same ring")
    except AssertionError:
        raise AssertionError(f"rings differ: want {want}; got {[[p[0] for p in r] for r in last.get('rings', [])]}")
    return last["rings"][0]


def wait_available(server, timeout=15):
    wait_until(lambda: (server.stats().get("cluster") or {}).get("logAvailable") is True, timeout=timeout,
               message="the instance reaches the cluster's log")
