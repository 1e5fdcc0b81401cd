# driftstream: `make demo` to watch it work; `make test`, `make lint`, `make bench`,
# `make check-operator` (promtool and amtool on prometheus/).
# uv from PATH, else the one `make setup` installs with pip (run as a module,
# so no shell rehash or PATH change is needed).
UV ?= $(shell command -v uv >/dev/null 2>&1 && echo uv || echo "python3 -m uv")

.PHONY: setup demo test lint bench schemas check-operator

setup:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv==0.13.9
	$(UV) sync --frozen

demo: setup
	$(UV) run --frozen driftstream demo

test: setup
	$(UV) run --frozen pytest

lint: setup
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy

bench: setup
	$(UV) run --frozen python -m benchmarks

schemas: setup
	$(UV) run --frozen python -m schemas.json_schema

# Prometheus and Alertmanager files as their own tools read them (Debian's
# prometheus and prometheus-alertmanager packages; .ci/run installs them).
check-operator:
	promtool check config prometheus/prometheus.yml
	promtool check rules prometheus/rules/*.yml
	promtool test rules prometheus/tests/*.yml
	amtool check-config prometheus/alertmanager.yml
