"""A reference engine for the WebAssembly task ABI (docs/jobs.md, "WebAssembly tasks"), for tests only.

It runs one task the way the design asks every engine to (a fresh instance per task; bc_alloc for the
shared bytes and for the input; bc_run; the output copied out) on wasmtime, an engine independent of
WasmKit and of browsers, and answers with the same error codes: `bad-task` for a module refused before
it runs, `threw` for a trap or a bad pointer, `deadline` when the task's budget runs out (here fuel,
deterministic, instead of a clock).
"""

import os
import subprocess
from pathlib import Path

import wasmtime

ROOT = Path(__file__).resolve().parents[2]
WASM_DIR = Path(os.environ.get('BC_WASM_DIR', ROOT / '.build' / 'wasm'))

MAX_MODULE_BYTES = 8 * 1024 * 1024   # wasmMaxModuleBytes
MAX_MEMORY_PAGES = 256               # wasmMaxMemoryPages (16 MiB)
MAX_OUTPUT_BYTES = 16 * 1024 * 1024
PAGE = 65536


class TaskError(Exception):
    """A task that failed: `code` is one of bad-task, threw, deadline."""

    def __init__(self, code, message):
        super().__init__(f'{code}: {message}')
        self.code = code
        self.message = message


def build_examples():
    """Runs `make wasm` (incremental) so the tests use modules built from the current sources."""
    result = subprocess.run(['make', '-s', 'wasm'], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f'make wasm failed:\n{result.stdout}\n{result.stderr}'
    return WASM_DIR


def module_bytes(name):
    return (WASM_DIR / f'{name}.wasm').read_bytes()


class Engine:
    """Compiles modules once (as a worker caches them) and runs tasks, each in a fresh instance."""

    def __init__(self):
        config = wasmtime.Config()
        config.consume_fuel = True
        self.engine = wasmtime.Engine(config)

    def compile(self, data):
        """The checks made before anything runs; returns a compiled module or raises bad-task."""
        if len(data) > MAX_MODULE_BYTES:
            raise TaskError('bad-task', f'module of {len(data)} bytes is larger than {MAX_MODULE_BYTES}')
        try:
            module = wasmtime.Module(self.engine, bytes(data))
        except wasmtime.WasmtimeError as e:
            raise TaskError('bad-task', f'not a valid module: {e}')
        if module.imports:
            names = ', '.join(f'{i.module}.{i.name}' for i in module.imports)
            raise TaskError('bad-task', f'the module imports {names}')
        exports = {e.name: e.type for e in module.exports}
        memory = exports.get('memory')
        if not isinstance(memory, wasmtime.MemoryType):
            raise TaskError('bad-task', 'the module does not export its memory as "memory"')
        if memory.limits.min > MAX_MEMORY_PAGES:
            raise TaskError('bad-task', f'memory minimum of {memory.limits.min} pages is above {MAX_MEMORY_PAGES}')
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
        wanted = {'bc_alloc': ([i32], [i32]), 'bc_run': ([i32] * 4, [i64])}
        for name, (params, results) in wanted.items():
            t = exports.get(name)
            if not isinstance(t, wasmtime.FuncType) or list(t.params) != params or list(t.results) != results:
                raise TaskError('bad-task', f'the module does not export {name} with the task ABI type')
        return module

    def run(self, module, shared, data, fuel=10**12):
        """Runs one task of `module` (compiled or bytes); returns the output bytes or raises TaskError."""
        if not isinstance(module, wasmtime.Module):
            module = self.compile(module)
        store = wasmtime.Store(self.engine)
        store.set_limits(memory_size=MAX_MEMORY_PAGES * PAGE)
        store.set_fuel(fuel)
        try:
            instance = wasmtime.Instance(store, module, [])
            exports = instance.exports(store)
            memory, alloc, run = exports['memory'], exports['bc_alloc'], exports['bc_run']

            def place(payload, what):
                pointer = alloc(store, len(payload))
                if pointer == 0:
                    raise TaskError('threw', f'bc_alloc returned 0 for the {what} ({len(payload)} bytes)')
                if pointer < 0 or pointer + len(payload) > memory.data_len(store):
                    raise TaskError('threw', f'bc_alloc returned a pointer outside memory for the {what}')
                memory.write(store, payload, pointer)
                return pointer

            shared_ptr = place(shared, 'shared data')
            input_ptr = place(data, 'input')
            packed = run(store, shared_ptr, len(shared), input_ptr, len(data)) & 0xFFFFFFFFFFFFFFFF
            out_ptr, out_len = packed & 0xFFFFFFFF, packed >> 32
            if out_len > MAX_OUTPUT_BYTES:
                raise TaskError('threw', f'output of {out_len} bytes is larger than {MAX_OUTPUT_BYTES}')
            if out_ptr + out_len > memory.data_len(store):
                raise TaskError('threw', f'output pointer {out_ptr} and length {out_len} are outside memory')
            return memory.read(store, out_ptr, out_ptr + out_len)
        except wasmtime.Trap as e:
            if e.trap_code == wasmtime.TrapCode.OUT_OF_FUEL:
                raise TaskError('deadline', 'the task ran out of its budget')
            raise TaskError('threw', e.message)
        except wasmtime.WasmtimeError as e:
            raise TaskError('threw', str(e))
