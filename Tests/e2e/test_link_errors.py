"""Link failures reach the page as coded 'error' events (LINK_ERRORS in explorer/channel-manager.js), through
the channel manager's one teardown path: a 'dial me' URL that cannot be dialled, and a WebSocket link whose
far end does not welcome the page as the peer it meant to reach. A protocol client plays the other peer."""
import asyncio
import threading

from websockets.asyncio.server import serve

from harness import Peer

SETUP = """async () => {
  const { Explorer } = await import('/webrtc-explorer.js')
  window.errors = []
  window.explorer = new Explorer({ signalingURL: `ws://${location.host}` })
  window.explorer.events.on('error', (e) => window.errors.push(e))
  return (await window.explorer.register()).peerId
}"""


class WrongWelcome:
    """A link listener (bc-link.v1) on loopback that welcomes every dialler as someone else."""

    def __init__(self):
        self.port = None
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True).start()
        assert self.ready.wait(10)

    async def _main(self):
        async def handler(ws):
            await ws.recv()   # the page's hello
            await ws.send('W{"peerId":"000000000001"}')
            await ws.wait_closed()
        self.stop = asyncio.Event()
        async with serve(handler, "127.0.0.1", 0, subprotocols=["bc-link.v1"]) as server:
            self.port = server.sockets[0].getsockname()[1]
            self.ready.set()
            await self.stop.wait()

    def close(self):
        self.loop.call_soon_threadsafe(self.stop.set)


def wait_error(page, code):
    page.wait_for_function(f"() => window.errors.some((e) => e.code === '{code}')", timeout=10000)
    return [e for e in page.evaluate("window.errors") if e["code"] == code]


def test_link_failures_are_reported_with_codes(page, web_server):
    page_id = page.evaluate(SETUP)
    other = Peer(web_server)
    listener = WrongWelcome()
    try:
        other.register()
        other.send({"type": "signal", "to": page_id, "intentId": "d1", "signal": {"type": "dial-me", "url": "ws://[bad", "nonce": "n1"}})
        [dial] = wait_error(page, "ERR_DIAL")
        assert dial["peerId"] == other.peer_id and "ws://[bad" in dial["message"]
        other.send({"type": "signal", "to": page_id, "intentId": "d2",
                    "signal": {"type": "dial-me", "url": f"ws://127.0.0.1:{listener.port}/", "nonce": "n2"}})
        [handshake] = wait_error(page, "ERR_HANDSHAKE")
        assert handshake["peerId"] == other.peer_id and "did not welcome" in handshake["message"]
        # The failed link is gone (one teardown path), and no other error was reported.
        assert page.evaluate("window.explorer.snapshot().links") == []
        assert sorted(e["code"] for e in page.evaluate("window.errors")) == ["ERR_DIAL", "ERR_HANDSHAKE"]
    finally:
        listener.close()
        other.close()
        page.evaluate("window.explorer.leave()")
