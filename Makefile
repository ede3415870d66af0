# Everything a fresh machine needs: `make run` and `make test` create the
# virtual environment and install the project first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 6379
AOF ?= mini_redis.aof

.PHONY: run test apps bench profile crash-test clean install

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,profile]'
	touch $@

run: install
	$(BIN)/kvserver $(PORT) $(AOF)

test: install
	$(BIN)/python -m pytest -q -m "not apps"

# RQ, Celery, arq and redis.asyncio with real workers, on kvserver and on
# redis-server (tests/test_apps.py): ~25 s, so apart from `make test`.
# arq declares redis-py < 6 but runs on redis-py 8: installed without its deps.
apps: install
	$(BIN)/python -m pip install --quiet --no-deps 'arq>=0.25'
	$(BIN)/python -m pytest -q -m apps tests/test_apps.py

crash-test: install  # many kill -9 trials under appendfsync always
	$(BIN)/python -m tests.crash_harness --trials 50

# kvserver beside redis-server: redis-benchmark and kv-bench loads, one table,
# appended to bench/RESULTS.md with an SVG chart. `make bench BENCH_ARGS=--quick`
# for a short run; `BENCH_ARGS="--c10k"` adds 10,000 connections.
bench: install
	$(BIN)/python bench/compare.py $(BENCH_ARGS)

# Socket fuzzing of both ports beside a model client (tests/fuzz_server.py);
# `make fuzz FUZZ_ARGS="--seconds 600 --seed 7"` to run longer or replay a seed.
.PHONY: fuzz soak
fuzz: install
	$(BIN)/python -m tests.fuzz_server --seconds 120 $(FUZZ_ARGS)

# Minutes of mixed load with expiries and a BGREWRITEAOF, then SIGTERM and a
# restart checked against a model (tests/soak.py); not part of `make test`.
soak: install
	$(BIN)/python -m tests.soak --seconds 300 $(SOAK_ARGS)

profile: install  # both ports: profiling/out/profile-{text,resp}-port.{txt,html}
	$(BIN)/python profiling/profile_server.py --out profiling/out

clean:
	rm -rf $(VENV) build *.egg-info profiling/out
