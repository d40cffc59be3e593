#!/usr/bin/env python3
"""A ring peer built on aiortc, a Python WebRTC stack we did not write: it registers with the rendezvous
server, dials one browser peer through the server's signal relay (offer, answer, trickled ICE
candidates), sends it one overlay message over the data channel and waits for one back.
Prints JSON lines: {"peerId": …} once registered, then {"received": …} and exits 0."""
import argparse
import asyncio
import json
import sys
import time

import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def say(obj):
    print(json.dumps(obj), flush=True)


async def main(url, target, timeout):
    async with websockets.connect(url, subprotocols=["webrtc-explorer.v2"]) as ws:
        # Protocol v2: sign the connection's challenge with a new Ed25519 key (docs/protocol.md).
        challenge = json.loads(await ws.recv())
        assert challenge["type"] == "challenge", challenge
        key = Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
        text = f"browsercloud-register/1\n{challenge['serverKey']}\n{challenge['nonce']}\n-\n{public}".encode()
        await ws.send(json.dumps({"type": "register", "publicKey": public, "signature": key.sign(text).hex(),
                                  "capabilities": {"runtimes": [], "transports": ["webrtc"], "stack": "aiortc"}}))
        me = None
        while me is None:
            m = json.loads(await ws.recv())
            if m["type"] == "registered":
                me, certificate = m["peerId"], m["certificate"]
        say({"peerId": me})

        received = asyncio.get_running_loop().create_future()
        state = {"intent": "aiortc-1", "pc": None}

        def wire(channel):
            @channel.on("open")
            def on_open():
                # A signed overlay message (docs/protocol.md, "Signed overlay messages"): browsers refuse unsigned ones.
                body = (f'{{"srcId":"{me}","dstId":"{target}","id":"{me}-0","at":{int(time.time() * 1000)},'
                        f'"data":{{"hello":"from aiortc"}}}}')
                signature = key.sign(b"browsercloud-overlay/1\n" + body.encode()).hex()
                channel.send(f"S0:{certificate}:{signature}:{body}")

            @channel.on("message")
            def on_message(data):
                if data == "X":
                    channel.send("K")  # the browser wants to retire the link: keep it, it is needed here
                elif isinstance(data, str) and data.startswith("M") and not received.done():
                    received.set_result(json.loads(data[1:]))

            if channel.readyState == "open":
                on_open()

        # Dial the browser (aiortc gathers every candidate into the SDP, no trickling).
        pc = RTCPeerConnection()
        state["pc"] = pc
        wire(pc.createDataChannel("webrtc-explorer", ordered=True))
        await pc.setLocalDescription(await pc.createOffer())
        await ws.send(json.dumps({"type": "signal", "to": target, "intentId": state["intent"],
                                  "signal": {"type": "offer", "sdp": pc.localDescription.sdp}}))

        async def signalling():
            async for text in ws:
                m = json.loads(text)
                if m.get("type") != "signal" or m.get("from") != target:
                    continue
                s = m["signal"]
                if s.get("type") == "offer" and m["intentId"] != state["intent"]:
                    # The browser dials too (glare, or it needs this peer): protocol rule, the smaller ID wins.
                    if me < target:
                        continue
                    await state["pc"].close()
                    answerer = RTCPeerConnection()
                    state["pc"], state["intent"] = answerer, m["intentId"]
                    answerer.on("datachannel", wire)
                    await answerer.setRemoteDescription(RTCSessionDescription(sdp=s["sdp"], type="offer"))
                    await answerer.setLocalDescription(await answerer.createAnswer())
                    await ws.send(json.dumps({"type": "signal", "to": target, "intentId": state["intent"],
                                              "signal": {"type": "answer", "sdp": answerer.localDescription.sdp}}))
                    continue
                if m.get("intentId") != state["intent"]:
                    continue
                if s.get("type") == "answer":
                    await state["pc"].setRemoteDescription(RTCSessionDescription(sdp=s["sdp"], type="answer"))
                elif "candidate" in s and s["candidate"] and s["candidate"].get("candidate"):
                    c = candidate_from_sdp(s["candidate"]["candidate"].split(":", 1)[1])
                    c.sdpMid = s["candidate"].get("sdpMid")
                    c.sdpMLineIndex = s["candidate"].get("sdpMLineIndex")
                    await state["pc"].addIceCandidate(c)

        task = asyncio.create_task(signalling())
        try:
            envelope = await asyncio.wait_for(received, timeout)
            say({"received": envelope})
        finally:
            task.cancel()
            await state["pc"].close()
            await ws.send(json.dumps({"type": "leave"}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    try:
        asyncio.run(main(a.url, a.target, a.timeout))
    except Exception as error:  # noqa: BLE001 - report any failure to the test
        say({"error": repr(error)})
        sys.exit(1)
