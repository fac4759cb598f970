# wg-endpointd developer entry points. `make demo` and `make test` set up everything they need.
PY := PYTHONPATH=src:. .venv/bin/python

.PHONY: setup test unit lint demo bench ipk apk feed deb clean

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
	$(PY) -m bench.scenarios
	$(PY) -m bench.daemon
	$(PY) -m bench.silent
	$(PY) -m bench.groups
	$(PY) -m bench.hostile
	$(PY) -m bench.linux_host
	$(PY) bench/hotplug_bench.py

# OpenWrt packages without the SDK: .ipk (24.10, opkg), .apk (25.12, apk), and a
# feed folder with both plus their indexes (docs/install-openwrt.md).
ipk: setup
	$(PY) scripts/build_ipk.py --out dist

apk: setup
	$(PY) scripts/build_apk.py --out dist

feed: setup
	$(PY) scripts/build_feed.py --out dist/feed

# Debian/Ubuntu .deb without dpkg-buildpackage (docs/linux-service.md).
deb: setup
	$(PY) scripts/build_deb.py --out dist

clean:
	rm -rf dist build .pytest_cache .mypy_cache .ruff_cache
