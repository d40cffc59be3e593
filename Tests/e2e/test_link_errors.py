"""Link failures reach the page as coded 'error' events (LINK_ERRORS in explorer/channel-manager.js), through
the channel manager's one teardown path: a 'dial me' that does not name the sender's vouched URL (refused,
counted, nothing dialled), and a WebSocket link whose far end does not welcome the page as the peer it
meant to reach. Protocol clients play the other peers."""
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

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.port = None
        self.diallers = 0
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True).start()
        assert self.ready.wait(10)

    async def _main(self):
        async def handler(ws):
            self.diallers += 1
            await ws.recv()   # the page's hello
            await ws.send('W{"peerId":"000000000001"}')
            await ws.wait_closed()
        self.stop = asyncio.Event()
        async with serve(handler, self.host, 0, subprotocols=["bc-link.v1"]) as server:
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
    listener = WrongWelcome()
    elsewhere = WrongWelcome("127.0.0.2")    # an address no peer registered
    unvouched = Peer(web_server)
    other = Peer(web_server)
    try:
        unvouched.register()
        other.register(capabilities={"url": f"ws://127.0.0.1:{listener.port}/"})   # vouched: the page's server is loopback
        # No vouched URL, or a URL other than the vouched one: refused and counted, nothing dialled.
        unvouched.send({"type": "signal", "to": page_id, "intentId": "d1",
                        "signal": {"type": "dial-me", "url": f"ws://127.0.0.1:{listener.port}/", "nonce": "n1"}})
        other.send({"type": "signal", "to": page_id, "intentId": "d2",
                    "signal": {"type": "dial-me", "url": f"ws://127.0.0.2:{elsewhere.port}/", "nonce": "n2"}})
        page.wait_for_function("() => window.errors.filter((e) => e.code === 'ERR_DIAL_REFUSED').length === 2", timeout=10000)
        # (Two connections: the server may relay the two signals in either order.)
        refused = {e["peerId"]: e["message"] for e in page.evaluate("window.errors") if e["code"] == "ERR_DIAL_REFUSED"}
        assert sorted(refused) == sorted([unvouched.peer_id, other.peer_id])
        assert "no vouched URL" in refused[unvouched.peer_id] and "not the sender's vouched URL" in refused[other.peer_id]
        assert page.evaluate("window.explorer.channels.dialsRefused") == 2
        # The vouched URL is dialled (the handshake fails there: the listener welcomes the page as someone else).
        other.send({"type": "signal", "to": page_id, "intentId": "d3",
                    "signal": {"type": "dial-me", "url": f"ws://127.0.0.1:{listener.port}/", "nonce": "n3"}})
        [handshake] = wait_error(page, "ERR_HANDSHAKE")
        assert handshake["peerId"] == other.peer_id and "did not welcome" in handshake["message"]
        # Dials go out in the order the signals came: the refused ones would have reached their listeners first.
        assert listener.diallers == 1 and elsewhere.diallers == 0
        # The failed link is gone (one teardown path), and no other error was reported.
        assert page.evaluate("window.explorer.snapshot().links") == []
        assert sorted(e["code"] for e in page.evaluate("window.errors")) == ["ERR_DIAL_REFUSED", "ERR_DIAL_REFUSED", "ERR_HANDSHAKE"]
    finally:
        listener.close()
        elsewhere.close()
        other.close()
        unvouched.close()
        page.evaluate("window.explorer.leave()")


def test_dial_me_refusals_of_the_pure_rule(page):
    """explorer/dial-me.js: only the vouched URL, named exactly; loopback URLs only from a loopback server."""
    out = page.evaluate("""async () => {
      const { dialMeRefusal } = await import('/explorer/dial-me.js')
      const server = 'ws://10.0.0.1:9000', local = 'ws://127.0.0.1:9000'
      const v = 'ws://10.0.0.7:9100/'
      return [
        dialMeRefusal({ url: v, fromUrl: v, signalingURL: server }),
        dialMeRefusal({ url: v, fromUrl: undefined, signalingURL: server }),
        dialMeRefusal({ url: 'ws://10.0.0.8:9100/', fromUrl: v, signalingURL: server }),
        dialMeRefusal({ url: undefined, fromUrl: v, signalingURL: server }),
        dialMeRefusal({ url: 'http://10.0.0.7/', fromUrl: 'http://10.0.0.7/', signalingURL: server }),
        dialMeRefusal({ url: 'ws://127.0.0.1:9100/', fromUrl: 'ws://127.0.0.1:9100/', signalingURL: server }),
        dialMeRefusal({ url: 'ws://[::1]:9100/', fromUrl: 'ws://[::1]:9100/', signalingURL: server }),
        dialMeRefusal({ url: 'ws://127.0.0.1:9100/', fromUrl: 'ws://127.0.0.1:9100/', signalingURL: local }),
        dialMeRefusal({ url: 'ws://127.0.0.1:9100/', fromUrl: 'ws://127.0.0.1:9100/', signalingURL: 'ws://localhost:9000' }),
      ]
    }""")
    assert out[0] is None and out[7] is None and out[8] is None
    assert out[1] == "the sender has no vouched URL"
    assert out[2] == out[3] == "the dial-me URL is not the sender's vouched URL"
    assert out[4] == "the vouched URL is not ws:// or wss://"
    assert out[5] == out[6] == "a loopback URL, but the server is not on this machine"
