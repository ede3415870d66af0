# Everything a fresh machine needs: `make run` and `make test` create the
# virtual environment and install the project first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 6379
AOF ?= mini_redis.aof

.PHONY: run test profile crash-test clean install

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,profile]'
	touch $@

run: install
	$(BIN)/kvserver $(PORT) $(AOF)

test: install
	$(BIN)/python -m pytest -q

crash-test: install  # many kill -9 trials under appendfsync always
	$(BIN)/python -m tests.crash_harness --trials 50

profile: install
	$(BIN)/python profiling/profile_server.py --out profiling/out

clean:
	rm -rf $(VENV) build *.egg-info profiling/out
