# driftstream: `make demo` to watch it work; `make test`, `make lint`, `make bench`.
# uv from PATH, else the one `make setup` installs with pip (run as a module,
# so no shell rehash or PATH change is needed).
UV ?= $(shell command -v uv >/dev/null 2>&1 && echo uv || echo "python3 -m uv")

.PHONY: setup demo test lint bench schemas

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
