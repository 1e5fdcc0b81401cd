"""Drill: fuzzed configuration files and environment values fail cleanly.

Whatever the YAML file or the ``DRIFTSTREAM_*`` variables hold, loading the
configuration either succeeds or raises :class:`DriftstreamError` naming
what is wrong, never another exception; ``check-config`` and ``run`` exit
with code 2 and one ``error:`` line, never a traceback.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from monitor.config import DriftstreamConfig, load_config
from monitor.errors import DriftstreamError
from tests.console import run


def field_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every field of the configuration, nested sections included, as key paths."""
    paths = []
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        paths.append(path)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths.extend(field_paths(annotation, path))
    return paths


PATHS = field_paths(DriftstreamConfig)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "0s", "-1s", "5m", "1e400", "kafka://", "{env: X}", "\x00", "ks"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(max_size=12) | st.sampled_from(["env", "file"]), inner, max_size=4
        )
    ),
    max_leaves=12,
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A configuration mapping with real and made-up keys set to odd values."""
    document: dict[str, Any] = {}
    for path in draw(st.lists(st.sampled_from(PATHS), max_size=6)):
        node = document
        for key in path[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[path[-1]] = draw(VALUES)
    if draw(st.booleans()):
        document[draw(st.text(max_size=10))] = draw(VALUES)
    return document


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set, restored afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def loads_or_explains(path: Path | None) -> None:
    """Load; a failure must be a DriftstreamError with a message (others propagate)."""
    message = None
    try:
        load_config(path)
    except DriftstreamError as error:
        message = str(error)
    assert message is None or message.strip(), "an empty error message"


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(documents())
def test_fuzzed_files_load_or_fail_with_a_reason(document: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "driftstream.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True))
        loads_or_explains(path)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(max_size=200))
def test_arbitrary_text_as_a_file_fails_with_a_reason(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "driftstream.yaml"
        path.write_text(text, errors="surrogatepass")
        loads_or_explains(path)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.dictionaries(
        st.sampled_from([p for p in PATHS if len(p) <= 3]).map(
            lambda path: "DRIFTSTREAM_" + "__".join(part.upper() for part in path)
        ),
        st.text(max_size=40).filter(lambda value: "\x00" not in value),
        min_size=1,
        max_size=4,
    )
)
def test_fuzzed_environment_values_load_or_fail_with_a_reason(values: dict[str, str]) -> None:
    with environment(values):
        loads_or_explains(None)


def test_commands_exit_2_with_one_line_never_a_traceback(tmp_path: Path) -> None:
    bad_file = tmp_path / "bad.yaml"
    bad_file.write_text("worker:\n  web_port: [1, 2]\nwindow: {size_events: -3}\n")
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n")
    cases = [
        (["check-config", str(bad_file)], {}),
        (["check-config", str(empty)], {"DRIFTSTREAM_WORKER__SESSION_TIMEOUT": "soon"}),
        (["check-config", str(empty)], {"DRIFTSTREAM_DEFAULTS__DRIFT__NUMERIC_TESTS": "[ks"}),
        (["run", "--config", str(bad_file)], {}),
        (["run"], {"DRIFTSTREAM_METRICS__PORT": "99999999"}),
    ]
    for arguments, variables in cases:
        done = run(*arguments, environment=variables)
        assert done.returncode == 2, (arguments, variables, done.stderr)
        assert "Traceback" not in done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("error: ")
