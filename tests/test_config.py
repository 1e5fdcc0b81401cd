"""driftstream.yaml: loading, environment overrides, and exact errors."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from monitor.config import DriftstreamConfig, load_config
from monitor.errors import DriftstreamError
from monitor.reference import ReferenceProfile
from monitor.stats.decision import Correction, EffectThresholds

EXAMPLE = Path(__file__).parent.parent / "driftstream.example.yaml"


def write(tmp_path: Path, text: str) -> Path:
    """A YAML file holding ``text``."""
    path = tmp_path / "driftstream.yaml"
    path.write_text(text)
    return path


def test_example_file_is_valid_and_gives_model_settings() -> None:
    """The shipped example loads; per-model settings fall back to defaults."""
    config = load_config(EXAMPLE)
    churn = config.window_for("churn")
    assert churn.duration == timedelta(minutes=5)
    assert churn.allowed_lateness == timedelta(seconds=30)
    assert config.window_for("fraud").size_events == 1000
    assert config.policy_for("churn").min_samples == 200
    fraud = config.policy_for("fraud")
    assert fraud.thresholds["psi"] == EffectThresholds(0.2, 0.4)
    assert fraud.thresholds["ks"] == EffectThresholds(0.025, 0.2)
    assert fraud.correction is Correction.BENJAMINI_HOCHBERG
    assert config.broker.embedded


def test_defaults_without_a_file() -> None:
    """No file: every default, the embedded broker, no models."""
    config = load_config(None)
    assert config == DriftstreamConfig()
    assert config.models == {}
    assert config.topics.predictions == "driftstream.predictions"


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DRIFTSTREAM_* variables win over the file, nested with __."""
    path = write(
        tmp_path, "broker: {url: kafka://file:9092}\nmodels: {churn: {task: regression}}\n"
    )
    monkeypatch.setenv("DRIFTSTREAM_BROKER__URL", "kafka://env:9092")
    monkeypatch.setenv("DRIFTSTREAM_DEFAULTS__WINDOW__SIZE_EVENTS", "250")
    config = load_config(path)
    assert config.broker.url == "kafka://env:9092"
    assert config.window_for("churn").size_events == 250
    assert config.models["churn"].task == "regression"


def test_secrets_come_from_the_environment_and_are_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SASL password from the environment is usable but masked in dumps."""
    path = write(
        tmp_path,
        "broker: {url: kafka://k:9093, security_protocol: SASL_SSL,"
        " sasl_mechanism: SCRAM-SHA-512, sasl_username: ds}\n",
    )
    monkeypatch.setenv("DRIFTSTREAM_BROKER__SASL_PASSWORD", "hunter2")
    config = load_config(path)
    assert config.broker.sasl_password is not None
    assert config.broker.sasl_password.get_secret_value() == "hunter2"
    dumped = yaml.safe_dump(config.model_dump(mode="json"))
    assert "hunter2" not in dumped


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "models: {churn: {windw: {size_events: 5}}}",
            "models.churn.windw: Extra inputs are not permitted",
        ),
        ("defaults: {window: {size_events: 10, duration: 5m}}", "set exactly one of size_events"),
        (
            "defaults: {window: {type: sliding, size_events: 100, slide_events: 30}}",
            "slide_events (30) must divide size_events (100)",
        ),
        ("defaults: {window: {duration: five minutes}}", "'five minutes' is not a duration"),
        ("defaults: {drift: {alpha: 2}}", "defaults.drift.alpha: Input should be less than 1"),
        ("defaults: {drift: {thresholds: {kss: {warning: 0.1}}}}", "unknown test(s) kss"),
        ("defaults: {drift: {numeric_tests: [ks, chi2]}}", "unknown test(s) chi2"),
        ("defaults: {drift: {thresholds: {psi: {warning: 0.3, critical: 0.1}}}}", "below warning"),
        (
            "broker: {security_protocol: SASL_SSL}",
            "needs sasl_mechanism, sasl_username, sasl_password",
        ),
        (
            "limits: {max_features: 0}",
            "limits.max_features: Input should be greater than or equal to 1",
        ),
        ("[1, 2]", "the top level must be a mapping"),
        ("models: {churn: [", "not valid YAML (line"),
    ],
)
def test_invalid_configuration_names_the_field_and_why(
    tmp_path: Path, text: str, message: str
) -> None:
    """Each mistake fails at load time with the file, the field and the reason."""
    path = write(tmp_path, text + "\n")
    with pytest.raises(DriftstreamError) as failure:
        load_config(path)
    assert str(failure.value).startswith(f"{path}: ")
    assert message in str(failure.value)
    assert "\n" not in str(failure.value)


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is one clear error."""
    path = tmp_path / "nope.yaml"
    with pytest.raises(DriftstreamError, match=f"^{re.escape(str(path))}: no such file$"):
        load_config(path)


def test_effective_config_round_trips(tmp_path: Path) -> None:
    """check-config's dump reads back as the same configuration."""
    config = load_config(EXAMPLE)
    dumped = write(tmp_path, yaml.safe_dump(config.model_dump(mode="json")))
    assert load_config(dumped) == config


# ------------------------------------------------- environment window kinds


def test_environment_count_window_replaces_the_files_time_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """size_events/slide_events from the environment drop the file's duration and slide."""
    path = write(
        tmp_path,
        "models: {churn: {window: {type: sliding, duration: 5m, slide: 1m, min_samples: 200}}}\n",
    )
    monkeypatch.setenv("DRIFTSTREAM_MODELS__CHURN__WINDOW__SIZE_EVENTS", "5000")
    monkeypatch.setenv("DRIFTSTREAM_MODELS__CHURN__WINDOW__SLIDE_EVENTS", "1000")
    window = load_config(path).window_for("churn")
    assert (window.size_events, window.slide_events) == (5000, 1000)
    assert (window.duration, window.slide) == (None, None)
    assert (window.type, window.min_samples) == ("sliding", 200)


def test_environment_time_window_replaces_the_files_count_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """duration from the environment drops the file's size_events (here in defaults)."""
    path = write(tmp_path, "defaults: {window: {size_events: 500, min_samples: 50}}\n")
    monkeypatch.setenv("DRIFTSTREAM_DEFAULTS__WINDOW__DURATION", "10m")
    window = load_config(path).defaults.window
    assert (window.duration, window.size_events) == (timedelta(minutes=10), None)
    assert window.min_samples == 50


def test_environment_settings_of_a_window_that_are_no_kind_keep_the_files_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """min_samples from the environment leaves the file's duration alone."""
    path = write(tmp_path, "models: {churn: {window: {duration: 5m}}}\n")
    monkeypatch.setenv("DRIFTSTREAM_MODELS__CHURN__WINDOW__MIN_SAMPLES", "7")
    window = load_config(path).window_for("churn")
    assert (window.duration, window.min_samples) == (timedelta(minutes=5), 7)


# ------------------------------------------------- where an error came from


@pytest.mark.parametrize(
    ("text", "environment", "message"),
    [
        (
            "worker: {web_port: 7000}\n",
            {"DRIFTSTREAM_WORKER__WEB_PROT": "1"},
            "environment variable DRIFTSTREAM_WORKER__WEB_PROT: "
            "worker.web_prot: Extra inputs are not permitted",
        ),
        (
            "worker: {web_port: 7000}\n",
            {"DRIFTSTREAM_WORKER__WEB_PORT": "abc"},
            "environment variable DRIFTSTREAM_WORKER__WEB_PORT: worker.web_port: "
            "Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            "worker: {web_prot: 1}\n",
            {"DRIFTSTREAM_WORKER__WEB_PORT": "7000"},
            "{path}: worker.web_prot: Extra inputs are not permitted",
        ),
        (
            "{}\n",
            {"DRIFTSTREAM_WORKER": '{"web_prot": 1}'},
            "environment variable DRIFTSTREAM_WORKER: "
            "worker.web_prot: Extra inputs are not permitted",
        ),
        (
            "defaults: {window: {size_events: 100}}\n",
            {"DRIFTSTREAM_DEFAULTS__WINDOW__SLIDE_EVENTS": "5"},
            "{path} and environment variable DRIFTSTREAM_DEFAULTS__WINDOW__SLIDE_EVENTS: "
            "defaults.window: slide_events is only for sliding windows",
        ),
        (
            "worker: {web_prot: 1, web_hots: h}\n",
            {},
            "{path}: worker.web_prot: Extra inputs are not permitted; "
            "worker.web_hots: Extra inputs are not permitted",
        ),
        (
            "worker: {web_prot: 1}\n",
            {"DRIFTSTREAM_METRICS__PORT": "x", "DRIFTSTREAM_METRICS__HOST": "h"},
            "{path}: worker.web_prot: Extra inputs are not permitted; "
            "environment variable DRIFTSTREAM_METRICS__PORT: metrics.port: "
            "Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            "{}\n",
            {"DRIFTSTREAM_DEFAULTS__DRIFT__NUMERIC_TESTS": "ks"},
            "environment variable DRIFTSTREAM_DEFAULTS__DRIFT__NUMERIC_TESTS: not valid JSON",
        ),
    ],
)
def test_errors_name_the_file_or_the_environment_variable(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    environment: dict[str, str],
    message: str,
) -> None:
    """Each error names where its value came from: the file, the variable, or both."""
    path = write(tmp_path, text)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(DriftstreamError) as failure:
        load_config(path)
    assert str(failure.value).startswith(message.format(path=path))
    assert "\n" not in str(failure.value)


def test_without_a_file_environment_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No file at all: the variable is named (not a file, not "environment")."""
    monkeypatch.setenv("DRIFTSTREAM_LIMITS__MAX_FEATURES", "0")
    with pytest.raises(DriftstreamError) as failure:
        load_config(None)
    assert str(failure.value) == (
        "environment variable DRIFTSTREAM_LIMITS__MAX_FEATURES: "
        "limits.max_features: Input should be greater than or equal to 1"
    )


# ------------------------------------------------------- reference files


def test_configured_references_are_loaded_or_named_with_the_problem(tmp_path: Path) -> None:
    """A good profile loads; a missing file, a CSV or another model's profile is named."""
    profile = ReferenceProfile.from_frame(pd.DataFrame({"x": [1.0, 2.0]}), "churn", "7")
    good = tmp_path / "churn.dsprofile"
    profile.save(good)
    data = tmp_path / "data.csv"
    data.write_text("x\n1\n")
    missing = tmp_path / "missing.dsprofile"

    def load(model: str, reference: Path) -> dict[str, ReferenceProfile]:
        return DriftstreamConfig(models={model: {"reference": reference}}).load_references()

    loaded = load("churn", good)
    assert list(loaded) == ["churn"]
    assert loaded["churn"].model_version == "7"
    for model, reference, problem in [
        ("churn", missing, f"{missing}: no such file"),
        ("churn", data, f"{data}: not a driftstream reference profile"),
        ("fraud", good, f"{good} is a profile of model 'churn', not 'fraud'"),
    ]:
        with pytest.raises(DriftstreamError) as failure:
            load(model, reference)
        assert str(failure.value) == f"models.{model}.reference: {problem}"
