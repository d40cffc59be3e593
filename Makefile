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

.PHONY: deps test-deps system-test-deps bench-deps build release run test e2e-large bench clean

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

run: release
	.build/release/browsercloud serve --host $(HOST) --port $(PORT) --public Public $(SERVE_ARGS)

test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	BROWSERCLOUD_BIN=$$($(SWIFT) build --show-bin-path)/browsercloud $(VENV_PYTHON) -m pytest -q Tests/integration Tests/e2e

# The browser overlay and job scenarios with 20 Chromium peers instead of 8.
e2e-large: test-deps
	$(SWIFT) build --product browsercloud
	E2E_PEERS=20 BROWSERCLOUD_BIN=$$($(SWIFT) build --show-bin-path)/browsercloud $(VENV_PYTHON) -m pytest -q Tests/e2e/test_overlay.py Tests/e2e/test_jobs.py

bench: deps bench-deps $(BENCH_VENV_STAMP)
	$(SWIFT) build -c release --product browsercloud
	$(SWIFT) build -c release --product bc-loadgen
	$(SWIFT) build -c release --product bc-jsonbench
	$(SWIFT) build -c release --product bc-signbench
	mkdir -p .build && $(CC) -O2 -Wall bench/echo-server.c $$(pkg-config --cflags --libs libwebsockets) -o .build/echo-server
	$(BENCH_VENV_PYTHON) bench/run.py --out docs/benchmarks.md $(BENCH_ARGS)
	$(PYTHON) bench/overlay.py --out docs/overlay.md

clean:
	rm -rf .build
