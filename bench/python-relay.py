#!/usr/bin/env python3
"""A minimal signalling relay on Python's `websockets` (PyPI, in the bench's virtual environment
.build/bench-venv): a REFERENCE POINT for `make bench` (docs/benchmarks.md, section 3), not a product.
It stands for what a user might write instead of running the rendezvous server: no ring, no challenge,
no signatures, no rate limits, no limits but the library's own; small and correct for what it does.

Protocol (subprotocol "bc-minimal"; the load generator's `--protocol minimal`), JSON text frames, the
same as bench/node-relay.js:
  {"type":"register"}                          -> {"type":"registered","peerId":"<12 hex>"}
  {"type":"signal","to":ID,"intentId":...,"signal":{...}}
                                               -> to ID: {"type":"signal","from":<sender>,"intentId":...,"signal":{...}}
  a signal before register                     -> {"type":"error","code":"not-registered"}
  a signal to an ID nobody holds               -> {"type":"error","code":"unknown-peer"}
  anything else, or text that is not JSON      -> {"type":"error","code":"bad-message"}
A connection registers once (a second register gets its ID again); its ID is freed when it closes.

Usage: python-relay.py [PORT]   (0 or none: a free port). Listens on 127.0.0.1 and prints
"listening on PORT" once ready; SIGTERM or SIGINT stops it."""
import asyncio
import itertools
import json
import resource
import signal
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

# json.dumps without spaces: the load generator looks for "type":"registered" byte for byte.
dumps = json.JSONEncoder(separators=(",", ":")).encode


async def main(port):
    # One connection is one file: take the hard limit (20,000 here) as the soft limit.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    peers = {}                      # peer ID (12 hex) -> connection
    ids = itertools.count(1)

    async def handler(ws):
        me = None
        try:
            async for text in ws:
                try:
                    m = json.loads(text)
                except (ValueError, TypeError):
                    m = None
                kind = m.get("type") if isinstance(m, dict) else None
                if kind == "register":
                    if me is None:
                        me = f"{next(ids):012x}"
                        peers[me] = ws
                    await ws.send(dumps({"type": "registered", "peerId": me}))
                elif kind == "signal" and isinstance(m.get("to"), str) and isinstance(m.get("signal"), dict):
                    target = peers.get(m["to"])
                    if me is None:
                        await ws.send(dumps({"type": "error", "code": "not-registered"}))
                    elif target is None:
                        await ws.send(dumps({"type": "error", "code": "unknown-peer"}))
                    else:
                        try:
                            await target.send(dumps({"type": "signal", "from": me, "intentId": m.get("intentId"),
                                                     "signal": m["signal"]}))
                        except ConnectionClosed:
                            pass    # the target left meanwhile
                else:
                    await ws.send(dumps({"type": "error", "code": "bad-message"}))
        except ConnectionClosed:
            pass
        finally:
            if me is not None:
                peers.pop(me, None)

    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    # compression=None: no permessage-deflate, as the rendezvous server's default; max_size as its
    # --max-message-bytes default.
    async with serve(handler, "127.0.0.1", port, subprotocols=["bc-minimal"], compression=None,
                     max_size=65536) as server:
        print(f"listening on {server.sockets[0].getsockname()[1]}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
