#!/usr/bin/env python3
"""Writes Tests/vectors/signed-overlay.json: signed overlay frames (docs/protocol.md, "Signed overlay
messages"; the vectors were written when that section was docs/signed-overlay.md) and the verdicts a destination must reach on them, computed here by an independent
reading of that text with Python's `cryptography` package for Ed25519 (pip: cryptography; not needed by
any test, only to regenerate the file). The native peer's SignedOverlay target
(Tests/PeerTests/SignedOverlayVectorTests.swift) and the browser's explorer/signed-message.js
(Tests/e2e/test_signed_overlay.py, WebCrypto in Chromium) must both reproduce every vector.

    python3 Tests/vectors/make_signed_overlay_vectors.py [--check]

Every key comes from a fixed seed (SHA-256 of a label), every time is given, and Ed25519 is deterministic,
so the file is the same on every run (--check compares instead of writing).

The rules, as this generator reads them:
    frame      S<hops>:<certificate>:<signature>:<body>
               hops: 1 to 6 decimal digits; certificate: 220 lowercase hex; signature: 128 lowercase hex
    body head  {"srcId":"<12 hex>","dstId":"<12 hex>","id":"<1-64 of [0-9A-Za-z_.-]>","at":<ms>,"data":
               at: decimal digits without a leading zero (or "0"), at most 15; the body ends with "}"
    signed     UTF-8 of "browsercloud-overlay/1\\n" + body, by the key in the certificate
    certificate peerId(12) publicKey(64) epoch(16) serverSignature(128); the server signs
               "browsercloud-certificate/1\\n<serverKey>\\n<peerId>\\n<publicKey>\\n<epoch>"
Checks, in order, each with its reason: the frame and the body head parse (malformed); the certificate is
signed by the trusted server key (bad-certificate); its peerId is the body's srcId (wrong-source); its epoch
is not below the highest epoch accepted for that ID (stale-epoch; the highest is raised here); the
signature (bad-signature); the body is a JSON object of exactly the five members, agreeing with its head
(bad-body); dstId is the verifier's own ID (wrong-destination); |at - now| <= tolerance and at > the
replay memory's floor (outside-window); (srcId, id) not accepted before within the window (replayed).
Only an accepted message enters the replay memory; entries leave when their `at` falls out of the window.
When the memory holds `maxReplayEntries`, a message whose `at` is not above the smallest `at` held is
refused (outside-window); otherwise the entry with the smallest `at` leaves and the floor rises to its `at`.
"""
import argparse
import hashlib
import heapq
import json
import pathlib
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.exceptions import InvalidSignature

OUT = pathlib.Path(__file__).resolve().parent / "signed-overlay.json"
TOLERANCE_MS = 300_000
MAX_REPLAY = 65_536
NOW = 1_796_000_000_000          # ms since the epoch: the verifiers' clock in most steps
OVERLAY_PREFIX = b"browsercloud-overlay/1\n"
CERT_PREFIX = "browsercloud-certificate/1"

FRAME = re.compile(r"S([0-9]{1,6}):([0-9a-f]{220}):([0-9a-f]{128}):(.*)", re.S)
HEAD = re.compile(r'\{"srcId":"([0-9a-f]{12})","dstId":"([0-9a-f]{12})","id":"([0-9A-Za-z_.\-]{1,64})",'
                  r'"at":(0|[1-9][0-9]{0,14}),"data":')


def seed(label):
    return hashlib.sha256(("browsercloud signed-overlay vectors: " + label).encode()).digest()


class Key:
    def __init__(self, label):
        self.seed = seed(label)
        self.private = Ed25519PrivateKey.from_private_bytes(self.seed)
        self.public = self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()

    def sign(self, data):
        return self.private.sign(data).hex()


def certificate(server, peer_id, public_key, epoch):
    text = "\n".join([CERT_PREFIX, server.public, peer_id, public_key, epoch]).encode()
    return peer_id + public_key + epoch + server.sign(text)


def body_text(src, dst, ident, at, data_json):
    return f'{{"srcId":"{src}","dstId":"{dst}","id":"{ident}","at":{at},"data":{data_json}}}'


def signed_frame(key, cert, body, hops=0):
    return f"S{hops}:{cert}:{key.sign(OVERLAY_PREFIX + body.encode())}:{body}"


# ---- the independent reading: parse and verify -------------------------------------------------------

def parse(frame):
    """The relay's view of a frame: None, or its fields (the body's head only, no JSON parse)."""
    m = FRAME.fullmatch(frame)
    if not m:
        return None
    hops, cert, sig, body = m.groups()
    h = HEAD.match(body)
    if not h or not body.endswith("}"):
        return None
    src, dst, ident, at = h.groups()
    return {"hops": int(hops), "certificate": cert, "signature": sig, "body": body,
            "srcId": src, "dstId": dst, "id": ident, "at": int(at)}


def relayed(frame):
    p = parse(frame)
    return None if p is None else f"S{p['hops'] + 1}:{p['certificate']}:{p['signature']}:{p['body']}"


def ed25519_ok(public_hex, message, signature_hex):
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(bytes.fromhex(signature_hex), message)
        return True
    except (InvalidSignature, ValueError):
        return False


def pairs_without_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


class Verifier:
    def __init__(self, server_key, me, tolerance=TOLERANCE_MS, max_replay=MAX_REPLAY):
        self.server_key, self.me, self.tolerance, self.max_replay = server_key, me, tolerance, max_replay
        self.certs = {}          # certificate text -> True (verified)
        self.epochs = {}         # peerId -> highest epoch (hex)
        self.seen = {}           # (srcId, id) -> at
        self.heap = []           # (at, srcId, id)
        self.floor = -1
        self.counts = {}
        self.certificate_checks = 0

    def reject(self, reason):
        self.counts[reason] = self.counts.get(reason, 0) + 1
        return {"verdict": "rejected", "reason": reason}

    def verify(self, frame, now):
        p = parse(frame)
        if p is None:
            return self.reject("malformed")
        cert = p["certificate"]
        peer_id, public, epoch, server_sig = cert[:12], cert[12:76], cert[76:92], cert[92:]
        if cert not in self.certs:
            self.certificate_checks += 1
            text = "\n".join([CERT_PREFIX, self.server_key, peer_id, public, epoch]).encode()
            if not ed25519_ok(self.server_key, text, server_sig):
                return self.reject("bad-certificate")
            self.certs[cert] = True
        if peer_id != p["srcId"]:
            return self.reject("wrong-source")
        if epoch < self.epochs.get(peer_id, ""):
            return self.reject("stale-epoch")
        self.epochs[peer_id] = epoch
        if not ed25519_ok(public, OVERLAY_PREFIX + p["body"].encode(), p["signature"]):
            return self.reject("bad-signature")
        try:
            body = json.loads(p["body"], object_pairs_hook=lambda pairs: dict(pairs))
        except ValueError:
            return self.reject("bad-body")
        if not (isinstance(body, dict) and set(body) == {"srcId", "dstId", "id", "at", "data"}
                and body["srcId"] == p["srcId"] and body["dstId"] == p["dstId"] and body["id"] == p["id"]
                and body["at"] == p["at"] and not isinstance(body["at"], bool)):
            return self.reject("bad-body")
        if p["dstId"] != self.me:
            return self.reject("wrong-destination")
        at = p["at"]
        while self.heap and self.heap[0][0] < now - self.tolerance:
            old = heapq.heappop(self.heap)
            del self.seen[(old[1], old[2])]
        if abs(at - now) > self.tolerance or at <= self.floor:
            return self.reject("outside-window")
        if (p["srcId"], p["id"]) in self.seen:
            return self.reject("replayed")
        if len(self.seen) >= self.max_replay:
            if at <= self.heap[0][0]:
                return self.reject("outside-window")
            old = heapq.heappop(self.heap)
            del self.seen[(old[1], old[2])]
            self.floor = max(self.floor, old[0])
        self.seen[(p["srcId"], p["id"])] = at
        heapq.heappush(self.heap, (at, p["srcId"], p["id"]))
        self.counts["accepted"] = self.counts.get("accepted", 0) + 1
        return {"verdict": "accepted", "srcId": p["srcId"], "id": p["id"], "at": at, "epoch": epoch,
                "hops": p["hops"], "data": body["data"]}


# ---- the cast --------------------------------------------------------------------------------------

SERVER = Key("server")
OTHER_SERVER = Key("another server")
A, B, C, M, A2 = Key("peer a"), Key("peer b"), Key("peer c"), Key("mallory"), Key("new holder of a's ID")
IDS = {"a": "2aaaaaaaaaaa", "b": "7fffffffffff", "c": "c00000000001", "m": "e00000000000"}
EPOCH = {"a": "0000000000000010", "b": "0000000000000011", "c": "0000000000000012", "m": "0000000000000013",
         "a2": "0000000000000020"}
CERT = {"a": certificate(SERVER, IDS["a"], A.public, EPOCH["a"]),
        "b": certificate(SERVER, IDS["b"], B.public, EPOCH["b"]),
        "c": certificate(SERVER, IDS["c"], C.public, EPOCH["c"]),
        "m": certificate(SERVER, IDS["m"], M.public, EPOCH["m"]),
        "a2": certificate(SERVER, IDS["a"], A2.public, EPOCH["a2"]),
        # a certificate for a's ID and key from another server (another ring)
        "a-other": certificate(OTHER_SERVER, IDS["a"], A.public, EPOCH["a"])}
KEYS = {"a": A, "b": B, "c": C, "m": M, "a2": A2}


def msg(frm, to, ident, at=NOW, data='{"n":1}', cert=None, key=None, hops=0):
    """A frame from peer `frm` (its certificate and key unless given) to peer `to`."""
    body = body_text(IDS[frm[0]], IDS[to], ident, at, data)
    return signed_frame(key or KEYS[frm], cert or CERT[frm], body, hops)


def with_body(frame, body):
    p = parse(frame)
    return f"S{p['hops']}:{p['certificate']}:{p['signature']}:{body}"


def flip_hex(h, i):
    return h[:i] + ("0" if h[i] != "0" else "1") + h[i + 1:]


def sequences():
    out = []

    def seq(name, me, steps, tolerance=TOLERANCE_MS, max_replay=MAX_REPLAY):
        v = Verifier(SERVER.public, IDS[me], tolerance, max_replay)
        rows = []
        for frame, now in steps:
            rows.append({"now": now, "frame": frame, "expect": v.verify(frame, now)})
        out.append({"name": name, "self": IDS[me], "timeToleranceMs": tolerance, "maxReplayEntries": max_replay,
                    "steps": rows, "counts": dict(sorted(v.counts.items())), "certificateChecks": v.certificate_checks})

    ab1 = msg("a", "b", "2aaaaaaaaaaa-1")
    ab2 = msg("a", "b", "2aaaaaaaaaaa-2", data='{"proto":"bc-job/1","type":"result","sha256":"00ff"}')
    seq("honest messages; one certificate check for many messages", "b",
        [(ab1, NOW), (ab2, NOW + 5), (msg("c", "b", "c00000000001-1", data='[1,2,"é",null,true]'), NOW + 6),
         (msg("a", "b", "2aaaaaaaaaaa-3", hops=7), NOW + 7)])
    # A relay on the route rewrites srcId (to another peer's ID, or to its own), or forges a source.
    p = parse(ab1)
    seq("forging peer: rewritten srcId", "b", [
        (with_body(ab1, p["body"].replace(IDS["a"], IDS["c"], 1)), NOW),                       # a's cert, srcId c
        (f"S1:{CERT['m']}:{p['signature']}:" + p["body"].replace(IDS["a"], IDS["m"], 1), NOW),  # m's cert, srcId m
        (msg("a", "b", "2aaaaaaaaaaa-9", cert=CERT["a"], key=M), NOW),                          # a's cert, m's key
        (signed_frame(M, CERT["m"], body_text(IDS["a"], IDS["b"], "forged-1", NOW, '{"n":1}')), NOW),  # m's cert, srcId a
        (ab1, NOW),                                                                              # honest traffic unaffected
    ])
    seq("forging peer: a's message to b replayed to c", "c", [(ab1, NOW), (msg("a", "c", "2aaaaaaaaaaa-4"), NOW)])
    seq("the same message twice (also with other hops)", "b", [(ab1, NOW), (ab1, NOW + 1), (relayed(ab1), NOW + 2),
                                                               (ab2, NOW + 3)])
    seq("stale epoch: the ID's later holder seen first", "b", [
        (msg("a2", "b", "2aaaaaaaaaaa-x1"), NOW), (msg("a", "b", "2aaaaaaaaaaa-x2"), NOW + 1),
        (msg("a2", "b", "2aaaaaaaaaaa-x3"), NOW + 2)])
    seq("stale epoch: the old holder until the new one appears", "b", [
        (msg("a", "b", "2aaaaaaaaaaa-y1"), NOW), (msg("a2", "b", "2aaaaaaaaaaa-y2"), NOW + 1),
        (msg("a", "b", "2aaaaaaaaaaa-y3"), NOW + 2)])
    seq("certificates: another server's, tampered epoch, tampered key, flipped server signature", "b", [
        (msg("a", "b", "2aaaaaaaaaaa-z1", cert=CERT["a-other"]), NOW),
        (msg("a", "b", "2aaaaaaaaaaa-z2", cert=CERT["a"][:76] + "00000000000000ff" + CERT["a"][92:]), NOW),
        (msg("a", "b", "2aaaaaaaaaaa-z3", cert=CERT["a"][:12] + M.public + CERT["a"][76:], key=M), NOW),
        (msg("a", "b", "2aaaaaaaaaaa-z4", cert=flip_hex(CERT["a"], 150)), NOW),
        (msg("a", "b", "2aaaaaaaaaaa-z5"), NOW)])
    body = parse(ab2)["body"]
    seq("altered bytes: data, a byte, id, at, dstId, signature", "b", [
        (with_body(ab2, body.replace('"00ff"', '"0000"')), NOW),
        (with_body(ab2, body.replace("bc-job/1", "bc-job/2")), NOW),
        (with_body(ab2, body.replace("2aaaaaaaaaaa-2", "2aaaaaaaaaaa-7")), NOW),
        (with_body(ab2, body.replace(f'"at":{NOW}', f'"at":{NOW + 1}')), NOW),
        (with_body(msg("a", "c", "2aaaaaaaaaaa-5"), parse(msg("a", "c", "2aaaaaaaaaaa-5"))["body"].replace(IDS["c"], IDS["b"])), NOW),
        ("S0:" + CERT["a"] + ":" + flip_hex(parse(ab2)["signature"], 10) + ":" + body, NOW),
        (ab2, NOW)])
    seq("wrong destination", "b", [(msg("a", "c", "2aaaaaaaaaaa-6"), NOW), (msg("c", "a", "c00000000001-2"), NOW)])
    seq("time window: edges and beyond", "b", [
        (msg("a", "b", "w1", at=NOW - TOLERANCE_MS), NOW), (msg("a", "b", "w2", at=NOW + TOLERANCE_MS), NOW),
        (msg("a", "b", "w3", at=NOW - TOLERANCE_MS - 1), NOW), (msg("a", "b", "w4", at=NOW + TOLERANCE_MS + 1), NOW),
        (msg("a", "b", "w5", at=0), NOW)])
    w = msg("a", "b", "late-replay", at=NOW)
    seq("a replay after the window is outside it, not remembered for ever", "b", [
        (w, NOW), (w, NOW + TOLERANCE_MS), (w, NOW + TOLERANCE_MS + 1)])
    seq("replay memory full: the floor rises", "b", [
        (msg("a", "b", "r1", at=NOW + 10), NOW), (msg("a", "b", "r2", at=NOW + 20), NOW),
        (msg("a", "b", "r3", at=NOW + 30), NOW), (msg("a", "b", "r4", at=NOW + 5), NOW),
        # full, and r4 (+5) is older than everything held: outside the window
        (msg("a", "b", "r5", at=NOW + 40), NOW),    # r1 (+10) leaves: floor +10
        (msg("a", "b", "r6", at=NOW + 10), NOW),    # at the floor: outside the window
        (msg("a", "b", "r7", at=NOW + 25), NOW),    # r2 (+20) leaves: floor +20
        (msg("a", "b", "r3", at=NOW + 30), NOW),    # still remembered: replayed
        (msg("a", "b", "r1", at=NOW + 10), NOW)], max_replay=3)   # forgotten, but below the floor
    signed_garbage = [
        '{"srcId":"2aaaaaaaaaaa","dstId":"7fffffffffff","id":"g1","at":%d,"data":}' % NOW,
        '{"srcId":"2aaaaaaaaaaa","dstId":"7fffffffffff","id":"g2","at":%d,"data":1,"extra":2}' % NOW,
        '{"srcId":"2aaaaaaaaaaa","dstId":"7fffffffffff","id":"g3","at":%d,"data":1,"dstId":"c00000000001"}' % NOW,
        '{"srcId":"2aaaaaaaaaaa","dstId":"7fffffffffff","id":"g4","at":%d,"data":1} }' % NOW,
        '{"srcId":"2aaaaaaaaaaa","dstId":"7fffffffffff","id":"g5","at":%d,"data":1,"id":"g6"}' % NOW,
    ]
    seq("signed by its source but not a body", "b", [(signed_frame(A, CERT["a"], g), NOW) for g in signed_garbage])
    g = parse(ab1)
    seq("malformed frames are counted, and honest traffic goes on", "b", [
        ("M" + g["body"], NOW), ("S", NOW), (f"S0:{g['certificate'][:-1]}:{g['signature']}:{g['body']}", NOW),
        (f"S0:{g['certificate']}:{g['signature'].upper()}:{g['body']}", NOW),
        (with_body(ab1, g["body"].replace('{"srcId"', '{ "srcId"')), NOW), (with_body(ab1, g["body"] + "\n"), NOW),
        (ab1, NOW)])
    seq("checks in order: the first failing check is the reason", "b", [
        (msg("a", "b", "o1"), NOW),                                                    # a's epoch now known
        # stale certificate, bad signature and wrong destination: stale-epoch comes first
        (msg("a", "c", "o2", cert=certificate(SERVER, IDS["a"], A.public, "000000000000000f"), key=M), NOW),
        # bad signature and wrong destination: bad-signature
        (msg("a", "c", "o3", key=M), NOW),
        # wrong destination and outside the window: wrong-destination
        (msg("a", "c", "o4", at=0), NOW),
        # outside the window and replayed: outside-window
        (msg("a", "b", "o1", at=NOW + TOLERANCE_MS + 1), NOW)])
    return out


def frames():
    good = msg("a", "b", "2aaaaaaaaaaa-1")
    p = parse(good)
    cert, sig, body = p["certificate"], p["signature"], p["body"]
    cases = [
        good, msg("a", "b", "x", hops=999999), msg("a", "b", "a.b_c-D", at=0), msg("c", "a", "z" * 64),
        msg("a", "b", "big", data=json.dumps({"k": "x" * 3000}, separators=(",", ":"))),
        "", "S", "M" + body, "S0", f"S:{cert}:{sig}:{body}", f"S1234567:{cert}:{sig}:{body}", f"S-1:{cert}:{sig}:{body}",
        f"S+1:{cert}:{sig}:{body}", f"S1a:{cert}:{sig}:{body}", f"S0:{cert[:-1]}:{sig}:{body}",
        f"S0:{cert}0:{sig}:{body}", f"S0:{cert.upper()}:{sig}:{body}", f"S0:{cert}:{sig[:-1]}:{body}",
        f"S0:{cert}:{sig}0:{body}", f"S0:{cert}:{sig.upper()}:{body}", f"S0:{cert}:{sig}", f"S0:{cert}:{sig}:",
        f"S0:{cert}:{sig}:{{}}", f"s0:{cert}:{sig}:{body}", f" S0:{cert}:{sig}:{body}",
        with_body(good, body[:-1]), with_body(good, body + " "),
        with_body(good, body.replace('"srcId":"2aaaaaaaaaaa"', '"srcId":"2AAAAAAAAAAA"')),
        with_body(good, body.replace('"dstId":"7fffffffffff"', '"dstId":"7ffffffffff"')),
        with_body(good, body.replace('{"srcId"', '{ "srcId"')),
        with_body(good, '{"dstId":"7fffffffffff","srcId":"2aaaaaaaaaaa","id":"2aaaaaaaaaaa-1","at":%d,"data":{"n":1}}' % NOW),
        with_body(good, body.replace('"id":"2aaaaaaaaaaa-1"', '"id":""')),
        with_body(good, body.replace('"id":"2aaaaaaaaaaa-1"', '"id":"' + "z" * 65 + '"')),
        with_body(good, body.replace('"id":"2aaaaaaaaaaa-1"', '"id":"a b"')),
        with_body(good, body.replace('"id":"2aaaaaaaaaaa-1"', '"id":"a\\"b"')),
        with_body(good, body.replace('"id":"2aaaaaaaaaaa-1"', '"id":"é"')),
        with_body(good, body.replace(f'"at":{NOW}', f'"at":0{NOW}')),
        with_body(good, body.replace(f'"at":{NOW}', f'"at":-{NOW}')),
        with_body(good, body.replace(f'"at":{NOW}', f'"at":{NOW}.5')),
        with_body(good, body.replace(f'"at":{NOW}', '"at":1000000000000000')),
        with_body(good, body.replace(f'"at":{NOW}', '"at":999999999999999')),
        with_body(good, body.replace(f'"at":{NOW}', f'"at":"{NOW}"')),
        with_body(good, body.replace('"data":', '"data" :')),
        with_body(good, body.replace('"data":{"n":1}', '"data":')) + "}",
    ]
    rows = []
    for f in cases:
        q = parse(f)
        expect = None if q is None else {k: q[k] for k in ("hops", "srcId", "dstId", "id", "at")}
        if expect is not None:
            expect["relayed"] = relayed(f)
        rows.append({"frame": f, "expect": expect})
    return rows


def signing():
    """What a signer must produce, byte for byte (hops 0)."""
    rows = []
    for frm, to, ident, at, data in [("a", "b", "2aaaaaaaaaaa-1", NOW, {"n": 1}),
                                     ("b", "c", "7fffffffffff-n12", NOW + 123, {"proto": "bc-job/1", "type": "task", "task": 3}),
                                     ("c", "a", "c00000000001-0", 0, [1, "two", None, True, {"a": [], "b": {}}]),
                                     ("m", "m", "self", NOW, "text with \"quotes\" and \\ and é")]:
        data_json = json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        body = body_text(IDS[frm], IDS[to], ident, at, data_json)
        rows.append({"peer": frm, "srcId": IDS[frm], "dstId": IDS[to], "id": ident, "at": at, "data": data,
                     "body": body, "frame": signed_frame(KEYS[frm], CERT[frm], body)})
    return rows


def document():
    return {
        "about": "Written by Tests/vectors/make_signed_overlay_vectors.py from docs/protocol.md (\"Signed overlay "
                 "messages\"). Keys from fixed seeds (SHA-256 of labels); times in ms since the epoch.",
        "serverKey": SERVER.public,
        "overlayPrefix": OVERLAY_PREFIX.decode(),
        "peers": {name: {"seed": KEYS[name].seed.hex(), "publicKey": KEYS[name].public, "peerId": IDS[name[0]],
                         "epoch": EPOCH[name], "certificate": CERT[name]} for name in ("a", "b", "c", "m", "a2")},
        "frames": frames(),
        "signing": signing(),
        "sequences": sequences(),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    a = ap.parse_args()
    text = json.dumps(document(), indent=1, ensure_ascii=False) + "\n"
    if a.check:
        if OUT.read_text() != text:
            raise SystemExit(f"{OUT} differs from what the generator writes")
        print("signed-overlay.json is up to date")
        return
    OUT.write_text(text)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
