# BrowserCloud. `make run` serves the rendezvous server on :9000; `make test` runs every test.
SWIFT      ?= swift
HOST       ?= 0.0.0.0
PORT       ?= 9000
SERVE_ARGS ?=
PYTHON     ?= python3
# Extra options of bench/run.py, e.g. BENCH_ARGS="--baseline OTHER/.build/release" (section 8 side by side).
BENCH_ARGS ?=
# The Python test packages live in a virtual environment made with $(PYTHON), never in the system's
# or the user's Python; they are (re)installed when Tests/requirements.txt differs from the copy kept
# in the environment. The browser tests drive Debian's Chromium (Tests/e2e/overlay.py), never a
# browser Playwright downloads.
VENV        := .build/venv
VENV_PYTHON := $(VENV)/bin/python
VENV_STAMP  := $(VENV)/requirements.installed
# The benchmark's Python packages (matplotlib for the plots, websockets for the Python competitor relay)
# live in their own virtual environment, (re)installed when bench/requirements.txt changes.
BENCH_VENV        := .build/bench-venv
BENCH_VENV_PYTHON := $(BENCH_VENV)/bin/python
BENCH_VENV_STAMP  := $(BENCH_VENV)/requirements.installed

# The WebAssembly example modules (examples/wasm, docs/jobs.md "WebAssembly tasks") are built with the
# Swift toolchain's clang and wasm-ld: no libc, MVP instructions only (every engine runs them), and
# never a fused multiply-add (-ffp-contract=off; the ray tracer's bytes depend on it).
WASM_CC      ?= $(shell d=$$(dirname "$$(command -v $(SWIFT))" 2>/dev/null); if [ -x "$$d/clang" ]; then echo "$$d/clang"; else echo /opt/swift/usr/bin/clang; fi)
WASM_CFLAGS  := --target=wasm32 -mcpu=mvp -nostdlib -ffreestanding -O2 -ffp-contract=off -Wall -Wextra -Werror
WASM_LDFLAGS := -Wl,--no-entry -Wl,-z,stack-size=65536
WASM_DIR     := .build/wasm
WASM_SRC     := examples/wasm
WASM_MODULES := raytracer mandelbrot trap endless memory-hog big-memory with-import json-numbers

.PHONY: deps test-deps system-test-deps bench-deps build release run test wasm e2e-large bench clean

deps:
	@scripts/install-deps.sh

test-deps: system-test-deps $(VENV_STAMP)

system-test-deps:
	@scripts/install-deps.sh --test

$(VENV_PYTHON): | system-test-deps
	$(PYTHON) -m venv $(VENV)

$(VENV_STAMP): Tests/requirements.txt $(VENV_PYTHON)
	@if cmp -s Tests/requirements.txt $@; then touch $@; else \
	    echo "installing Python test packages into $(VENV)"; \
	    $(VENV_PYTHON) -m pip install -q -r Tests/requirements.txt && cp Tests/requirements.txt $@; \
	fi

# What `make bench` needs beyond the build: Node's ws (the Node competitor relay), python3-venv.
bench-deps:
	@scripts/install-deps.sh --bench

$(BENCH_VENV_PYTHON): | bench-deps
	$(PYTHON) -m venv $(BENCH_VENV)

$(BENCH_VENV_STAMP): bench/requirements.txt $(BENCH_VENV_PYTHON)
	@if cmp -s bench/requirements.txt $@; then touch $@; else \
	    echo "installing Python bench packages into $(BENCH_VENV)"; \
	    $(BENCH_VENV_PYTHON) -m pip install -q -r bench/requirements.txt && cp bench/requirements.txt $@; \
	fi

build: deps
	$(SWIFT) build --product browsercloud

release: deps
	$(SWIFT) build -c release --product browsercloud

run: release wasm
	.build/release/browsercloud serve --host $(HOST) --port $(PORT) --public Public $(SERVE_ARGS)

test: test-deps wasm
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	BROWSERCLOUD_BIN=$$($(SWIFT) build --show-bin-path)/browsercloud $(VENV_PYTHON) -m pytest -q Tests/integration Tests/e2e

# The server serves Public/ only: the volunteer page's WebAssembly renders fetch /wasm/raytracer.wasm
# (a git-ignored copy).
wasm: $(WASM_MODULES:%=$(WASM_DIR)/%.wasm) Public/wasm/raytracer.wasm

Public/wasm/raytracer.wasm: $(WASM_DIR)/raytracer.wasm
	@mkdir -p Public/wasm
	cp $< $@

$(WASM_DIR)/raytracer.wasm $(WASM_DIR)/json-numbers.wasm: $(WASM_SRC)/json.c $(WASM_SRC)/json.h
# big-memory declares a memory minimum of 300 pages, above the engines' limit of 256.
$(WASM_DIR)/big-memory.wasm: WASM_EXTRA := -Wl,--initial-memory=19660800
# with-import imports env.bc_log, which nothing defines: the linker must keep it as an import.
$(WASM_DIR)/with-import.wasm: WASM_EXTRA := -Wl,--allow-undefined

$(WASM_DIR)/%.wasm: $(WASM_SRC)/%.c $(WASM_SRC)/task.c $(WASM_SRC)/task.h
	@mkdir -p $(WASM_DIR)
	$(WASM_CC) $(WASM_CFLAGS) $(WASM_LDFLAGS) $(WASM_EXTRA) -o $@ $(filter %.c,$^)

# The browser overlay and job scenarios with 20 Chromium peers instead of 8.
e2e-large: test-deps
	$(SWIFT) build --product browsercloud
	E2E_PEERS=20 BROWSERCLOUD_BIN=$$($(SWIFT) build --show-bin-path)/browsercloud $(VENV_PYTHON) -m pytest -q Tests/e2e/test_overlay.py Tests/e2e/test_jobs.py

# Sections 11 and 12 (WebAssembly, jobs in real browsers) drive Chromium and need root (a network
# namespace); BENCH_ARGS=--no-browsers leaves them out. bench/run.py and the plots run in $(BENCH_VENV).
bench: deps test-deps bench-deps wasm $(BENCH_VENV_STAMP)
	$(SWIFT) build -c release --product browsercloud
	$(SWIFT) build -c release --product bc-loadgen
	$(SWIFT) build -c release --product bc-jsonbench
	$(SWIFT) build -c release --product bc-signbench
	$(SWIFT) build -c release --product bc-wasmbench
	mkdir -p .build && $(CC) -O2 -Wall bench/echo-server.c $$(pkg-config --cflags --libs libwebsockets) -o .build/echo-server
	$(BENCH_VENV_PYTHON) bench/run.py --out docs/benchmarks.md $(BENCH_ARGS)
	$(PYTHON) bench/overlay.py --out docs/overlay.md
	$(BENCH_VENV_PYTHON) bench/plots.py

clean:
	rm -rf .build
