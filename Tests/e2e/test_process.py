"""The job engine's parts on one page: the pure scheduler (process/scheduler.js), the Web Worker pool
(process/worker-pool.js, real Workers), and browser-process.js on a one-peer ring (the thesis's
examples, errors and limits). 127.0.0.1 is a secure context, so WebCrypto is there."""
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMALL = json.loads((ROOT / "Public/scenes/small.json").read_text())
VECTORS = {v["scene"]: v["sha256"] for v in json.loads((ROOT / "Tests/vectors/raytracer.json").read_text())["images"]}


def scheduler(page, body):
    """Runs `body` with `Scheduler` and `eq(actual, expected, label)` in scope; returns the failures."""
    return page.evaluate("""async (body) => {
      const { Scheduler } = await import('/process/scheduler.js')
      const failures = []
      const eq = (a, b, label) => { if (JSON.stringify(a) !== JSON.stringify(b)) failures.push(`${label}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`) }
      new Function('Scheduler', 'eq', body)(Scheduler, eq)
      return failures
    }""", body)


def test_pull_with_a_bounded_number_in_flight_per_peer_and_in_order(page):
    assert scheduler(page, """
      const s = new Scheduler({ taskCount: 5 })
      s.addPeer('a', 2); s.addPeer('b', 1)
      eq(s.assign(0).map(x => [x.taskId, x.peerId]), [[0, 'a'], [1, 'a'], [2, 'b']], 'first fill')
      eq(s.assign(1), [], 'no credit left')
      eq(s.complete(1, 'a', 'h1', 10).winner, true, 'result')
      eq(s.assign(11).map(x => [x.taskId, x.peerId]), [[3, 'a']], 'a result returns a credit')
      for (const [t, p] of [[0, 'a'], [2, 'b'], [3, 'a']]) s.complete(t, p, 'h', 20)
      eq(s.assign(21).map(x => x.taskId), [4], 'last task')
      s.complete(4, 'a', 'h', 30)
      eq(s.finished, true, 'finished')
      eq([...s.wins()], [['a', 4], ['b', 1]], 'wins')
    """) == []


def test_a_peer_that_leaves_has_its_tasks_dispatched_again_first(page):
    assert scheduler(page, """
      const s = new Scheduler({ taskCount: 4 })
      s.addPeer('a', 2); s.addPeer('b', 1)
      s.assign(0)
      eq(s.removePeer('a'), [0, 1], 'lost tasks')
      s.complete(2, 'b', 'h', 5)
      eq(s.assign(6).map(x => [x.taskId, x.attempt]), [[0, 2]], 're-dispatched before task 3')
      eq(s.counts.redispatched, 1, 'counted')
      eq(s.counts.lost, 2, 'lost counted')
      eq(s.complete(1, 'x', 'h', 7).unexpected, true, 'a result from a peer the task never went to is ignored')
      eq(s.complete(0, 'a', 'h', 8).winner, true, 'a late result from the lost peer still wins')
    """) == []


def test_deadlines_errors_and_busy_peers(page):
    assert scheduler(page, """
      const s = new Scheduler({ taskCount: 3, deadlineMs: 100, maxAttempts: 2, maxCopies: 1 })
      s.addPeer('a', 3)
      s.assign(0)
      eq(s.fail(1, 'a', 'threw', 'boom', 1), { failed: true, cancel: [] }, 'a throwing task fails at once')
      eq(s.expired(50), [], 'not yet late')
      eq(s.expired(101).map(x => [x.taskId, x.failed]), [[0, false], [2, false]], 'late copies go back to pending')
      eq(s.assign(102).map(x => [x.taskId, x.attempt]), [[0, 2], [2, 2]], 'dispatched again')
      s.complete(2, 'a', 'h', 110)
      eq(s.expired(203).map(x => [x.taskId, x.failed]), [[0, true]], 'fails after maxAttempts')
      eq(s.finished, true, 'finished')
      eq([...s.errors.keys()], [1, 0], 'errors')
      eq(s.counts.failed, 2, 'failed count')
      const b = new Scheduler({ taskCount: 2 })
      b.addPeer('a', 1)
      b.assign(0)
      b.fail(0, 'a', 'busy', 'full', 0, 500)
      eq(b.assign(100), [], 'a busy peer pauses')
      eq(b.assign(600).map(x => [x.taskId, x.peerId]), [[0, 'a']], 'then gets the task again')
      b.fail(0, 'a', 'stopped', 'stopped', 600, 500)
      eq(b.assign(601), [], 'a stopped peer pauses too')
      for (let i = 0; i < 50; i++) { b.assign(2000 + i * 1000); b.fail(0, 'a', 'busy', 'full', 2000 + i * 1000, 500) }
      eq(b.finished, false, 'declines never fail the task')
    """) == []


def test_losses_are_bounded_and_only_deadlines_and_crashes_count_as_attempts(page):
    assert scheduler(page, """
      const s = new Scheduler({ taskCount: 1, maxAttempts: 2, maxRetries: 3 })
      s.addPeer('a', 1); s.addPeer('b', 1); s.addPeer('c', 1)
      s.assign(0); s.removePeer('a')
      s.assign(1); s.removePeer('b')
      s.assign(2)
      eq(s.fail(0, 'c', 'crashed', 'x', 3).failed, false, 'peers leaving do not count: one crash is not yet maxAttempts')
      for (let i = 0; i < 3; i++) { s.assign(10 + i); eq(s.fail(0, 'c', 'lost', 'x', 10 + i).failed, false, `loss ${i}`) }
      s.assign(20)
      eq(s.fail(0, 'c', 'corrupt', 'x', 20), { failed: true, cancel: [] }, 'the fourth loss or corruption fails the task')
      eq(s.errors.get(0).code, 'corrupt', 'with its code')
      eq(s.counts.lost, 5, 'lost counts both peers leaving and losses in transit')
    """) == []


def test_speculative_duplicates_of_stragglers_first_result_wins(page):
    assert scheduler(page, """
      const s = new Scheduler({ taskCount: 3, speculateAfter: 2, speculateMinMs: 0 })
      s.addPeer('a', 1); s.addPeer('b', 1); s.addPeer('c', 1)
      s.assign(0)
      s.complete(0, 'a', 'h0', 10)
      eq(s.assign(11), [], 'no duplicate before the straggler threshold (2 x median 10 ms)')
      const dup = s.assign(25)
      eq(dup.map(x => [x.taskId, x.peerId, x.speculative]), [[1, 'a', true]], 'the oldest outstanding task is duplicated')
      eq(s.complete(1, 'a', 'h1', 30), { winner: true, mismatch: false, cancel: ['b'] }, 'first wins, the other copy is cancelled')
      eq(s.complete(1, 'b', 'hX', 31), { winner: false, mismatch: true, cancel: [] }, 'a later copy is discarded and compared')
      eq(s.counts.mismatches, 1, 'mismatch counted')
      eq(s.counts.speculative, 1, 'speculative counted')
      const n = new Scheduler({ taskCount: 2, speculateMinMs: 1000 })
      n.addPeer('a', 1); n.addPeer('b', 1)
      n.assign(0); n.complete(0, 'a', 'h', 1)
      eq(n.assign(500), [], 'short tasks are not duplicated before speculateMinMs')
      eq(n.assign(1002).length, 1, 'but are after')
    """) == []


POOL = """async ({ tasks, size, maxQueued }) => {
  const { WorkerPool } = await import('/process/worker-pool.js')
  const pool = new WorkerPool({ size, maxQueued })
  const out = await Promise.all(tasks.map(([source, input, deadline], i) =>
    pool.run(i, { runtime: 'js', jobId: `j${i}`, shared: { source, mode: 'partition' }, input }, deadline)))
  pool.stop()
  return out.map((r) => r.ok ? JSON.parse(r.payload) : r.error.code)
}"""


def test_worker_pool_reports_errors_and_replaces_a_worker_past_its_deadline(page):
    tasks = [["(x) => x + 1", 1, 5000], ["(x) => { throw new Error('no') }", 0, 5000],
             ["(x) => { for (;;) {} }", 0, 300], ["(x) => x * 10", 4, 5000], ["not a function(", 0, 5000],
             ["(x) => typeof fetch + typeof WebSocket", 0, 5000]]
    assert page.evaluate(POOL, {"tasks": tasks, "size": 1, "maxQueued": 10}) == [2, "threw", "deadline", 40, "bad-task", "undefinedundefined"]
    # A full pool refuses at once instead of queueing without bound.
    assert page.evaluate(POOL, {"tasks": [["(x) => x", 1, 5000]] * 3, "size": 1, "maxQueued": 1}) == [1, 1, "busy"]


def test_cancel_stops_a_running_task(page):
    """The endless task takes a Web Lock once it runs (task workers keep navigator.locks) and never
    gives it back: the page waits for the lock to be held (the task started) before cancelling, and
    for it to be released (its worker is gone) after."""
    assert page.evaluate("""async () => {
      const { WorkerPool } = await import('/process/worker-pool.js')
      const LOCK = 'test-endless-task-running'
      const held = async () => (await navigator.locks.query()).held.some((l) => l.name === LOCK)
      const until = async (predicate, what) => {
        const deadline = performance.now() + 10000
        while (!(await predicate())) {
          if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
          await new Promise((r) => setTimeout(r, 10))
        }
      }
      const pool = new WorkerPool({ size: 1, maxQueued: 1 })
      const source = `async () => {
        await new Promise((started) => navigator.locks.request('${LOCK}', () => { started(); return new Promise(() => {}) }))
        for (;;) {}
      }`
      const endless = pool.run('a', { runtime: 'js', jobId: 'j1', shared: { source, mode: 'partition' }, input: 0 }, 60000)
      const queued = pool.run('b', { runtime: 'js', jobId: 'j2', shared: { source: '(x) => x', mode: 'partition' }, input: 7 }, 60000)
      await until(held, 'the endless task to start')
      const before = pool.keys()
      pool.cancel((key) => key === 'a')
      const out = [before, (await endless).error.code, JSON.parse((await queued).payload)]
      await until(async () => !(await held()), 'the worker of the cancelled task to end')
      pool.stop()
      return out
    }""") == [["b", "a"], "cancelled", 7]


def test_a_job_cannot_tamper_with_the_workers_of_another_job(page):
    """A worker runs one job's tasks only; a task cannot replace the worker's handlers either."""
    assert page.evaluate("""async () => {
      const { WorkerPool } = await import('/process/worker-pool.js')
      const pool = new WorkerPool({ size: 1, maxQueued: 4, affinity: (key) => key.job })
      let n = 0
      const run = (job, source) => pool.run({ job }, { runtime: 'js', jobId: `${job}${n++}`, shared: { source, mode: 'partition' }, input: 0 }, 5000)
      const out = []
      for (const [job, source] of [
        ['a', '() => { globalThis.leak = 42; try { self.onmessage = () => {} } catch {} return String(self.onmessage === undefined) }'],
        ['a', '() => typeof globalThis.leak'],
        ['b', '() => typeof globalThis.leak']]) {
        const r = await run(job, source)
        out.push(r.ok ? JSON.parse(r.payload) : r.error.code)
      }
      pool.stop()
      return out
    }""") == ["true", "number", "undefined"]


PROCESS = """async ({ url, body }) => {
  const { participate, BrowserProcess } = await import('/browser-process.js')
  return await new Function('participate', 'BrowserProcess', 'url', `return (async () => { ${body} })()`)(participate, BrowserProcess, url)
}"""


def test_the_thesis_example_on_one_peer(page, web_server):
    out = page.evaluate(PROCESS, {"url": web_server.ws, "body": """
      const bp = await participate({ signalingURL: url, workers: 2 })
      const progress = []
      bp.events.on('progress', ({ done, total }) => progress.push([done, total]))
      const data = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
      const promised = await bp.execute(data, function (a) { return a + 1 }, 1)
      const viaCallback = await new Promise((resolve) => bp.execute(data, function (a) { return a + 1 }, 1, (err, r) => resolve([err, r])))
      const partitions = await bp.execute(data, (part) => part.reduce((a, b) => a + b, 0), 1, { tasks: 3, partition: true })
      const asyncFn = await bp.execute([1, 2], async (a) => a * 3, 1)
      await bp.explorer.leave()
      return { promised, viaCallback, partitions, asyncFn, progress: progress.slice(0, 4) }
    """})
    assert out["promised"] == list(range(1, 12))
    assert out["viaCallback"] == [None, list(range(1, 12))]
    assert out["partitions"] == [sum(range(0, 3)), sum(range(3, 7)), sum(range(7, 11))]
    assert out["asyncFn"] == [3, 6]
    assert out["progress"][0] == [1, 4] and out["progress"][3] == [4, 4]


def test_raytrace_on_one_peer_and_its_errors(page, web_server):
    out = page.evaluate(PROCESS, {"url": web_server.ws, "body": f"""
      const scene = {json.dumps(SMALL)}
      const bp = await participate({{ signalingURL: url, workers: 2 }})
      const tiles = []
      const r = await bp.raytrace(scene, {{ tiles: 25, peers: 1, onTile: (t) => tiles.push(t) }})
      const errors = []
      try {{ await bp.raytrace({{ ...scene, width: 0 }}, {{ tiles: 4 }}) }} catch (e) {{ errors.push(e.message) }}
      try {{ await bp.execute('x', (a) => a, 1) }} catch (e) {{ errors.push(e.message) }}
      try {{ await bp.run({{ runtime: 'fortran', inputs: [], nPeers: 1 }}) }} catch (e) {{ errors.push(e.message) }}
      // A peer that offers only the 'js' runtime: a ray-trace job finds nobody and says so.
      await bp.explorer.leave()
      const jsOnly = await participate({{ signalingURL: url, workers: 1, runtimes: ['js'] }})
      try {{ await jsOnly.raytrace(scene, {{ tiles: 4, discoveryMs: 500 }}) }} catch (e) {{ errors.push(e.message) }}
      await jsOnly.explorer.leave()
      return {{ sha256: r.sha256, tiles: tiles.length, stats: r.stats, errors }}
    """})
    assert out["sha256"] == VECTORS["Public/scenes/small.json"]
    assert out["tiles"] == 25 and out["stats"]["tasksPerPeer"] == {out["stats"]["peers"][0]: 25}
    errors = out["errors"]
    assert "width" in errors[0]
    assert "data must be an array" in errors[1]
    assert "unknown runtime 'fortran'" in errors[2]   # ('wasm' is a runtime now: docs/jobs.md)
    assert "no peer offers the 'raytrace' runtime" in errors[3]
