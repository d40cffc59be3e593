"""Issue 13, "Outgrow one machine": Chromium pages joined through different instances of one cluster (a real
redis-server and three `browsercloud serve --cluster` instances sharing one server key, all inside the test's
own network namespace) open WebRTC data channels to each other and deliver all ordered pairs of overlay
messages. The expected ring comes from every instance's /api/network, which must be the same on all of them
and equal to the brute-force oracle (harness.oracle_state). Then one instance stops gracefully (SIGTERM):
its pages, which know every instance's URL (`signalingURL` as a list), come back through another instance
with their IDs, and all pairs deliver again."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from cluster import REDIS, Redis, free_port, instance
from harness import auto_rows, oracle_state, wait_until
from overlay import CHROMIUM, Overlay, Timeline, chord_hop_bound

INSTANCES = 3
PER_INSTANCE = 2
SUCCESSORS = 3   # the server's default successor list length

# A GET inside the namespace (the instances and redis-server are reachable only there).
FETCH = "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
# One Redis command in RESP inside the namespace; prints the reply's first line (as cluster.Redis.command).
RESP = """import socket, sys
args = sys.argv[2:]
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as s:
    s.sendall(("*%d\\r\\n" % len(args) + "".join("$%d\\r\\n%s\\r\\n" % (len(a.encode()), a) for a in args)).encode())
    data = b""
    while not data.endswith(b"\\r\\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
sys.stdout.write(data.decode(errors="replace").split("\\r\\n")[0])"""


def inside(namespace, code, *args, timeout=10):
    """Runs a Python snippet inside the namespace; its stdout, or None when it failed."""
    proc = subprocess.run(list(namespace.prefix) + [sys.executable, "-c", code, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)
    return proc.stdout if proc.returncode == 0 else None


class NamespaceRedis(Redis):
    """cluster.Redis, run inside the namespace on its loopback (where the instances reach it)."""

    def __init__(self, directory, namespace):
        self.namespace = namespace
        super().__init__(directory, port=free_port())

    def start(self):
        args = list(self.namespace.prefix) + [REDIS, "--port", str(self.port), "--bind", "127.0.0.1",
                                              "--dir", str(self.directory), "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.command("PING") == "+PONG", timeout=15, interval=0.1, message="redis-server answers PING")

    def command(self, *args):
        return inside(self.namespace, RESP, self.port, *args)


def get_json(namespace, server, path):
    text = inside(namespace, FETCH, server.http + path)
    return json.loads(text) if text else None


def ring_of(network):
    return sorted((p["peerId"], p["predecessor"], tuple(p["successors"]), tuple(sorted(p["fingers"].items())))
                  for p in network["peers"])


@pytest.fixture(scope="module")
def cluster(namespace, tmp_path_factory):
    """redis-server and three instances in the namespace; the first creates the shared server key before the
    others start, and each is started once the previous one reaches the log."""
    directory = tmp_path_factory.mktemp("cluster")
    redis = NamespaceRedis(directory, namespace)
    servers = []
    try:
        for i in range(INSTANCES):
            servers.append(instance(directory, redis, f"c{i + 1}", host=namespace.address, prefix=namespace.prefix))
            wait_until(lambda: ((get_json(namespace, servers[-1], "/api/stats") or {}).get("cluster") or {}).get("logAvailable") is True,
                       timeout=15, interval=0.1, message=f"instance c{i + 1} reaches the cluster's log")
        yield servers
    finally:
        for s in servers:
            s.stop()
        redis.stop()


@pytest.fixture(scope="module")
def overlay(playwright, namespace, cluster, tmp_path_factory, request):
    timeline = Timeline()
    wrapper = namespace.chromium_wrapper(tmp_path_factory.mktemp("bin"), CHROMIUM)
    origins = ",".join(s.http for s in cluster)   # each page is served by its own instance (see test_overlay.py)
    browser = playwright.chromium.launch(executable_path=wrapper, headless=True,
                                         args=[f"--unsafely-treat-insecure-origin-as-secure={origins}"])
    yield Overlay(browser, cluster[0].http, cluster[0].ws, timeline)
    browser.close()
    artifact = pathlib.Path(os.environ.get("E2E_ARTIFACTS", tmp_path_factory.getbasetemp())) / f"{request.module.__name__}-timeline.json"
    timeline.save(artifact)
    print(f"timeline: {artifact}", file=sys.stderr)


def same_network(namespace, servers):
    """/api/network of the first of `servers` when all of them show the same ring, else None."""
    def network():
        networks = [get_json(namespace, s, "/api/network?limit=10000") for s in servers]
        if any(n is None for n in networks) or any(ring_of(n) != ring_of(networks[0]) for n in networks):
            return None
        return networks[0]
    return network


def stable(overlay, namespace, servers, timeout=60):
    """overlay.wait_stable against the instances' common /api/network; on failure, says what differed: each
    instance's ring, and each page whose state or links do not match the first instance's entry."""
    try:
        return overlay.wait_stable(timeout=timeout, network=same_network(namespace, servers))
    except AssertionError:
        networks = [get_json(namespace, s, "/api/network?limit=10000") for s in servers]
        detail = {"rings": [ring_of(n) if n else None for n in networks], "pages": []}
        entries = {e["peerId"]: e for e in (networks[0] or {"peers": []})["peers"]}
        for k, (_, page, peer_id) in enumerate(overlay.live):
            if not overlay.matches(page, entries.get(peer_id)):
                detail["pages"].append({"page": k, "state": overlay.snapshot(page), "entry": entries.get(peer_id)})
        stuck = {d["page"] for d in detail["pages"]}
        detail["errors"] = [e for e in overlay.timeline.of("error") if e["peer"] in stuck][-20:]
        detail["servers"] = [s.stderr_lines[-10:] for s in servers]
        raise AssertionError("the ring did not stabilise: " + json.dumps(detail)[-8000:]) from None


def check_oracle(network):
    ids = [p["peerId"] for p in network["peers"]]
    rows = auto_rows(len(ids))
    for p in network["peers"]:
        want = oracle_state(p["peerId"], ids, rows, SUCCESSORS)
        assert (p["predecessor"], p["successors"], p["fingers"]) == (want["predecessor"], want["successors"], want["fingers"]), p


def test_pages_on_three_instances_deliver_all_pairs(overlay, cluster, namespace):
    urls = [s.ws for s in cluster]
    for i, server in enumerate(cluster):
        # Each page knows every instance, its own first (Explorer's signalingURL as a list).
        overlay.spawn(PER_INSTANCE, base_url=server.http, ws_url=urls[i:] + urls[:i])
    n = INSTANCES * PER_INSTANCE
    network = stable(overlay, namespace, cluster)
    check_oracle(network)
    joined_through = {p["peerId"]: p["instance"].split("/")[0] for p in network["peers"]}
    assert [joined_through[page[2]] for page in overlay.pages] == [f"c{k // PER_INSTANCE + 1}" for k in range(n)], joined_through
    delivered, expected, hops = overlay.all_pairs()
    assert delivered == expected == n * (n - 1)
    assert max(hops) <= chord_hop_bound(n), hops


def test_pages_of_a_stopped_instance_come_back_through_another_with_their_ids(overlay, cluster, namespace):
    before = sorted(p[2] for p in overlay.live)
    stopped, survivors = cluster[0], cluster[1:]
    moved = [page[2] for page in overlay.pages[:PER_INSTANCE]]
    going_away = len(overlay.timeline.of("server-going-away"))
    assert stopped.stop() == 0          # SIGTERM: its pages are told it is going away
    network = stable(overlay, namespace, survivors)
    assert sorted(p["peerId"] for p in network["peers"]) == before
    check_oracle(network)
    now_through = {p["peerId"]: p["instance"].split("/")[0] for p in network["peers"]}
    assert set(now_through.values()) <= {"c2", "c3"}, now_through
    assert all(now_through[m] == "c2" for m in moved), now_through   # the next URL of their lists
    told = {e["peer"] for e in overlay.timeline.of("server-going-away")[going_away:]}
    assert told == set(range(PER_INSTANCE)), told
    delivered, expected, hops = overlay.all_pairs()
    n = len(before)
    assert delivered == expected == n * (n - 1)
    assert max(hops) <= chord_hop_bound(n), hops


def test_register_goes_on_to_the_next_url_when_the_first_is_unreachable(page, web_server):
    """The list of URLs on one plain server: the first URL refuses connections, so `register()` rejects with
    ERR_SIGNALING_UNREACHABLE; the reconnection dials the second URL and the peer registers there."""
    dead = f"ws://127.0.0.1:{free_port()}"
    result = page.evaluate("""async (urls) => {
      const { Explorer } = await import('/webrtc-explorer.js')
      const peer = new Explorer({ signalingURL: urls, identity: { ephemeral: true } })
      const registered = new Promise((resolve) => peer.events.on('registered', resolve))
      let first = null
      try { await peer.register() } catch (error) { first = error.code ?? error.message }
      // Bounded: the reconnection follows within its first backoff (about 0.25 s).
      const timeout = new Promise((resolve) => setTimeout(() => resolve({ peerId: null }), 10000))
      const { peerId } = await Promise.race([registered, timeout])
      const url = peer.channels.url
      await peer.leave()
      return { first, peerId, url }
    }""", [dead, web_server.ws])
    assert result["first"] == "ERR_SIGNALING_UNREACHABLE", result
    assert result["peerId"] is not None and len(result["peerId"]) == 12, result
    assert result["url"] == web_server.ws, result
    with pytest.raises(Exception, match="non-empty list"):
        page.evaluate("async () => { const { Explorer } = await import('/webrtc-explorer.js'); new Explorer({ signalingURL: [] }) }")
