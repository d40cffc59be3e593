"""What the benchmark sections share: where the release binaries are, starting and stopping servers and
the load generator, and reading a process's memory and CPU time."""
import os
import pathlib
import platform
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
RELEASE = pathlib.Path(os.environ.get("BROWSERCLOUD_RELEASE_DIR", ROOT / ".build" / "release"))


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def start(cmd, marker):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if marker not in line:
        proc.kill()
        raise RuntimeError(f"{cmd[0]} did not start: {line!r}")
    return proc, int(line.strip().rsplit(":", 1)[-1].split()[-1])


def start_server(tmp, extra):
    # A fresh ring each time: the previous server's state file would come back as leases (for 60 s) and
    # swell this one's tables.
    (tmp / "bench.secret.state").unlink(missing_ok=True)
    cmd = [str(RELEASE / "browsercloud"), "serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "error",
           "--secret-file", str(tmp / "bench.secret"), "--rate-limit", "1000000", "--rate-burst", "1000000"] + extra
    return start(cmd, "listening on")


def stop(proc):
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def loadgen(args, stdin=None):
    return subprocess.run([str(RELEASE / "bc-loadgen")] + args, capture_output=True, text=True, timeout=600,
                          input=stdin)


def thread_cpu_seconds(pid):
    """CPU seconds (user + system) of each named thread of a process, from /proc."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[name] = out.get(name, 0) + (int(fields[11]) + int(fields[12])) / tick
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


