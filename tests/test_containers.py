"""The container files agree with each other and with driftstream, checked statically.

No container engine runs here: Debian's ``docker-compose`` (1.29) validates
docker-compose.yml against the compose schema offline, and prints it
resolved (anchors merged, host paths absolute), which the cross-checks read:
mounted host files exist, ``DRIFTSTREAM_*`` variables are configuration
fields, ports and paths agree between the Dockerfile, the compose file, the
mounted configuration and prometheus/prometheus.yml.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.console import run

REPOSITORY = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPOSITORY / "docker-compose.yml"
DOCKERFILE = REPOSITORY / "Dockerfile"
PROMETHEUS_CONFIG = REPOSITORY / "prometheus" / "prometheus.yml"
#: Services running the driftstream image, and the workers among them.
IMAGE_PREFIX = "driftstream:"
WORKERS = ("driftstream-worker-1", "driftstream-worker-2")


def docker_compose(
    *args: str, compose_file: Path = COMPOSE_FILE
) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    assert binary is not None, (
        "docker-compose is not installed: `apt-get install -y docker-compose` "
        "(Debian's 1.29 validates compose files with no container engine)"
    )
    return subprocess.run(
        [binary, "-f", str(compose_file), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=compose_file.parent,
    )


@cache
def compose() -> dict[str, Any]:
    """docker-compose.yml as docker-compose resolves it."""
    done = docker_compose("config")
    assert done.returncode == 0, done.stderr
    resolved: dict[str, Any] = yaml.safe_load(done.stdout)
    return resolved


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def driftstream_services() -> dict[str, Any]:
    return {
        name: service
        for name, service in services().items()
        if str(service.get("image", "")).startswith(IMAGE_PREFIX)
    }


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final stage, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    instructions: list[tuple[str, str]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            instructions.clear()  # a new stage: only the last one is the image
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKERFILE.read_text())


def image_environment() -> dict[str, str]:
    """The final stage's ENV (``KEY=VALUE`` pairs)."""
    environment: dict[str, str] = {}
    for keyword, rest in dockerfile():
        if keyword == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                environment[key] = value
    return environment


def image_cmd() -> list[str]:
    commands = [json.loads(rest) for keyword, rest in dockerfile() if keyword == "CMD"]
    assert commands, "the Dockerfile has no CMD"
    cmd: list[str] = commands[-1]
    return cmd


def config_path(command: list[str]) -> str:
    assert "--config" in command, f"no --config in {command}"
    return command[command.index("--config") + 1]


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts."""
    mounts: dict[str, Path] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        if source.startswith("/"):
            mounts[target] = Path(source)
    return mounts


def effective_config(name: str) -> dict[str, Any]:
    """`driftstream check-config` of a service's mounted file with its environment."""
    service = driftstream_services()[name]
    command = service.get("command") or image_cmd()
    path = config_path(command)
    mounts = bind_mounts(service)
    assert path in mounts, f"{name}: its configuration {path} is not mounted"
    environment = {**image_environment(), **(service.get("environment") or {})}
    done = run(
        "check-config",
        mounts[path],
        environment={k: str(v) for k, v in environment.items() if k.startswith("DRIFTSTREAM_")},
    )
    assert done.returncode == 0, f"{name}: {done.stderr}"
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def test_compose_file_is_valid() -> None:
    done = docker_compose("config", "-q")
    assert done.returncode == 0, done.stderr
    assert "version" not in yaml.safe_load(COMPOSE_FILE.read_text())


def test_the_validation_catches_a_bad_key(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE_FILE.read_text().replace("    image: apache/kafka", "    imagee: apache/kafka")
    )
    done = docker_compose("config", "-q", compose_file=broken)
    assert done.returncode != 0
    assert "imagee" in done.stderr


def test_every_image_is_pinned() -> None:
    for name, service in services().items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: {image} has no tag"
        assert "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image}"
    for keyword, rest in dockerfile_instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            image = rest.split()[0]
            assert re.search(r":\d+\.\d+\.\d+", image), f"Dockerfile: FROM {image} is not pinned"


def test_every_mounted_host_path_exists_in_the_repository() -> None:
    for name, service in services().items():
        for target, source in bind_mounts(service).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) does not exist"
            assert source.is_relative_to(REPOSITORY), f"{name}: {source} is outside the repo"


def test_every_driftstream_variable_is_a_configuration_field() -> None:
    """check-config fails naming an unknown DRIFTSTREAM_* field; each service's are set."""
    assert set(driftstream_services()) >= set(WORKERS)
    for name, service in driftstream_services().items():
        config = effective_config(name)
        environment = {**image_environment(), **(service.get("environment") or {})}
        for key, value in environment.items():
            if not key.startswith("DRIFTSTREAM_"):
                continue
            section, *path = key.removeprefix("DRIFTSTREAM_").lower().split("__")
            node: Any = config[section]
            for part in path:
                node = node[part]
            assert str(node) == str(value), f"{name}: {key}={value} but {node}"


def test_workers_listen_on_every_interface_and_join_one_group_on_kafka() -> None:
    configs = [effective_config(name) for name in WORKERS]
    for name, config in zip(WORKERS, configs, strict=True):
        assert config["metrics"]["host"] == "0.0.0.0", name
        assert config["worker"]["web_host"] == "0.0.0.0", name
        assert config["broker"]["url"] == "kafka://kafka:9092", name
    assert len({config["worker"]["group_id"] for config in configs}) == 1
    kafka = services()["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "PLAINTEXT://kafka:9092" in kafka.split(",")


def test_prometheus_scrapes_every_worker_on_its_metrics_port() -> None:
    document = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = {
        target
        for job in document["scrape_configs"]
        if job["job_name"] == "driftstream"
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    expected = {f"{name}:{effective_config(name)['metrics']['port']}" for name in WORKERS}
    assert targets == expected
    for target in document["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]:
        host, _, port = target.partition(":")
        assert host in services(), f"prometheus.yml sends alerts to {target}: no such service"
        # Alertmanager listens on 9093 unless --web.listen-address says otherwise
        assert port == "9093", target
        assert not any("--web.listen-address" in a for a in services()[host].get("command", []))


def test_prometheus_mounts_its_configuration_and_rules_where_it_reads_them() -> None:
    prometheus = services()["prometheus"]
    mounts = bind_mounts(prometheus)
    config_flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    config_file = config_flag.partition("=")[2]
    assert mounts[config_file] == PROMETHEUS_CONFIG
    folder = Path(config_file).parent
    for rule_file in yaml.safe_load(PROMETHEUS_CONFIG.read_text()).get("rule_files", []):
        inside = folder / rule_file
        mounted = [t for t in mounts if inside.is_relative_to(t)]
        assert mounted, f"{inside} is in no mounted folder"
        host = mounts[mounted[0]] / inside.relative_to(mounted[0])
        assert host.is_file(), f"{rule_file}: {host} does not exist"


def test_image_healthcheck_asks_the_worker_web_port() -> None:
    healthchecks = [rest for keyword, rest in dockerfile() if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    ports = re.findall(r"http://127\.0\.0\.1:(\d+)/health\b", healthchecks[0])
    assert len(ports) == 1, healthchecks[0]
    for name in WORKERS:
        assert "healthcheck" not in services()[name], f"{name} replaces the image's healthcheck"
        assert int(ports[0]) == effective_config(name)["worker"]["web_port"], name


def test_image_command_reads_the_mounted_configuration() -> None:
    entrypoint = [json.loads(rest) for keyword, rest in dockerfile() if keyword == "ENTRYPOINT"]
    assert entrypoint == [["driftstream"]]
    path = config_path(image_cmd())
    for name in WORKERS:
        service = services()[name]
        assert not service.get("command"), f"{name}: the workers run the image's CMD"
        assert path in bind_mounts(service), f"{name}: {path} is not mounted"
    for name, service in driftstream_services().items():
        command = service.get("command") or image_cmd()
        assert config_path(command) in bind_mounts(service), name


def test_start_up_order_needs_no_manual_step() -> None:
    depends = {name: service.get("depends_on", {}) for name, service in services().items()}
    assert depends["driftstream-topics"] == {"kafka": {"condition": "service_healthy"}}
    for name in WORKERS:
        assert depends[name] == {
            "driftstream-topics": {"condition": "service_completed_successfully"}
        }
    assert depends["driftstream-simulate"] == {
        name: {"condition": "service_healthy"} for name in WORKERS
    }
    # every service depended on as healthy has a health check
    for name, needs in depends.items():
        for other, condition in needs.items():
            if condition["condition"] == "service_healthy":
                check = services()[other].get("healthcheck", {})
                image_has_one = other in driftstream_services()
                assert check.get("test") != ["NONE"], f"{name} waits for {other}: no healthcheck"
                assert check or image_has_one, f"{name} waits for {other}: no healthcheck"
    topics = services()["driftstream-topics"]["command"]
    assert topics[:2] == ["topics", "create"]
    simulate = services()["driftstream-simulate"]["command"]
    assert simulate[0] == "simulate"
    assert "--publish-references" in simulate
