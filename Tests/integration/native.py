"""Native Swift peers (`browsercloud peer --stdin-commands`) driven by tests: each is a real process that
joins the real server, links to its fingers over WebSockets and prints its events as JSON lines."""
import json
import signal
import subprocess
import threading
import time

from harness import BIN


class NativePeer:
    def __init__(self, server_ws, *args, prefix=(), workers=1, listen="127.0.0.1:0"):
        cmd = list(prefix) + [BIN, "peer", "--server", server_ws, "--workers", str(workers), "--listen", listen,
                              "--stdin-commands", "--log-level", "warning"] + [str(a) for a in args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.events = []
        self.lock = threading.Lock()
        self.stderr = []
        # Set before the reader starts: a registration read at once must not be overwritten with None.
        self.peer_id = None
        self.url = None
        self.public_key = None
        self.certificate = None
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=lambda: [self.stderr.append(line) for line in self.proc.stderr], daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.events.append(event)
            if event.get("event") == "registered":
                self.peer_id = event["peerId"]
                self.url = event["url"]
                self.public_key = event.get("publicKey")
                self.certificate = event.get("certificate")

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def of(self, name):
        with self.lock:
            return [e for e in self.events if e.get("event") == name]

    def clear(self, name):
        with self.lock:
            self.events = [e for e in self.events if e.get("event") != name]

    def state(self, timeout=15):
        before = len(self.of("state"))
        self.command("state")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.of("state")
            if len(states) > before:
                return states[-1]
            time.sleep(0.01)
        raise AssertionError(f"no state from {self.peer_id}: {self.stderr[-5:]}")

    def wait_registered(self, timeout=15):
        deadline = time.monotonic() + timeout
        while self.peer_id is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.peer_id, f"peer did not register: {self.stderr[-10:]}, events {self.events[-5:]}, exit {self.proc.poll()}"
        return self.peer_id

    def matches(self, entry):
        """Whether this peer's ring state equals the server's entry and all its needed links are open."""
        s = self.state()
        return (entry is not None and s["ready"] and s["predecessor"] == entry["predecessor"]
                and s["successors"] == entry["successors"] and s["fingers"] == entry["fingers"])

    @property
    def alive(self):
        return self.proc.poll() is None

    def leave(self, timeout=10):
        """SIGTERM: the peer leaves the ring, then exits 0."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self):
        self.proc.kill()
        self.proc.wait(5)

    def stop(self):
        if self.alive:
            try:
                self.leave(5)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_stable(server, peers, timeout=60):
    """Until every live native peer's state equals the server's view and all its needed links are open."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        network = server.get("/api/network?limit=10000").json()
        expected = {e["peerId"]: e for e in network["peers"]}
        ok = len(expected) == len(peers) and all(p.matches(expected.get(p.peer_id)) for p in peers)
        last = network
        if ok:
            return network
        time.sleep(0.2)
    raise AssertionError(f"native ring did not stabilise: {json.dumps(last)[:1500]}")


def all_pairs(peers, timeout=60):
    """Every peer sends one message to every other; returns (delivered correctly, expected, hop counts)."""
    for p in peers:
        p.clear("message")
    for p in peers:
        for q in peers:
            if q is not p:
                p.command(f'send {q.peer_id} {json.dumps({"from": p.peer_id, "to": q.peer_id})}')
    expected = len(peers) * (len(peers) - 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and sum(len(p.of("message")) for p in peers) < expected:
        time.sleep(0.05)
    correct = [m for p in peers for m in p.of("message") if m["dstId"] == p.peer_id and m["data"]["to"] == p.peer_id]
    return len(correct), expected, [m["hops"] for m in correct]
