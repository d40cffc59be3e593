#!/usr/bin/env python3
"""Writes Tests/vectors/link-frames.json: link frames (docs/protocol.md, "Links") and chunk reassembly
sequences with the outcome the protocol text prescribes, computed here by a third, independent reading of
that text. The browser's explorer/link-frame.js (Tests/e2e/test_link_frames.py) and the native peer's
LinkFrame.swift (Tests/PeerTests/LinkFrameVectorTests.swift) must both reproduce every vector.

    python3 Tests/vectors/make_link_frame_vectors.py [--seed N] [--check]

The grammar:
    M<message>                     a whole message
    C<id>:<index>:<count>:<part>   part `index` of `count`; id: 1 to 64 characters, none of them ':';
                                   index and count: decimal digits only, 1 <= count <= 8192, index < count
    X, K                           exactly one character: retire request, keep answer
    W{"peerId":"<12 hex>"}         welcome (H, the hello, carries a nonce of at most 64 characters too)
Anything else is not a frame (null) and is ignored.

Reassembly of one link, with a budget of `maxChars` characters held in partial messages (the vectors use
ASCII only, so characters and UTF-8 bytes agree): a part for a new id when 16 messages are partial, or a
new part that would take the held characters over the budget, is an overflow (the link is dropped); a
part whose count differs from its message's first part, or a part already held, is ignored; the last
missing part completes the message, whose characters are then no longer held.
"""
import argparse
import json
import pathlib
import random
import re

OUT = pathlib.Path(__file__).resolve().parent / "link-frames.json"
MAX_CHUNKS = 8192
MAX_PARTIAL = 16
DIGITS = re.compile(r"[0-9]+")
HEX12 = re.compile(r"[0-9a-f]{12}")


def parse(text):
    if text == "":
        return None
    kind, rest = text[0], text[1:]
    if kind == "M":
        return {"kind": "message", "text": rest}
    if kind in "XK":
        return {"kind": "retire" if kind == "X" else "keep"} if rest == "" else None
    if kind == "C":
        fields = rest.split(":", 3)
        if len(fields) != 4:
            return None
        ident, index, count, part = fields
        if not (1 <= len(ident) <= 64) or not DIGITS.fullmatch(index) or not DIGITS.fullmatch(count):
            return None
        index, count = int(index), int(count)
        if not (1 <= count <= MAX_CHUNKS) or index >= count:
            return None
        return {"kind": "chunk", "id": ident, "index": index, "count": count, "part": part}
    if kind in "HW":
        try:
            body = json.loads(rest)
        except ValueError:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("peerId"), str) or not HEX12.fullmatch(body["peerId"]):
            return None
        if kind == "W":
            return {"kind": "welcome", "peerId": body["peerId"]}
        nonce = body.get("nonce")
        if not isinstance(nonce, str) or len(nonce) > 64:
            return None
        return {"kind": "hello", "peerId": body["peerId"], "nonce": nonce}
    return None


def reassemble(max_chars, parts):
    """Outcomes of adding each (id, index, count, part) in order; stops at the first overflow."""
    partial, held, out = {}, 0, []
    for ident, index, count, part in parts:
        entry = partial.get(ident)
        if entry is None:
            if len(partial) >= MAX_PARTIAL:
                out.append({"status": "overflow"})
                break
            entry = partial[ident] = {"parts": [None] * count}
        if len(entry["parts"]) != count or entry["parts"][index] is not None:
            out.append({"status": "pending"})
            continue
        if held + len(part) > max_chars:
            out.append({"status": "overflow"})
            break
        entry["parts"][index] = part
        held += len(part)
        if all(p is not None for p in entry["parts"]):
            del partial[ident]
            text = "".join(entry["parts"])
            held -= len(text)
            out.append({"status": "complete", "text": text})
        else:
            out.append({"status": "pending"})
    return out


def frames(rng):
    fixed = ["M", "M{\"a\":1}", "Mé😀", "X", "K", "XX", "K ", "", "Q", "x",
             "Cab:0:1:whole", "Cab:0:2:", "C:0:1:x", "Cab:1:1:x", "Cab:-1:2:x", "Cab:+1:2:x", "Cab: 1:2:x",
             "Cab:1e0:2:x", "Cab::2:x", "Cab:0::x", "Cab:0:0:x", "Cab:0:8192:x", "Cab:0:8193:x", "Cab:0:2",
             "Cab:0:2:a:b", "C" + "i" * 64 + ":0:1:x", "C" + "i" * 65 + ":0:1:x", "Cab:00:02:x", "Cab:0:99999999999999999999:x",
             'W{"peerId":"0123456789ab"}', 'W{"peerId":"0123456789AB"}', 'W{"peerId":"0123456789a"}', "W{}", "Wnot json",
             'W[1]', 'H{"peerId":"0123456789ab","nonce":"n1"}', 'H{"peerId":"0123456789ab"}',
             'H{"peerId":"0123456789ab","nonce":"' + "n" * 65 + '"}']
    alphabet = "MCXKHW:0123456789ab-+ e{}\"peerId"
    generated = []
    for _ in range(300):
        base = rng.choice(fixed[:4] + ["Cab:0:2:x", "Cq1:3:7:part", 'W{"peerId":"0123456789ab"}'])
        text = list(base)
        for _ in range(rng.randint(1, 3)):
            at = rng.randint(0, len(text))
            op = rng.randrange(3)
            if op == 0:
                text.insert(at, rng.choice(alphabet))
            elif op == 1 and at < len(text):
                del text[at]
            elif at < len(text):
                text[at] = rng.choice(alphabet)
        generated.append("".join(text))
    return [{"frame": f, "expect": parse(f)} for f in fixed + generated]


def sequences(rng):
    fixed = [
        (100, [("a", 1, 2, "world"), ("a", 0, 2, "hello")]),
        (10, [("b", 0, 3, "123456"), ("b", 1, 3, "78901")]),                    # over the budget
        (10, [("b", 0, 2, "12345"), ("b", 1, 2, "67890"), ("c", 0, 1, "0123456789")]),  # exactly the budget, twice
        (100, [("d", 0, 2, "x"), ("d", 0, 2, "y"), ("d", 0, 3, "z"), ("d", 1, 2, "w")]),  # duplicate, other count
        (1000, [(f"m{i}", 0, 2, "p") for i in range(MAX_PARTIAL)] + [("one-more", 0, 2, "p")]),
        (1000, [(f"m{i}", 0, 2, "p") for i in range(MAX_PARTIAL)] + [("m0", 1, 2, "q"), ("one-more", 0, 2, "p")]),
    ]
    out = [{"maxChars": m, "parts": [list(p) for p in parts], "expect": reassemble(m, parts)} for m, parts in fixed]
    for _ in range(60):
        max_chars = rng.choice([8, 20, 64, 1000])
        parts = []
        for _ in range(rng.randint(1, 40)):
            ident = f"i{rng.randrange(20)}"
            count = rng.randint(1, 4)
            parts.append((ident, rng.randrange(count), count, "".join(rng.choice("abc") for _ in range(rng.randint(0, 6)))))
        out.append({"maxChars": max_chars, "parts": [list(p) for p in parts], "expect": reassemble(max_chars, parts)})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--check", action="store_true", help="compare with the committed file instead of writing it")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    data = {"about": f"Written by Tests/vectors/make_link_frame_vectors.py --seed {args.seed} from docs/protocol.md ('Links').",
            "frames": frames(rng), "sequences": sequences(rng)}
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    if args.check:
        raise SystemExit(0 if OUT.read_text() == text else "link-frames.json differs from what the generator writes")
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(data['frames'])} frames, {len(data['sequences'])} sequences)")


if __name__ == "__main__":
    main()
