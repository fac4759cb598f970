# wg-endpointd developer entry points. `make demo` and `make test` set up everything they need.
PY := PYTHONPATH=src:. .venv/bin/python

.PHONY: setup test unit lint demo bench ipk clean

setup:
	sh scripts/setup.sh

test: setup lint
	$(PY) -m pytest -q

unit: setup
	$(PY) -m pytest -q -m "not lab"

lint: setup
	$(PY) -m ruff check src tests bench scripts
	$(PY) -m mypy

demo: setup
	$(PY) scripts/demo.py

bench: setup
	$(PY) -m bench.round
	$(PY) -m bench.daemon
	$(PY) bench/hotplug_bench.py

ipk: setup
	$(PY) scripts/build_ipk.py --out dist

clean:
	rm -rf dist build .pytest_cache .mypy_cache .ruff_cache
