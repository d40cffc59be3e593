"""The WebAssembly example modules (examples/wasm, docs/jobs.md "WebAssembly tasks") on wasmtime, an
engine independent of WasmKit and browsers, through the reference runner of the task ABI (wasm_task.py):

- raytracer.wasm renders every test scene of Tests/vectors/raytracer.json, tile by tile, to exactly the
  digests there, and single tiles to exactly the pixels of `browsercloud render --tile`;
- mandelbrot.wasm reproduces Tests/vectors/mandelbrot.json (an independent Python implementation);
- the failure modules fail as described: trap (threw), endless (deadline, bounded by fuel),
  memory-hog (threw, after memory.grow was refused at the limit), big-memory and with-import and
  malformed bytes (bad-task, before anything runs);
- the JSON reader's number conversion is correctly rounded (seeded random numbers against Python's);
- the WebAssembly text example of docs/jobs.md is a working task.
The modules are built by `make wasm` first (incremental), so the tests check the current sources.
"""
import hashlib
import json
import os
import random
import re
import struct
import subprocess
import time

import pytest
import wasmtime

from harness import BIN, ROOT
from wasm_task import MAX_MEMORY_PAGES, PAGE, Engine, TaskError, build_examples, module_bytes

EXAMPLES = ['raytracer', 'mandelbrot', 'trap', 'endless', 'memory-hog', 'big-memory', 'with-import']
RAYTRACER_VECTORS = json.loads((ROOT / 'Tests/vectors/raytracer.json').read_text())
MANDELBROT_VECTORS = json.loads((ROOT / 'Tests/vectors/mandelbrot.json').read_text())


@pytest.fixture(scope='module', autouse=True)
def built():
    return build_examples()


@pytest.fixture(scope='module')
def engine():
    return Engine()


def tiles(width, height, count):
    """docs/raytracer.md, "Tiling": cols = ceil(sqrt(K)), rows = max(1, ceil(K / cols)), capped by the image."""
    cols = 1
    while cols * cols < count:
        cols += 1
    rows = max(1, -(-count // cols))
    cols, rows = min(cols, width), min(rows, height)
    out = []
    for j in range(rows):
        y0, y1 = j * height // rows, (j + 1) * height // rows
        for i in range(cols):
            x0, x1 = i * width // cols, (i + 1) * width // cols
            out.append((x0, y0, x1 - x0, y1 - y0))
    return out


def tile_input(x, y, w, h):
    return struct.pack('<4I', x, y, w, h)


def render_by_tiles(engine, module, scene_bytes, count):
    scene = json.loads(scene_bytes)
    width, height = scene['width'], scene['height']
    image = bytearray(width * height * 4)
    for (x, y, w, h) in tiles(width, height, count):
        pixels = engine.run(module, scene_bytes, tile_input(x, y, w, h))
        assert len(pixels) == w * h * 4
        for row in range(h):
            start = ((y + row) * width + x) * 4
            image[start:start + w * 4] = pixels[row * w * 4:(row + 1) * w * 4]
    return bytes(image)


def test_every_example_is_built_and_has_the_task_abi(engine):
    for name in EXAMPLES:
        data = module_bytes(name)
        module = wasmtime.Module(engine.engine, data)  # valid WebAssembly
        exports = {e.name for e in module.exports}
        assert {'memory', 'bc_alloc', 'bc_run'} <= exports, name
        imports = [(i.module, i.name) for i in module.imports]
        assert imports == ([('env', 'bc_log')] if name == 'with-import' else []), name
    # The engine-side checks accept the well-formed ones.
    for name in ['raytracer', 'mandelbrot', 'trap', 'endless', 'memory-hog']:
        engine.compile(module_bytes(name))


# ---- the ray tracer ----

@pytest.mark.parametrize('image', [i for i in RAYTRACER_VECTORS['images'] if not i.get('slow')], ids=lambda i: i['scene'])
@pytest.mark.parametrize('count', [1, 25])
def test_raytracer_tiles_assemble_to_the_reference_digest(engine, image, count):
    module = engine.compile(module_bytes('raytracer'))
    scene_bytes = (ROOT / image['scene']).read_bytes()
    assert hashlib.sha256(render_by_tiles(engine, module, scene_bytes, count)).hexdigest() == image['sha256']


@pytest.mark.timeout(900)  # about 20 s on one core of the test machine, several times that when it is busy
def test_raytracer_standard_scene_matches_the_reference_digest(engine):
    image = next(i for i in RAYTRACER_VECTORS['images'] if i['scene'].endswith('standard.json'))
    module = engine.compile(module_bytes('raytracer'))
    scene_bytes = (ROOT / image['scene']).read_bytes()
    assert hashlib.sha256(render_by_tiles(engine, module, scene_bytes, 4)).hexdigest() == image['sha256']


def render_tile_sha256(tmp_path, scene, tile):
    out = tmp_path / 'tile.png'
    done = subprocess.run([BIN, 'render', '--scene', scene, '--scenes', str(ROOT / 'Public/scenes'), '--out', str(out),
                           '--tile', ','.join(map(str, tile))], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return re.search(r'pixels sha256 ([0-9a-f]{64})', done.stdout).group(1)


@pytest.mark.parametrize('scene,tile', [('small', (8, 4, 10, 6)), ('small', (63, 47, 1, 1)), ('odd', (0, 0, 37, 23)),
                                        ('odd', (5, 11, 31, 12)), ('medium', (100, 50, 40, 30))])
def test_raytracer_single_tiles_equal_browsercloud_render(engine, tmp_path, scene, tile):
    scene_bytes = (ROOT / f'Public/scenes/{scene}.json').read_bytes()
    pixels = engine.run(module_bytes('raytracer'), scene_bytes, tile_input(*tile))
    assert len(pixels) == tile[2] * tile[3] * 4
    assert hashlib.sha256(pixels).hexdigest() == render_tile_sha256(tmp_path, scene, tile)


def small_scene():
    return json.loads((ROOT / 'Public/scenes/small.json').read_text())


def refused_scenes():
    s = small_scene()
    yield 'not json', b'{"width": 64,'
    yield 'trailing bytes', json.dumps(s).encode() + b' x'
    yield 'escape in a string', json.dumps(s).replace('"plane"', '"pl\\u0061ne"').encode()
    yield 'duplicate key', json.dumps(s).replace('"width": 64', '"width": 64, "width": 64').encode()
    yield 'null', json.dumps({**s, 'ambient': None}).encode()
    yield 'width zero', json.dumps({**s, 'width': 0}).encode()
    yield 'width not an integer', json.dumps({**s, 'width': 64.5}).encode()
    yield 'samples too many', json.dumps({**s, 'samples': 9}).encode()
    yield 'unknown object type', json.dumps({**s, 'objects': [{**s['objects'][1], 'type': 'cube'}]}).encode()
    yield 'colour of two numbers', json.dumps({**s, 'ambient': [0.1, 0.1]}).encode()
    yield 'number too large', json.dumps(s).replace('"radius": 1,', '"radius": 1e400,').encode()
    yield 'collinear camera', json.dumps({**s, 'camera': {**s['camera'], 'up': [0, -0.7, 6]}}).encode()
    yield 'zero plane normal', json.dumps({**s, 'objects': [{**s['objects'][0], 'normal': [0, 0, 0]}]}).encode()
    yield 'too many lights', json.dumps({**s, 'lights': s['lights'] * 9}).encode()


@pytest.mark.parametrize('what,scene_bytes', list(refused_scenes()), ids=[w for w, _ in refused_scenes()])
def test_raytracer_refuses_a_scene_it_does_not_accept_with_a_trap(engine, what, scene_bytes):
    with pytest.raises(TaskError) as e:
        engine.run(module_bytes('raytracer'), scene_bytes, tile_input(0, 0, 4, 4))
    assert e.value.code == 'threw', what


def test_raytracer_accepts_the_same_scene_written_differently(engine):
    # Other spacing, key order, number spellings and defaults written out: the same bytes.
    s = small_scene()
    reference = engine.run(module_bytes('raytracer'), (ROOT / 'Public/scenes/small.json').read_bytes(), tile_input(0, 0, 64, 48))
    s = {k: s[k] for k in reversed(list(s))}
    s['objects'][1]['material'] = {'diffuse': 1, 'reflect': 0.25, **s['objects'][1]['material']}
    text = json.dumps(s, indent='\t').replace('"width": 64', '"width": 6.40e1')
    text = re.sub(r'(?<![0-9.])0\.9(?![0-9])', '0.90000', text).replace('"height": 48', '"height": 4.8E+1')
    assert '0.90000' in text and '6.40e1' in text and '4.8E+1' in text
    assert engine.run(module_bytes('raytracer'), text.encode(), tile_input(0, 0, 64, 48)) == reference


@pytest.mark.parametrize('tile', [(0, 0, 65, 1), (60, 0, 5, 1), (0, 47, 1, 2), (0, 0, 0, 1), (2**32 - 1, 0, 2, 1)])
def test_raytracer_refuses_a_tile_outside_the_image(engine, tile):
    with pytest.raises(TaskError) as e:
        engine.run(module_bytes('raytracer'), (ROOT / 'Public/scenes/small.json').read_bytes(), tile_input(*tile))
    assert e.value.code == 'threw'


def test_raytracer_refuses_an_input_that_is_not_16_bytes(engine):
    with pytest.raises(TaskError) as e:
        engine.run(module_bytes('raytracer'), (ROOT / 'Public/scenes/small.json').read_bytes(), tile_input(0, 0, 1, 1) + b'\0')
    assert e.value.code == 'threw'


# ---- Mandelbrot ----

@pytest.mark.parametrize('vector', MANDELBROT_VECTORS['tasks'], ids=lambda v: v['name'])
def test_mandelbrot_reproduces_the_reference_results(engine, vector):
    out = engine.run(module_bytes('mandelbrot'), b'', bytes.fromhex(vector['input']))
    assert len(out) == vector['outputLength']
    assert hashlib.sha256(out).hexdigest() == vector['sha256']


def test_mandelbrot_quarters_assemble_into_the_overview(engine):
    tasks = {v['name']: bytes.fromhex(v['input']) for v in MANDELBROT_VECTORS['tasks']}
    whole = engine.run(module_bytes('mandelbrot'), b'', tasks['overview'])
    counts = struct.unpack(f'<{len(whole) // 2}H', whole)
    assert len(set(counts)) > 20 and max(counts) == 256 and min(counts) <= 2  # a real picture, not a constant
    image = [[0] * 96 for _ in range(64)]
    for j in range(2):
        for i in range(2):
            quarter = engine.run(module_bytes('mandelbrot'), b'', tasks[f'overview-tile-{j}{i}'])
            q = struct.unpack('<1536H', quarter)
            for row in range(32):
                image[32 * j + row][48 * i:48 * i + 48] = q[row * 48:(row + 1) * 48]
    assert tuple(c for row in image for c in row) == counts


@pytest.mark.parametrize('what,data', [
    ('short input', struct.pack('<4d4I', -2, 1, 0.1, -0.1, 0, 0, 4, 4)),
    ('zero width', struct.pack('<4d5I', -2, 1, 0.1, -0.1, 0, 0, 0, 4, 10)),
    ('too many iterations', struct.pack('<4d5I', -2, 1, 0.1, -0.1, 0, 0, 4, 4, 65536)),
    ('output above 16 MiB', struct.pack('<4d5I', -2, 1, 0.1, -0.1, 0, 0, 4097, 2048, 10)),
    ('not finite', struct.pack('<4d5I', float('nan'), 1, 0.1, -0.1, 0, 0, 4, 4, 10)),
])
def test_mandelbrot_refuses_a_bad_input(engine, what, data):
    with pytest.raises(TaskError) as e:
        engine.run(module_bytes('mandelbrot'), b'', data)
    assert e.value.code == 'threw', what


# ---- the failure modules ----

def test_trap_reports_threw_with_the_trap_message(engine):
    with pytest.raises(TaskError) as e:
        engine.run(module_bytes('trap'), b'shared', b'input')
    assert e.value.code == 'threw'
    assert 'unreachable' in e.value.message


def test_endless_is_ended_by_the_budget_and_the_engine_goes_on(engine):
    module = engine.compile(module_bytes('endless'))
    start = time.monotonic()
    with pytest.raises(TaskError) as e:
        engine.run(module, b'', b'', fuel=50_000_000)
    assert e.value.code == 'deadline'
    assert time.monotonic() - start < 30
    # The same engine then runs the next task.
    assert engine.run(module_bytes('mandelbrot'), b'', bytes.fromhex(MANDELBROT_VECTORS['tasks'][-1]['input'])) == struct.pack('<H', 65535)


def test_memory_hog_grows_to_the_limit_then_traps(engine):
    module = engine.compile(module_bytes('memory-hog'))
    store = wasmtime.Store(engine.engine)
    store.set_limits(memory_size=MAX_MEMORY_PAGES * PAGE)
    store.set_fuel(10**9)
    instance = wasmtime.Instance(store, module, [])
    exports = instance.exports(store)
    with pytest.raises(wasmtime.Trap) as e:
        exports['bc_run'](store, 0, 0, 0, 0)
    assert 'unreachable' in e.value.message
    assert exports['memory'].size(store) == MAX_MEMORY_PAGES  # grew up to the limit, and no further
    with pytest.raises(TaskError) as e:
        engine.run(module, b'', b'')
    assert e.value.code == 'threw'


def test_big_memory_is_refused_before_it_runs(engine):
    memory = next(e.type for e in wasmtime.Module(engine.engine, module_bytes('big-memory')).exports if e.name == 'memory')
    assert memory.limits.min == 300
    with pytest.raises(TaskError) as e:
        engine.compile(module_bytes('big-memory'))
    assert e.value.code == 'bad-task' and '300 pages' in e.value.message


def test_with_import_is_refused_before_it_runs(engine):
    with pytest.raises(TaskError) as e:
        engine.compile(module_bytes('with-import'))
    assert e.value.code == 'bad-task' and 'env.bc_log' in e.value.message


@pytest.mark.parametrize('what,data', [
    ('empty', b''),
    ('not wasm', b'hello, world'),
    ('header only', b'\0asm\1\0\0\0\xff'),
    ('truncated', 'truncated'),
    ('flipped byte in the code', 'flipped'),
])
def test_malformed_bytes_are_refused(engine, what, data):
    good = module_bytes('mandelbrot')
    if data == 'truncated':
        data = good[:len(good) // 2]
    elif data == 'flipped':
        code = good.rindex(b'\x0b')  # an `end` in the last function body: replace it by an invalid opcode
        data = good[:code] + b'\xff' + good[code + 1:]
    with pytest.raises(TaskError) as e:
        engine.compile(data)
    assert e.value.code == 'bad-task', what


# ---- the JSON reader's numbers ----

def random_numbers(rng):
    for _ in range(3000):
        kind = rng.randrange(6)
        if kind == 0:  # shortest round-trip text of a random double
            yield repr(struct.unpack('<d', struct.pack('<Q', rng.getrandbits(63)))[0])
        elif kind == 1:  # many digits, near halfway points
            digits = ''.join(rng.choice('0123456789') for _ in range(rng.randint(1, 40))).lstrip('0') or '0'
            yield f'{digits}e{rng.randint(-320 + len(digits), 300 - len(digits))}'
        elif kind == 2:  # exact halfway points between two doubles (ties to even)
            m = rng.getrandbits(53) | (1 << 53)
            e = rng.randint(-60, 60)
            half = (2 * m + 1) * 2 ** (e - 1) if e >= 1 else None
            yield str(half) if half is not None and len(str(half)) <= 40 else f'{m}.5'
        elif kind == 3:  # scene-like decimals
            yield f'{rng.choice(["", "-"])}{rng.randint(0, 9999)}.{rng.randint(0, 10**17):017d}'
        elif kind == 4:
            yield f'{rng.choice(["", "-"])}{rng.randint(0, 10**6)}'
        else:
            yield f'{rng.randint(1, 9)}.{rng.randint(0, 999)}E{rng.choice(["+", "-", ""])}{rng.randint(0, 300)}'


def usable(text):
    value = abs(float(text))
    return value == 0 or 1e-307 <= value < 1e308


def test_json_numbers_are_correctly_rounded(engine):
    seed = int(os.environ.get('BC_SEED', random.randrange(2**32)))
    print(f'seed {seed} (BC_SEED={seed} repeats this run)')
    rng = random.Random(seed)
    texts = [t for t in random_numbers(rng) if usable(t)]
    texts += ['0', '-0', '0.0', '1', '-1', '0.1', '4.800000000000001', '0.44999999999999996', '1e-307',
              '9.999999999999999e307', '2.2250738585072014e-307', '17976931348623157e291', '9007199254740993',
              '9007199254740992.5', '9007199254740993.000000000000000000000001', '123456789012345678901234567890']
    out = engine.run(module_bytes('json-numbers'), b'', '\n'.join(texts).encode())
    got = struct.unpack(f'<{len(texts)}d', out)
    for text, value in zip(texts, got):
        assert struct.pack('<d', value) == struct.pack('<d', float(text)), f'{text}: {value!r} != {float(text)!r} (seed {seed})'


@pytest.mark.parametrize('text', ['01', '1.', '.5', '1e', '+1', '--1', '1e-400', '1e308', '1' * 41, 'NaN', '0x10', ''])
def test_json_numbers_outside_the_grammar_or_the_limits_are_refused(engine, text):
    with pytest.raises(TaskError) as e:
        engine.run(module_bytes('json-numbers'), b'', text.encode() + b'\n')
    assert e.value.code == 'threw'


# ---- the example of docs/jobs.md ----

def test_the_wat_example_of_the_documentation_is_a_working_task(engine):
    doc = (ROOT / 'docs/jobs.md').read_text()
    section = doc[doc.index('## WebAssembly tasks'):]
    wat = re.search(r'```wat\n(.*?)```', section, re.S).group(1)
    module = engine.compile(wasmtime.wat2wasm(wat))
    assert engine.run(module, b'', b'') == bytes(4)
    assert engine.run(module, b'ignored', bytes([1, 2, 3, 250])) == struct.pack('<I', 256)
    data = bytes(random.Random(7).randbytes(5000))
    assert engine.run(module, b'', data) == struct.pack('<I', sum(data))
