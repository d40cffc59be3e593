"""A native worker compiles a received Wasm module off its service thread (docs/jobs.md, "Workers and
safety"): while a large module compiles (seconds in a debug build), the peer goes on routing and delivering
overlay messages, and the job's tasks, held until the module is ready, then run.

The real server, a worker peer W (one worker thread), a peer A without workers that keeps sending W
overlay messages, and a `browsercloud submit wasm` process whose module takes at least 3 s to compile.
The largest delay of A's messages to W while the job runs must stay far below the compile time (it was
the whole compile time when W compiled on its message thread; and when the submitter, which joins the
ring and may relay A's messages, checked the module on its own message thread)."""
import base64
import json
import subprocess
import threading
import time

from harness import BIN, Server
from native import NativePeer, wait_stable

MIN_COMPILE = 3.0


def leb(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def big_module(target_bytes, ops=20000):
    """A valid task module of about `target_bytes`: the ABI's exports (bc_alloc returns 1024, bc_run an empty
    output) and filler functions of `ops` additions each, which an eager compiler translates one by one."""
    def vec(items):
        return leb(len(items)) + b"".join(items)

    def section(i, body):
        return bytes([i]) + leb(len(body)) + body

    def name(s):
        return leb(len(s)) + s.encode()

    def body(code):
        b = vec([]) + code + b"\x0b"
        return leb(len(b)) + b

    n = max(1, target_bytes // (3 * ops))
    types = vec([b"\x60" + vec([b"\x7f"]) + vec([b"\x7f"]), b"\x60" + vec([b"\x7f"] * 4) + vec([b"\x7e"]), b"\x60" + vec([]) + vec([b"\x7f"])])
    functions = vec([leb(0), leb(1)] + [leb(2)] * n)
    memory = vec([b"\x00" + leb(1)])
    exports = vec([name("memory") + b"\x02" + leb(0), name("bc_alloc") + b"\x00" + leb(0), name("bc_run") + b"\x00" + leb(1)])
    filler = body(b"\x41\x01" + b"\x41\x03\x6a" * ops)
    code = vec([body(b"\x41" + leb(1024)), body(b"\x42\x00")] + [filler] * n)
    return (b"\0asm\1\0\0\0" + section(1, types) + section(3, functions) + section(5, memory) + section(7, exports)
            + section(10, code))


def wasm_run_seconds(module, tmp_path):
    """Seconds `wasm-run` takes to check and compile `module` and run no task (process start included)."""
    (tmp_path / "none.txt").write_text("")
    start = time.monotonic()
    done = subprocess.run([BIN, "wasm-run", "--module", str(module), "--inputs", str(tmp_path / "none.txt"), "--out", str(tmp_path / "none.out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - start


def slow_module(tmp_path):
    """A module that takes at least MIN_COMPILE seconds to compile with this build (debug or release)."""
    tiny = tmp_path / "tiny.wasm"
    tiny.write_bytes(big_module(1000, ops=10))
    base = wasm_run_seconds(tiny, tmp_path)
    size = 1 << 20
    while True:
        module = tmp_path / "big.wasm"
        module.write_bytes(big_module(size))
        compile_seconds = wasm_run_seconds(module, tmp_path) - base
        if compile_seconds >= MIN_COMPILE or size >= 7 << 20:
            break
        size = min(7 << 20, int(size * max(1.5, 1.3 * MIN_COMPILE / max(compile_seconds, 0.05))))
    print(f"module of {module.stat().st_size} bytes: compiled in {compile_seconds:.2f} s by wasm-run")
    assert compile_seconds >= MIN_COMPILE, f"the largest module compiled in {compile_seconds:.2f} s only"
    return module, compile_seconds


class Prober:
    """A sends W numbered overlay messages, one after the other's delivery; records each one's delay."""

    def __init__(self, a, w):
        self.a, self.w, self.delays, self.stopped = a, w, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        i = 0
        while not self.stopped.is_set():
            i += 1
            start = time.monotonic()
            self.a.command(f"send {self.w.peer_id} {json.dumps({'probe': i})}")
            deadline = start + 120
            while not any(e["data"] == {"probe": i} for e in self.w.of("message")) and time.monotonic() < deadline:
                time.sleep(0.005)
            self.delays.append(time.monotonic() - start)
            self.stopped.wait(0.05)

    def stop(self):
        self.stopped.set()
        self.thread.join(150)
        return self.delays


def test_messages_keep_flowing_while_a_large_module_compiles(tmp_path):
    module, compile_seconds = slow_module(tmp_path)
    server = Server(tmp_path)
    w = NativePeer(server.ws, workers=1)
    a = NativePeer(server.ws, workers=0)
    try:
        w.wait_registered(timeout=30)
        a.wait_registered(timeout=30)
        wait_stable(server, [w, a])
        blobs = [bytes([i]) for i in range(4)]
        (tmp_path / "inputs.txt").write_text("".join(base64.b64encode(b).decode() + "\n" for b in blobs))
        prober = Prober(a, w)
        start = time.monotonic()
        done = subprocess.run([BIN, "submit", "wasm", "--server", server.ws, "--module", str(module), "--inputs", str(tmp_path / "inputs.txt"),
                               "--out", str(tmp_path / "out.txt"), "--peers", "1", "--discovery-wait", "10"],
                              capture_output=True, text=True, timeout=300)
        took = time.monotonic() - start
        delays = prober.stop()
        assert done.returncode == 0, done.stderr
        # Four tasks, each an empty output: the first brought the module, the others were held for it.
        assert (tmp_path / "out.txt").read_text() == "\n" * 4
        assert "module sent 1 times" in done.stdout, done.stdout
        assert took >= compile_seconds, f"the job took {took:.2f} s, less than the compile ({compile_seconds:.2f} s)"
        print(f"job {took:.2f} s; {len(delays)} messages A -> W, largest delay {max(delays):.3f} s")
        assert len(delays) >= 10, delays
        assert max(delays) < min(1.0, compile_seconds / 3), f"W stopped delivering for {max(delays):.2f} s: {delays}"
    finally:
        for p in (w, a):
            p.stop()
        server.stop()
