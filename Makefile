# Attain: `make demo` runs the app on generated data, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
SAMPLE ?=
# Extra arguments for pytest, for example PYTEST_ARGS="-k import -x".
PYTEST_ARGS ?=

.PHONY: install demo test lint bench clean worker

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

# Links in emails that the demo's tasks send point at the demo's own port.
demo: export ATTAIN_BASE_URL = http://127.0.0.1:$(PORT)
demo: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py demo --url http://127.0.0.1:$(PORT) $(if $(SAMPLE),--sample "$(SAMPLE)")
	DEBUG=1 $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/run.py

# Coaching rule evaluation for a tenant of 200 reps (bench/coaching.py).
.PHONY: bench-coaching
bench-coaching: install
	$(BIN)/python bench/coaching.py

# Commission calculation for 10,000 reps and 1,000,000 credits, in a database
# the script creates and drops (bench/compensation.py).
.PHONY: bench-compensation
bench-compensation: install
	$(BIN)/python bench/compensation.py

# Lead routing latency at 50, 100 and 200 leads/s (bench/routing.py). It
# starts its own PostgreSQL, Redis, gunicorn and Celery worker on loopback.
.PHONY: bench-routing
bench-routing: install
	$(BIN)/python bench/routing.py

# The same harness around a minimal Django view and Celery task that only
# commit one row each (bench/routing_floor.py): what the stack itself costs.
.PHONY: bench-routing-floor
bench-routing-floor: install
	$(BIN)/python bench/routing_floor.py

# CPU time per lead of intake and routing, in one process
# (bench/routing_cpu.py). It prints its results.
.PHONY: bench-routing-cpu
bench-routing-cpu: install
	$(BIN)/python bench/routing_cpu.py

# A full CRM sync of 100,000 records from the fake HubSpot on loopback
# (bench/sync.py), against the fake's own serving rate.
.PHONY: bench-sync
bench-sync: install
	$(BIN)/python bench/sync.py

clean:
	rm -rf $(VENV) attain.sqlite3 staticfiles

worker: install
	$(BIN)/celery -A spm worker --loglevel=info -Q default,routing,sync,calc
