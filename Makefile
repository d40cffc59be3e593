# BrowserCloud. `make run` serves the rendezvous server on :9000; `make test` runs every test.
SWIFT      ?= swift
HOST       ?= 0.0.0.0
PORT       ?= 9000
SERVE_ARGS ?=
PYTHON     ?= python3

.PHONY: deps test-deps build release run test e2e-large bench clean

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --test

build: deps
	$(SWIFT) build --product browsercloud

release: deps
	$(SWIFT) build -c release --product browsercloud

run: release
	.build/release/browsercloud serve --host $(HOST) --port $(PORT) --public Public $(SERVE_ARGS)

test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	BROWSERCLOUD_BIN=$$($(SWIFT) build --show-bin-path)/browsercloud $(PYTHON) -m pytest -q Tests/integration Tests/e2e

# The browser overlay and job scenarios with 20 Chromium peers instead of 8.
e2e-large: test-deps
	$(SWIFT) build --product browsercloud
	E2E_PEERS=20 BROWSERCLOUD_BIN=$$($(SWIFT) build --show-bin-path)/browsercloud $(PYTHON) -m pytest -q Tests/e2e/test_overlay.py Tests/e2e/test_jobs.py

bench: deps
	$(SWIFT) build -c release --product browsercloud
	$(SWIFT) build -c release --product bc-loadgen
	mkdir -p .build && $(CC) -O2 -Wall bench/echo-server.c $$(pkg-config --cflags --libs libwebsockets) -o .build/echo-server
	$(PYTHON) bench/run.py --out docs/benchmarks.md
	$(PYTHON) bench/overlay.py --out docs/overlay.md

clean:
	rm -rf .build
