# driftstream: `make demo` to watch it work; `make test`, `make lint`, `make bench`,
# `make check-operator` (promtool, amtool, kubernetes-validate, stale dashboards), `make dashboards`
# (regenerate grafana/dashboards/ from grafana/generate.py).
# uv from PATH, else the one `make setup` installs with pip (run as a module,
# so no shell rehash or PATH change is needed).
UV ?= $(shell command -v uv >/dev/null 2>&1 && echo uv || echo "python3 -m uv")

.PHONY: setup demo test lint bench schemas check-operator dashboards

setup:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv==0.13.9
	$(UV) sync --frozen --compile-bytecode

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

dashboards: setup
	$(UV) run --frozen python grafana/generate.py

# Operator files as their own tools read them: Prometheus and Alertmanager
# (Debian's prometheus and prometheus-alertmanager packages; .ci/run installs
# them), the Kubernetes manifests against offline API schemas, and the
# dashboards' JSON against their generator. tests/ cross-checks them further.
check-operator: setup
	promtool check config prometheus/prometheus.yml
	promtool check rules prometheus/rules/*.yml
	promtool test rules prometheus/tests/*.yml
	amtool check-config prometheus/alertmanager.yml
	$(UV) run --frozen kubernetes-validate --strict --quiet \
		deploy/k8s/deployment.yaml deploy/k8s/service.yaml deploy/k8s/pdb.yaml \
		deploy/k8s/secret.example.yaml
	$(UV) run --frozen python grafana/generate.py --check
