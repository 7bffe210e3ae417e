# The two commands of the README: `make run` (set up, then the main job) and `make test` (set up, then the tests).
# Both build .venv from nothing on a fresh machine. Torch comes first, pinned to the CPU wheel this machine has on
# disk: left to a bare requirement, pip would pull a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: run test test-all lint bench clean postgres-server

$(VENV)/.base: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(VENV)/.base
	$(BIN)/pip install --quiet -e '.[dev,export,postgres]'
	touch $@

# The worker tests (tests/test_workers.py) start a throwaway PostgreSQL server: Debian's server package, installed
# here when its initdb is missing (as root, as CI runs; through sudo otherwise). TRENDGYM_SKIP_POSTGRES=1 skips both.
postgres-server:
	@if [ "$$TRENDGYM_SKIP_POSTGRES" != 1 ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	    && ! command -v initdb >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq postgresql; \
	fi

run: $(VENV)/.base
	$(BIN)/python scripts/quickstart.py

test: $(VENV)/.dev postgres-server
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy $(BIN)/pytest

# The default suite and the tests marked slow (long learning runs, pools of members trained from nothing).
test-all: $(VENV)/.dev postgres-server
	SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy $(BIN)/pytest -m "not bench"

lint: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(VENV)/.base
	$(BIN)/python scripts/bench.py ski

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
