"""deploy/k8s (the Kustomize base) agrees with itself and with driftstream, checked offline.

No cluster, kubectl or kustomize here: the manifests are validated against
the Kubernetes API schemas bundled with ``kubernetes-validate``, and the
cross-checks read the raw files as kustomize would combine them: every
listed file exists and no manifest is left out; the ConfigMap's
driftstream.yaml passes driftstream's own validation with the image's and
the Deployment's ``DRIFTSTREAM_*`` variables; ports, probes, Service,
annotations, selectors, the user and the grace period agree with it, with
the Dockerfile and with prometheus/prometheus.yml's Kubernetes example.

Each check is a function of a :class:`Bundle`; ``test_each_check_catches_its_mistake``
breaks values in a copy (at least one per check) and requires the check to fail.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import shlex
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import kubernetes_validate  # type: ignore[import-untyped]  # no type information
import pytest
import yaml

from alerting.secrets import SecretSource
from monitor.config import ENV_NESTED_DELIMITER, ENV_PREFIX, DriftstreamConfig, load_config
from monitor.errors import DriftstreamError
from tests.test_containers import DOCKERFILE, PROMETHEUS_CONFIG, dockerfile_instructions

REPOSITORY = Path(__file__).resolve().parent.parent
K8S = REPOSITORY / "deploy" / "k8s"
COMPONENT = K8S / "components" / "servicemonitor"
OVERLAY = K8S / "overlays" / "example"
#: Files in deploy/k8s that no kustomization lists, on purpose.
UNLISTED = frozenset({"kustomization.yaml", "secret.example.yaml"})
#: Kubernetes versions the manifests must be valid for (oldest supported, newest bundled).
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())
#: What a worker needs after SIGTERM to stop (measured: about 3 s), with room to spare.
WORKER_STOP_SECONDS = 10
#: The scrape job prometheus/rules/ select (and the ServiceMonitor's job label: the Service name).
SCRAPE_JOB = "driftstream"


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@dataclass
class Bundle:
    """The documents the checks read; a test may break a copy of them."""

    kustomization: dict[str, Any]
    deployment: dict[str, Any]
    service: dict[str, Any]
    pdb: dict[str, Any]
    servicemonitor: dict[str, Any]
    secret_example: dict[str, Any]
    overlay_patch: dict[str, Any]
    config: dict[str, Any]
    dockerfile: str
    prometheus: str

    @classmethod
    def load(cls) -> Bundle:
        return cls(
            kustomization=read_yaml(K8S / "kustomization.yaml"),
            deployment=read_yaml(K8S / "deployment.yaml"),
            service=read_yaml(K8S / "service.yaml"),
            pdb=read_yaml(K8S / "pdb.yaml"),
            servicemonitor=read_yaml(COMPONENT / "servicemonitor.yaml"),
            secret_example=read_yaml(K8S / "secret.example.yaml"),
            overlay_patch=read_yaml(OVERLAY / "deployment-patch.yaml"),
            config=read_yaml(K8S / "driftstream.yaml"),
            dockerfile=DOCKERFILE.read_text(),
            prometheus=PROMETHEUS_CONFIG.read_text(),
        )

    @property
    def pod(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.deployment["spec"]["template"]["spec"]
        return spec

    @property
    def pod_labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.deployment["spec"]["template"]["metadata"]["labels"]
        return labels

    @property
    def container(self) -> dict[str, Any]:
        containers: list[dict[str, Any]] = self.pod["containers"]
        assert len(containers) == 1, "one container: the worker"
        return containers[0]

    def container_ports(self) -> dict[str, int]:
        return {port["name"]: port["containerPort"] for port in self.container["ports"]}

    def mounts(self) -> dict[str, dict[str, Any]]:
        """Volume of each mount path."""
        volumes = {volume["name"]: volume for volume in self.pod["volumes"]}
        return {m["mountPath"]: volumes[m["name"]] for m in self.container["volumeMounts"]}

    def environment(self, *, overlay: bool = False) -> dict[str, str]:
        """The container's variables: the image's ENV, the Deployment's, the overlay's."""
        environment = dict(image_environment_of(self.dockerfile))
        containers = [self.container]
        if overlay:
            containers += self.overlay_patch["spec"]["template"]["spec"]["containers"]
        for container in containers:
            for variable in container.get("env", []):
                assert "value" in variable, f"{variable['name']}: not a plain value"
                environment[variable["name"]] = variable["value"]
        return environment

    def effective_config(self, *, overlay: bool = False) -> DriftstreamConfig:
        """``load_config`` of the ConfigMap's file with the container's DRIFTSTREAM_* variables."""
        variables = {
            key: value
            for key, value in self.environment(overlay=overlay).items()
            if key.startswith(ENV_PREFIX)
        }
        with tempfile.TemporaryDirectory() as folder, only_variables(variables):
            path = Path(folder) / "driftstream.yaml"
            path.write_text(yaml.safe_dump(self.config))
            return load_config(path)


def image_environment_of(text: str) -> dict[str, str]:
    """The final stage's ENV (``KEY=VALUE`` pairs)."""
    environment: dict[str, str] = {}
    for keyword, rest in dockerfile_instructions(text):
        if keyword == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                environment[key] = value
    return environment


@contextmanager
def only_variables(variables: dict[str, str]) -> Iterator[None]:
    """The environment without the test run's own DRIFTSTREAM_* variables, plus ``variables``."""
    kept = {k: v for k, v in os.environ.items() if not k.upper().startswith(ENV_PREFIX)}
    with mock.patch.dict(os.environ, {**kept, **variables}, clear=True):
        yield


def final_stage(text: str) -> list[tuple[str, str]]:
    return dockerfile_instructions(text)


def dockerfile_ids(text: str) -> tuple[int, int]:
    """The uid and gid that the final stage's useradd and groupadd give its USER."""
    users = [rest for keyword, rest in final_stage(text) if keyword == "USER"]
    assert users, "the Dockerfile has no USER"
    user = users[-1]
    ids: dict[str, int] = {}
    for keyword, rest in final_stage(text):
        if keyword != "RUN":
            continue
        for command in re.split(r"&&|;", rest):
            words = shlex.split(command)
            if not words or words[-1] != user:
                continue
            for tool, option in (("useradd", "--uid"), ("groupadd", "--gid")):
                if words[0] == tool and option in words:
                    ids[tool] = int(words[words.index(option) + 1])
    assert set(ids) == {"useradd", "groupadd"}, f"no user and group {user} with fixed ids"
    return ids["useradd"], ids["groupadd"]


def kustomize_files(directory: Path) -> tuple[set[Path], set[Path], set[Path]]:
    """Files, directories (resources) and components a kustomization names."""
    document = read_yaml(directory / "kustomization.yaml")
    files: set[Path] = set()
    directories: set[Path] = set()
    for entry in document.get("resources", []):
        path = (directory / entry).resolve()
        (directories if path.is_dir() else files).add(path)
    for entry in document.get("patches", []):
        if "path" in entry:
            files.add((directory / entry["path"]).resolve())
    for generator in [
        *document.get("configMapGenerator", []),
        *document.get("secretGenerator", []),
    ]:
        for entry in generator.get("files", []):
            files.add((directory / entry.rpartition("=")[2]).resolve())
    components = {(directory / entry).resolve() for entry in document.get("components", [])}
    return files, directories, components


def kustomization_directories() -> list[Path]:
    return sorted(path.parent for path in K8S.rglob("kustomization.yaml"))


def configmap_keys(bundle: Bundle) -> dict[str, dict[str, Path]]:
    """Generated ConfigMap name -> key -> file."""
    return {
        generator["name"]: {
            entry.partition("=")[0] if "=" in entry else Path(entry).name: K8S
            / entry.rpartition("=")[2]
            for entry in generator.get("files", [])
        }
        for generator in bundle.kustomization.get("configMapGenerator", [])
    }


def named_port(bundle: Bundle, port: int | str) -> int:
    return bundle.container_ports()[port] if isinstance(port, str) else port


def secret_sources(config: DriftstreamConfig) -> list[tuple[str, SecretSource]]:
    found = []
    for section, sinks in (
        ("slack", config.alerting.slack),
        ("webhooks", config.alerting.webhooks),
    ):
        for index, sink in enumerate(sinks):
            for field, value in sink:
                if isinstance(value, SecretSource):
                    found.append((f"alerting.{section}.{index}.{field}", value))
    return found


def commented_kubernetes_job(prometheus: str) -> dict[str, Any]:
    """The Kubernetes scrape job that prometheus.yml shows in comments."""
    lines = prometheus.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\s*# - job_name: ", line))
    block = []
    for line in lines[start:]:
        if not re.match(r"\s*#", line):
            break
        block.append(re.sub(r"^\s*# ?", "", line))
    jobs = yaml.safe_load("\n".join(block))
    assert isinstance(jobs, list), "a commented job"
    assert len(jobs) == 1, "one commented job"
    job: dict[str, Any] = jobs[0]
    assert "kubernetes_sd_configs" in job
    return job


def meta_label(name: str) -> str:
    """How Prometheus spells a Kubernetes label or annotation name in __meta_* labels."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


# --- the checks ----------------------------------------------------------------


def check_manifests_validate(bundle: Bundle) -> None:
    for document in (bundle.deployment, bundle.service, bundle.pdb, bundle.secret_example):
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(document, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                where = ".".join(map(str, error.path))
                raise AssertionError(
                    f"{document['kind']} ({version}): {where}: {error.message}"
                ) from None


def check_servicemonitor(bundle: Bundle) -> None:
    """No schema for the CRD: its shape, and that it selects the Service's metrics port."""
    monitor = bundle.servicemonitor
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["kind"] == "ServiceMonitor"
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(monitor["spec"]) <= {"selector", "endpoints", "jobLabel", "namespaceSelector"}
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector, "an empty selector matches every Service"
    assert selector.items() <= bundle.service["metadata"]["labels"].items(), selector
    service_ports = {port["name"]: port for port in bundle.service["spec"]["ports"]}
    endpoints = monitor["spec"]["endpoints"]
    assert [endpoint["port"] for endpoint in endpoints] == ["metrics"]
    for endpoint in endpoints:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}, endpoint
        assert endpoint["port"] in service_ports, f"the Service has no port {endpoint['port']}"
        target = named_port(bundle, service_ports[endpoint["port"]]["targetPort"])
        assert target == bundle.effective_config().metrics.port
        assert endpoint.get("path", "/metrics") == "/metrics"
    # no jobLabel: the job is the Service's name
    assert "jobLabel" not in monitor["spec"]
    assert bundle.service["metadata"]["name"] == SCRAPE_JOB


def check_config_is_valid_and_secret_free(bundle: Bundle) -> None:
    for overlay in (False, True):
        config = bundle.effective_config(overlay=overlay)
        assert config.metrics.host == "0.0.0.0"
        assert config.worker.web_host == "0.0.0.0"
        assert config.broker.url.startswith("kafka://"), "a Kafka broker, not the embedded one"
    assert "sasl_password" not in bundle.config.get("broker", {}), "a secret in the ConfigMap"


def check_secrets_come_from_the_secret_volume(bundle: Bundle) -> None:
    config = bundle.effective_config()
    sources = secret_sources(config)
    assert sources, "the configuration reads no secret: make the Secret optional"
    secret_mounts = {
        Path(path): volume for path, volume in bundle.mounts().items() if "secret" in volume
    }
    assert len(secret_mounts) == 1
    ((mount, volume),) = secret_mounts.items()
    assert volume["secret"]["secretName"] == bundle.secret_example["metadata"]["name"]
    # `driftstream run` refuses to start without the secrets it reads
    assert volume["secret"].get("optional") is False
    keys = set(bundle.secret_example["stringData"])
    files = set()
    for field, source in sources:
        assert source.file is not None, f"{field}: {source.describe()}, not the mounted Secret"
        assert source.file.parent == mount, f"{field}: {source.file} is not in {mount}"
        assert source.file.name in keys, f"{field}: secret.example.yaml has no {source.file.name}"
        files.add(source.file.name)
    assert files == keys, f"secret.example.yaml keys nothing reads: {sorted(keys - files)}"
    # with the example Secret mounted, `driftstream run` would find every secret
    with tempfile.TemporaryDirectory() as folder:
        for key, value in bundle.secret_example["stringData"].items():
            (Path(folder) / key).write_text(value)
        moved = yaml.safe_dump(bundle.config).replace(f"{mount}/", f"{folder}/")
        mounted = dataclasses.replace(bundle, config=yaml.safe_load(moved))
        try:
            mounted.effective_config().alerting.check_secrets()
        except ValueError as error:
            raise AssertionError(f"with secret.example.yaml mounted: {error}") from None


def check_command_reads_the_configmap(bundle: Bundle) -> None:
    entrypoint = [
        rest for keyword, rest in final_stage(bundle.dockerfile) if keyword == "ENTRYPOINT"
    ]
    command = [*bundle.container["command"], *bundle.container["args"]]
    assert [yaml.safe_load(entrypoint[-1])[0]] == bundle.container["command"]
    assert command[1] == "run"
    path = Path(command[command.index("--config") + 1])
    volume = bundle.mounts()[str(path.parent)]
    keys = configmap_keys(bundle)
    assert volume["configMap"]["name"] in keys, "the config volume is not the generated ConfigMap"
    key = keys[volume["configMap"]["name"]].get(path.name)
    assert key == K8S / "driftstream.yaml", f"the ConfigMap has no key {path.name}"


def check_ports_and_probes(bundle: Bundle) -> None:
    config = bundle.effective_config()
    ports = bundle.container_ports()
    assert ports == {"web": config.worker.web_port, "metrics": config.metrics.port}
    probes = {
        kind: bundle.container[f"{kind}Probe"]["httpGet"]
        for kind in ("startup", "liveness", "readiness")
    }
    assert {kind: probe["path"] for kind, probe in probes.items()} == {
        "startup": "/health",
        "liveness": "/health",
        "readiness": "/ready",
    }
    for kind, probe in probes.items():
        assert named_port(bundle, probe["port"]) == config.worker.web_port, kind


def check_service_ports(bundle: Bundle) -> None:
    ports = bundle.container_ports()
    service_ports = bundle.service["spec"]["ports"]
    assert {port["name"] for port in service_ports} == set(ports)
    for port in service_ports:
        assert isinstance(port["targetPort"], str), f"{port['name']}: target a port by its name"
        assert port["targetPort"] in ports, f"no container port named {port['targetPort']}"
        assert port["port"] == ports[port["targetPort"]], port


def check_scrape_annotations(bundle: Bundle) -> None:
    metrics = bundle.effective_config().metrics
    assert metrics.enabled
    pod_annotations = bundle.deployment["spec"]["template"]["metadata"]["annotations"]
    for where, found in (
        ("Service", bundle.service["metadata"]["annotations"]),
        ("pod template", pod_annotations),
    ):
        assert found["prometheus.io/scrape"] == "true", where
        assert found["prometheus.io/port"] == str(metrics.port), where
        assert found["prometheus.io/path"] == "/metrics", where


def check_prometheus_example_discovers_the_pods(bundle: Bundle) -> None:
    """prometheus.yml's commented kubernetes_sd job keeps the worker pods, on their port."""
    job = commented_kubernetes_job(bundle.prometheus)
    assert job["job_name"] == SCRAPE_JOB
    assert [sd["role"] for sd in job["kubernetes_sd_configs"]] == ["pod"]
    labels = {
        f"__meta_kubernetes_pod_label_{meta_label(k)}": v for k, v in bundle.pod_labels.items()
    }
    annotations = bundle.deployment["spec"]["template"]["metadata"]["annotations"]
    labels |= {
        f"__meta_kubernetes_pod_annotation_{meta_label(k)}": v for k, v in annotations.items()
    }
    # Pod discovery makes one target per container port; exactly the
    # metrics port's must survive the keep steps.
    kept = []
    for port in bundle.container["ports"]:
        target = labels | {"__meta_kubernetes_pod_container_port_name": port["name"]}
        if all(
            re.fullmatch(step["regex"], ";".join(target.get(n, "") for n in step["source_labels"]))
            for step in job["relabel_configs"]
            if step.get("action") == "keep"
        ):
            kept.append(port["name"])
    assert kept == ["metrics"], f"the example keeps the targets of ports {kept}"
    for step in job["relabel_configs"]:
        for name in step["source_labels"]:
            if name.startswith("__meta_kubernetes_pod_annotation_"):
                assert name in labels, f"the pod template has no annotation for {name}"
    # the annotations the example's comment asks for
    for name, value in re.findall(r"#\s+(prometheus\.io/\w+): \"([^\"]*)\"", bundle.prometheus):
        assert annotations.get(name) == value, f"prometheus.yml asks for {name}: {value}"


def check_selectors_match_the_pods(bundle: Bundle) -> None:
    pods = bundle.pod_labels.items()
    selectors = {
        "Deployment": bundle.deployment["spec"]["selector"]["matchLabels"],
        "Service": bundle.service["spec"]["selector"],
        "PodDisruptionBudget": bundle.pdb["spec"]["selector"]["matchLabels"],
        **{
            f"topologySpreadConstraints {i}": constraint["labelSelector"]["matchLabels"]
            for i, constraint in enumerate(bundle.pod.get("topologySpreadConstraints", []))
        },
    }
    for kind, selector in selectors.items():
        assert selector, f"{kind}: an empty selector"
        assert selector.items() <= pods, f"{kind} selects {selector}, pods have {dict(pods)}"
    common = {k: v for entry in bundle.kustomization["labels"] for k, v in entry["pairs"].items()}
    assert common["app.kubernetes.io/name"] == "driftstream"
    assert common.items() <= pods, "kustomize adds the common labels; write them out as well"
    assert bundle.pdb["spec"]["maxUnavailable"] == 1


def check_security_context(bundle: Bundle) -> None:
    uid, gid = dockerfile_ids(bundle.dockerfile)
    pod = bundle.pod["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == uid, f"the Dockerfile's user has uid {uid}"
    assert pod["runAsGroup"] == gid, f"the Dockerfile's group has gid {gid}"
    assert pod["fsGroup"] == gid
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    container = bundle.container["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["readOnlyRootFilesystem"] is True
    # a read-only root: the worker writes Faust's data folder under the temporary directory
    temporary = bundle.environment().get("TMPDIR", "/tmp")
    assert "emptyDir" in bundle.mounts().get(temporary, {}), f"{temporary} is not writable"
    for path, volume in bundle.mounts().items():
        if "emptyDir" not in volume:
            assert next(m for m in bundle.container["volumeMounts"] if m["mountPath"] == path).get(
                "readOnly"
            ), f"{path}: mount read-only"


def check_environment(bundle: Bundle) -> None:
    """Every DRIFTSTREAM_* variable (image, base, overlay) is a field and takes effect."""
    assert bundle.environment()["OPENBLAS_NUM_THREADS"] == "1"
    for overlay in (False, True):
        config = bundle.effective_config(overlay=overlay).model_dump(mode="json")
        for key, value in bundle.environment(overlay=overlay).items():
            if not key.startswith(ENV_PREFIX):
                continue
            section, *path = key.removeprefix(ENV_PREFIX).lower().split(ENV_NESTED_DELIMITER)
            assert section in config, f"{key}: no section {section} (driftstream ignores it)"
            node: Any = config[section]
            for part in path:
                assert isinstance(node, dict), f"{key}: no such field"
                assert part in node, f"{key}: no such field"
                node = node[part]
            assert str(node) == str(value), f"{key}={value} but {node}"


def check_grace_period(bundle: Bundle) -> None:
    worker = bundle.effective_config().worker
    grace = bundle.pod["terminationGracePeriodSeconds"]
    needed = worker.snapshot_interval.total_seconds() + WORKER_STOP_SECONDS
    assert grace > needed, f"{grace} s: a snapshot and the stop take up to {needed:g} s"


def check_replicas_and_image(bundle: Bundle) -> None:
    replicas = bundle.deployment["spec"]["replicas"]
    assert replicas == 2
    assert replicas <= bundle.effective_config().topics.partitions, "idle workers"
    images = {image["name"]: image for image in bundle.kustomization["images"]}
    assert bundle.container["image"] in images, "kustomization.yaml `images` would not apply"
    version = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]["version"]
    assert images[bundle.container["image"]]["newTag"] == version


CHECKS: dict[str, Callable[[Bundle], None]] = {
    check.__name__.removeprefix("check_"): check
    for check in (
        check_manifests_validate,
        check_servicemonitor,
        check_config_is_valid_and_secret_free,
        check_secrets_come_from_the_secret_volume,
        check_command_reads_the_configmap,
        check_ports_and_probes,
        check_service_ports,
        check_scrape_annotations,
        check_prometheus_example_discovers_the_pods,
        check_selectors_match_the_pods,
        check_security_context,
        check_environment,
        check_grace_period,
        check_replicas_and_image,
    )
}


def _set(*path: str | int, value: Any) -> Callable[[Bundle], None]:
    """A mistake: set ``path`` (attribute, then keys) in a copy of the bundle."""

    def mutate(bundle: Bundle) -> None:
        node: Any = getattr(bundle, str(path[0]))
        for key in path[1:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _container_set(*path: str | int, value: Any) -> Callable[[Bundle], None]:
    def mutate(bundle: Bundle) -> None:
        node: Any = bundle.container
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _add_env(name: str, value: str) -> Callable[[Bundle], None]:
    def mutate(bundle: Bundle) -> None:
        bundle.container["env"].append({"name": name, "value": value})

    return mutate


def _text(attribute: str, old: str, new: str) -> Callable[[Bundle], None]:
    def mutate(bundle: Bundle) -> None:
        text = getattr(bundle, attribute)
        assert old in text, f"{attribute} has no {old!r}"
        setattr(bundle, attribute, text.replace(old, new))

    return mutate


#: One mistake per check (some checks several): each must make its check fail.
MISTAKES: list[tuple[str, str, Callable[[Bundle], None]]] = [
    ("manifests_validate", "typo", _container_set("ports", 0, "containerPrt", value=6066)),
    ("manifests_validate", "bad pdb", _set("pdb", "spec", "maxUnavailable", value=[1])),
    (
        "servicemonitor",
        "port name",
        _set("servicemonitor", "spec", "endpoints", 0, "port", value="web"),
    ),
    (
        "servicemonitor",
        "selector",
        _set(
            "servicemonitor",
            "spec",
            "selector",
            "matchLabels",
            "app.kubernetes.io/component",
            value="api",
        ),
    ),
    ("servicemonitor", "job", _set("service", "metadata", "name", value="workers")),
    (
        "config_is_valid_and_secret_free",
        "unknown field",
        _set("config", "worker", "web_prot", value=1),
    ),
    (
        "config_is_valid_and_secret_free",
        "loopback",  # the file's metrics.host gives way to the image's 0.0.0.0; a variable wins
        _add_env("DRIFTSTREAM_METRICS__HOST", "127.0.0.1"),
    ),
    (
        "config_is_valid_and_secret_free",
        "embedded broker",
        _set("config", "broker", "url", value=""),
    ),
    (
        "config_is_valid_and_secret_free",
        "sasl password",
        _set("config", "broker", "sasl_password", value="x"),
    ),
    (
        "secrets_come_from_the_secret_volume",
        "elsewhere",
        _set("config", "alerting", "slack", 0, "webhook_url", value={"file": "/run/secrets/slack"}),
    ),
    (
        "secrets_come_from_the_secret_volume",
        "env",
        _set("config", "alerting", "webhooks", 0, "secret", value={"env": "RETRAIN_SECRET"}),
    ),
    (
        "secrets_come_from_the_secret_volume",
        "key",
        _set(
            "secret_example", "stringData", value={"slack-webhook-url": "x", "webhook-secrt": "y"}
        ),
    ),
    (
        "secrets_come_from_the_secret_volume",
        "empty",
        _set("secret_example", "stringData", "webhook-secret", value="  "),
    ),
    (
        "secrets_come_from_the_secret_volume",
        "optional",
        _set(
            "deployment", "spec", "template", "spec", "volumes", 1, "secret", "optional", value=True
        ),
    ),
    (
        "command_reads_the_configmap",
        "path",
        _container_set("args", 2, value="/etc/driftstream/config.yaml"),
    ),
    (
        "command_reads_the_configmap",
        "configmap",
        _set(
            "deployment",
            "spec",
            "template",
            "spec",
            "volumes",
            0,
            "configMap",
            "name",
            value="driftstream",
        ),
    ),
    ("ports_and_probes", "port", _set("config", "metrics", "port", value=9465)),
    (
        "ports_and_probes",
        "probe path",
        _container_set("readinessProbe", "httpGet", "path", value="/health"),
    ),
    (
        "ports_and_probes",
        "probe port",
        _container_set("livenessProbe", "httpGet", "port", value="metrics"),
    ),
    ("ports_and_probes", "env port", _add_env("DRIFTSTREAM_WORKER__WEB_PORT", "7000")),
    ("service_ports", "target", _set("service", "spec", "ports", 1, "targetPort", value="metric")),
    ("service_ports", "number", _set("service", "spec", "ports", 1, "targetPort", value=9464)),
    (
        "scrape_annotations",
        "service",
        _set("service", "metadata", "annotations", "prometheus.io/port", value="6066"),
    ),
    (
        "scrape_annotations",
        "pod",
        _set(
            "deployment",
            "spec",
            "template",
            "metadata",
            "annotations",
            "prometheus.io/scrape",
            value="false",
        ),
    ),
    (
        "prometheus_example_discovers_the_pods",
        "label",
        _set(
            "deployment",
            "spec",
            "template",
            "metadata",
            "labels",
            "app.kubernetes.io/name",
            value="drift",
        ),
    ),
    (
        "prometheus_example_discovers_the_pods",
        "annotation",
        _text("prometheus", '"9464"', '"9465"'),
    ),
    (
        "selectors_match_the_pods",
        "service",
        _set("service", "spec", "selector", "app.kubernetes.io/component", value="api"),
    ),
    (
        "selectors_match_the_pods",
        "pdb",
        _set("pdb", "spec", "selector", "matchLabels", "app", value="x"),
    ),
    (
        "selectors_match_the_pods",
        "deployment",
        _set("deployment", "spec", "selector", "matchLabels", "tier", value="x"),
    ),
    (
        "selectors_match_the_pods",
        "common",
        _set("kustomization", "labels", 0, "pairs", "app.kubernetes.io/part-of", value="ml"),
    ),
    ("security_context", "uid", _text("dockerfile", "--uid 10001", "--uid 10002")),
    (
        "security_context",
        "root",
        _set(
            "deployment", "spec", "template", "spec", "securityContext", "runAsNonRoot", value=False
        ),
    ),
    (
        "security_context",
        "writable root",
        _container_set("securityContext", "readOnlyRootFilesystem", value=False),
    ),
    (
        "security_context",
        "no /tmp",
        _container_set("volumeMounts", 2, "mountPath", value="/scratch"),
    ),
    ("security_context", "tmpdir", _add_env("TMPDIR", "/var/lib/driftstream")),
    ("environment", "unknown section", _add_env("DRIFTSTREAM_WORKERS__GROUP_ID", "x")),
    ("environment", "openblas", _container_set("env", 0, "value", value="4")),
    (
        "environment",
        "overlay",
        _set(
            "overlay_patch",
            "spec",
            "template",
            "spec",
            "containers",
            0,
            "env",
            0,
            "name",
            value="DRIFTSTREAM_BROKER_URL",
        ),
    ),
    (
        "grace_period",
        "short",
        _set("deployment", "spec", "template", "spec", "terminationGracePeriodSeconds", value=10),
    ),
    ("grace_period", "slow snapshots", _set("config", "worker", "snapshot_interval", value="30s")),
    ("replicas_and_image", "replicas", _set("deployment", "spec", "replicas", value=7)),
    ("replicas_and_image", "partitions", _set("config", "topics", "partitions", value=1)),
    ("replicas_and_image", "image", _container_set("image", value="ghcr.io/x/driftstream")),
    ("replicas_and_image", "tag", _set("kustomization", "images", 0, "newTag", value="latest")),
]


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return Bundle.load()


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_check_passes(bundle: Bundle, name: str) -> None:
    CHECKS[name](copy.deepcopy(bundle))


@pytest.mark.parametrize(
    ("name", "mistake"),
    [pytest.param(name, mistake, id=f"{name}-{label}") for name, label, mistake in MISTAKES],
)
def test_each_check_catches_its_mistake(
    bundle: Bundle, name: str, mistake: Callable[[Bundle], None]
) -> None:
    broken = copy.deepcopy(bundle)
    mistake(broken)
    with pytest.raises((AssertionError, DriftstreamError)):
        CHECKS[name](broken)


def test_every_check_has_a_mistake() -> None:
    assert {name for name, _, _ in MISTAKES} == set(CHECKS)


def test_every_listed_file_exists_and_none_is_orphaned() -> None:
    directories = kustomization_directories()
    assert directories == sorted([K8S, COMPONENT, OVERLAY])
    listed: set[Path] = set()
    for directory in directories:
        document = read_yaml(directory / "kustomization.yaml")
        files, resources, components = kustomize_files(directory)
        for path in files:
            assert path.is_file(), f"{directory}: {path} does not exist"
        for path in resources:
            assert (path / "kustomization.yaml").is_file(), (
                f"{directory}: {path} is no kustomization"
            )
        for path in components:
            kind = read_yaml(path / "kustomization.yaml")["kind"]
            assert kind == "Component", f"{directory}: {path} is a {kind}, not a Component"
        expected = "Component" if directory == COMPONENT else "Kustomization"
        assert document["kind"] == expected, directory
        listed |= files
    for path in K8S.rglob("*.y*ml"):
        if path.name in UNLISTED:
            continue
        assert path.resolve() in listed, f"{path.relative_to(REPOSITORY)} is in no kustomization"
    base_files, base_resources, base_components = kustomize_files(K8S)
    # optional on purpose: clusters without the Prometheus operator reject the CRD
    assert not base_components
    assert not base_resources
    assert K8S / "secret.example.yaml" not in base_files
    assert kustomize_files(OVERLAY)[2] == {COMPONENT}


def test_the_readme_names_every_file() -> None:
    readme = (K8S / "README.md").read_text()
    for path in K8S.rglob("*"):
        if not path.is_file() or path.name == "README.md":
            continue
        parts = path.relative_to(K8S).parts
        name = f"`{parts[0]}`" if len(parts) == 1 else f"`{parts[0]}/{parts[1]}/`"
        assert name in readme, f"deploy/k8s/README.md does not describe {name}"
