"""`serve --record-events FILE`: the core's events and actions as JSON lines (docs/architecture.md,
"The server core"). Replaying such a log is tested in Swift (RendezvousCoreTests)."""
import json

from harness import Peer, wait_until


def read_log(path):
    lines = path.read_text().splitlines()
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


def test_record_events_writes_every_event_and_its_actions(start_server, tmp_path):
    log = tmp_path / "events.jsonl"
    server = start_server("--record-events", log, "--max-peers", "7")
    a = Peer(server)
    a.register(capabilities={"runtimes": ["swift"]})
    a.send({"type": "signal", "to": "000000000001", "intentId": "i", "signal": {}})
    error = a.expect_error("unknown-peer")
    a.close()
    wait_until(lambda: server.stats()["connectionsOpen"] == 0, message="closed")
    assert server.stop() == 0

    header, entries = read_log(log)
    assert header["format"] == "browsercloud-rendezvous-events/2"
    assert header["configuration"]["maxPeers"] == 7
    assert int(header["configuration"]["seed"]) >= 0          # the seed the server drew, as a string
    assert [e["event"]["type"] for e in entries] == ["opened", "received", "received", "closed", "going-away"]
    opened, register, signal, closed, going_away = entries
    assert opened["event"]["remoteAddress"] == "127.0.0.1" and opened["event"]["nonce"] == a.nonce
    assert [json.loads(x["message"]) for x in opened["actions"]] == [{"type": "challenge", "nonce": a.nonce, "serverKey": a.server_key}]
    assert json.loads(register["event"]["text"])["type"] == "register"
    # The frames the client received are those recorded, byte for byte as JSON.
    sent = [json.loads(x["message"]) for x in register["actions"] if "send" in x]
    assert sent[0]["type"] == "registered" and sent[0]["peerId"] == a.peer_id and sent[0]["certificate"] == a.certificate
    assert {"publish": "join", "peerId": a.peer_id} in register["actions"]
    joined = [x for x in register["actions"] if x.get("analytics") == "joined"]
    assert joined and joined[0]["record"]["capabilities"] == {"runtimes": ["swift"]}
    assert signal["actions"] == [{"send": signal["event"]["connection"], "message": json.dumps(error, separators=(",", ":"), sort_keys=True)}]
    assert closed["event"]["cause"] == "closed"
    assert {"publish": "leave", "peerId": a.peer_id, "reason": "closed"} in closed["actions"]
    assert going_away["actions"] == []          # nobody was connected any more


def test_no_log_without_the_flag(server, tmp_path):
    p = Peer(server)
    p.register()
    p.close()
    assert server.stop() == 0
    assert sorted(x.name for x in tmp_path.iterdir()) == ["secret.ed25519", "secret.state"]   # no event log (the state file is always kept)
