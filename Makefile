# The two commands: `make demo` runs the demo, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
CHROMIUM ?= /usr/bin/chromium

.PHONY: demo test install browser broker nats lint typecheck pytest serve i18n vendor bench bench-tools clean loc-data \
	test-unit test-api test-integration test-e2e

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/biblioverse demo --host $(HOST) --port $(PORT)

serve: $(STAMP)
	$(BIN)/biblioverse db upgrade
	$(BIN)/biblioverse serve --host $(HOST) --port $(PORT)

# The browser tests drive Debian's Chromium; install it when it is missing.
browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	  else \
	    echo "the browser tests need Debian's chromium: sudo apt-get install chromium fonts-noto-cjk" >&2; exit 1; \
	  fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts migrations
	$(BIN)/ruff format --check src tests bench scripts migrations
	$(BIN)/lint-imports --no-cache

# src/ and tests/ (pyproject.toml), then bench/ on its own: its scripts import each other as
# top-level modules (`import _harness`) while a unit test imports `bench._harness`, and one
# file cannot be two modules in one run.
typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy bench

# The smart-shelf tests publish through a real MQTT broker at 127.0.0.1:1883.
BROKER_UP = $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 1883), 1)" 2>/dev/null

broker: $(STAMP)
	@if ! $(BROKER_UP); then \
	  if ! command -v mosquitto >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's mosquitto for the smart-shelf tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null; \
	  fi; \
	  command -v mosquitto >/dev/null || { echo "the tests need an MQTT broker on 127.0.0.1:1883: sudo apt-get install mosquitto" >&2; exit 1; }; \
	  echo "starting mosquitto on 127.0.0.1:1883"; \
	  if [ -r /etc/mosquitto/mosquitto.conf ]; then mosquitto -d -c /etc/mosquitto/mosquitto.conf; else mosquitto -d; fi; \
	  for _ in 1 2 3 4 5 6 7 8 9 10; do $(BROKER_UP) && break; sleep 1; done; \
	fi

# The several-node tests publish through a real NATS server with JetStream at 127.0.0.1:4222,
# its store under var/ (Debian's nats-server; /usr/sbin is not on every user's PATH).
NATS_UP = $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 4222), 1)" 2>/dev/null
NATS_SERVER ?= $(shell command -v nats-server || echo /usr/sbin/nats-server)

nats: $(STAMP)
	@if ! $(NATS_UP); then \
	  if [ ! -x "$(NATS_SERVER)" ] && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's nats-server for the several-node tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null; \
	  fi; \
	  [ -x "$(NATS_SERVER)" ] || { echo "the tests need NATS with JetStream on 127.0.0.1:4222: sudo apt-get install nats-server" >&2; exit 1; }; \
	  echo "starting nats-server (JetStream) on 127.0.0.1:4222"; \
	  mkdir -p var/nats; \
	  nohup "$(NATS_SERVER)" -a 127.0.0.1 -p 4222 -js -sd "$(CURDIR)/var/nats" -l "$(CURDIR)/var/nats/nats-server.log" >/dev/null 2>&1 & \
	  for _ in 1 2 3 4 5 6 7 8 9 10; do $(NATS_UP) && break; sleep 1; done; \
	fi

pytest: $(STAMP) browser broker nats
	$(BIN)/pytest

# SQLite always; PostgreSQL too when BIBLIOVERSE_TEST_DATABASE_URL names a server.
test: lint typecheck pytest

# One tier at a time, while working on it: rules; the HTTP API and pages; services on a
# real database (and the broker); the browser.
test-unit: $(STAMP)
	$(BIN)/pytest tests/unit
test-api: $(STAMP)
	$(BIN)/pytest tests/api
test-integration: $(STAMP) broker nats
	$(BIN)/pytest tests/integration
test-e2e: $(STAMP) browser
	$(BIN)/pytest tests/e2e

i18n: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k _ -k gettext -k ngettext:1,2 --no-location \
	  --sort-output --project=Biblioverse --version=0.1.0 -o src/biblioverse/locale/messages.pot .
	$(BIN)/python scripts/update_catalogs.py

vendor:
	scripts/vendor.sh

# wrk drives the HTTP load from outside Python, so the server is what gets measured.
bench-tools:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || echo "wrk not installed: bench falls back to Python clients"

bench: $(STAMP) bench-tools nats $(LOC_FILE)
	@for b in bench/[!_]*.py; do [ -e "$$b" ] || continue; $(BIN)/python $$b || exit 1; done

# The 250,000 public-domain Library of Congress records in pymarc's source package, for
# benchmarks and for rebuilding the committed sample (scripts/make_loc_sample.py).
LOC_FILE := var/data/BooksAll.2016.part01.utf8
$(LOC_FILE): $(STAMP)
	mkdir -p var/data
	$(BIN)/pip download --quiet --no-binary :all: --no-deps pymarc==5.4.0 -d var/data
	tar -xzf var/data/pymarc-5.4.0.tar.gz -C var/data --strip-components=1 pymarc-5.4.0/BooksAll.2016.part01.utf8

loc-data: $(LOC_FILE)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache test-artifacts
