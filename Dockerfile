# driftstream worker image (also runs every other `driftstream` command).
#
#   docker build -t driftstream .
#   docker run -v $PWD/driftstream.yaml:/etc/driftstream/driftstream.yaml driftstream
#
# Build stage: uv installs the locked dependencies (uv.lock, no dev group)
# and driftstream itself into /app/.venv, compiling bytecode once here so
# the container does not compile every module at each start.
FROM python:3.11.14-slim-bookworm AS build
# The uv version the Makefile installs.
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11
WORKDIR /app
# Dependencies first: this layer is reused until pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY README.md ./
COPY monitor ./monitor
COPY schemas ./schemas
COPY alerting ./alerting
# Non-editable: the project goes into the venv, so the venv is all the final stage needs.
RUN uv sync --frozen --no-dev --no-editable

# Final stage: the same Python, the venv, a non-root user; no uv, no sources.
FROM python:3.11.14-slim-bookworm
RUN groupadd --system --gid 10001 driftstream \
    && useradd --system --uid 10001 --gid driftstream --home-dir /var/lib/driftstream \
        --create-home driftstream
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OPENBLAS_NUM_THREADS=1 \
    DRIFTSTREAM_METRICS__HOST=0.0.0.0 \
    DRIFTSTREAM_WORKER__WEB_HOST=0.0.0.0
USER driftstream
# The user's home: where commands that write files (report, reference build) write
# by default. The worker itself writes only to a temporary directory.
WORKDIR /var/lib/driftstream
# worker.web_port (health endpoints) and metrics.port (Prometheus).
EXPOSE 6066 9464
# The worker's /health on worker.web_port (the slim image has no curl).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:6066/health', timeout=4).status != 200)"]
ENTRYPOINT ["driftstream"]
CMD ["run", "--config", "/etc/driftstream/driftstream.yaml"]
