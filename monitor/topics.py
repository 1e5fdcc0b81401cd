"""driftstream's Kafka topics: what each one is, and creating the missing ones.

Six topics, named in ``topics:`` of the configuration:

============  ==========================  ==========================
role          partitions                  cleanup.policy
============  ==========================  ==========================
predictions   ``topics.partitions``       delete
labels        ``topics.partitions``       delete
state         ``topics.partitions``       compact
results       ``topics.partitions``       compact
deadletter    ``topics.partitions``       delete
references    1                           compact
============  ==========================  ==========================

Results, state and references are compacted: their keys are idempotent
(see :mod:`schemas.outputs`), so the latest record per key is all that
matters. Topics that carry whole messages of the event contract (and the
dead letters that wrap them, base64) allow messages of
:data:`INPUT_MESSAGE_BYTES`, and the references topic whole profiles of up
to :data:`REFERENCE_MESSAGE_BYTES`; Kafka's own default is 1 MiB.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from monitor.config import TopicsConfig
from monitor.errors import DriftstreamError
from schemas.decoding import MAX_MESSAGE_BYTES

TopicRole = Literal[
    "predictions",
    "labels",
    "state",
    "results",
    "deadletter",
    "references",
    "alerts",
    "alert_deadletter",
]
#: Every role, in creation order.
TOPIC_ROLES: tuple[TopicRole, ...] = get_args(TopicRole)
#: Largest record on the input and dead-letter topics: a contract message of
#: the decoder's largest size, base64-encoded inside a dead letter, with room
#: to spare.
INPUT_MESSAGE_BYTES = 2 * MAX_MESSAGE_BYTES
#: Largest reference profile the references topic accepts.
REFERENCE_MESSAGE_BYTES = 64 * 1024 * 1024
COMPACTED = frozenset({"state", "results", "references"})


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How one driftstream topic is created."""

    role: TopicRole
    name: str
    partitions: int
    configs: Mapping[str, str] = field(default_factory=dict)


def topic_specs(
    topics: TopicsConfig, roles: Collection[TopicRole] | None = None
) -> list[TopicSpec]:
    """The topics of ``roles`` (default: all of them) as configured.

    Examples
    --------
    >>> for spec in topic_specs(TopicsConfig(partitions=2)):
    ...     print(spec.name, spec.partitions, spec.configs["cleanup.policy"])
    driftstream.predictions 2 delete
    driftstream.labels 2 delete
    driftstream.state 2 compact
    driftstream.results 2 compact
    driftstream.deadletter 2 delete
    driftstream.references 1 compact
    driftstream.alerts 2 delete
    driftstream.alerts.deadletter 2 delete
    """
    unknown = sorted(set(roles or ()) - set(TOPIC_ROLES))
    if unknown:
        raise ValueError(f"unknown topic role(s) {', '.join(unknown)}")
    specs = []
    for role in TOPIC_ROLES:
        if roles is not None and role not in roles:
            continue
        configs = {"cleanup.policy": "compact" if role in COMPACTED else "delete"}
        if role in ("predictions", "labels", "deadletter"):
            configs["max.message.bytes"] = str(INPUT_MESSAGE_BYTES)
        elif role == "references":
            configs["max.message.bytes"] = str(REFERENCE_MESSAGE_BYTES)
        partitions = 1 if role == "references" else topics.partitions
        specs.append(TopicSpec(role, getattr(topics, role), partitions, configs))
    return specs


@contextmanager
def broker_errors(bootstrap_servers: str) -> Iterator[None]:
    """Turn Kafka client errors into a one-line :class:`DriftstreamError`.

    Examples
    --------
    >>> from kafka.errors import KafkaTimeoutError
    >>> try:
    ...     with broker_errors("k:9092"):
    ...         raise KafkaTimeoutError("Unable to bootstrap from k:9092")
    ... except DriftstreamError as error:
    ...     print(error)
    broker k:9092: KafkaTimeoutError: Unable to bootstrap from k:9092
    """
    try:
        yield
    except KafkaError as error:
        raise DriftstreamError(f"broker {bootstrap_servers}: {error}") from None


def admin_client(
    bootstrap_servers: str, client_options: Mapping[str, Any], timeout: float = 30.0
) -> KafkaAdminClient:
    """A Kafka admin client that gives up after ``timeout`` seconds (close it after use)."""
    timeout_ms = int(timeout * 1000)
    with broker_errors(bootstrap_servers):
        return KafkaAdminClient(
            bootstrap_servers=bootstrap_servers,
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
            **client_options,
        )


def existing_topics(
    bootstrap_servers: str, client_options: Mapping[str, Any], timeout: float = 30.0
) -> set[str]:
    """Names of the topics on the broker (asking does not create any)."""
    admin = admin_client(bootstrap_servers, client_options, timeout)
    try:
        with broker_errors(bootstrap_servers):
            return set(admin.list_topics())
    finally:
        admin.close()


def ensure_topics(
    bootstrap_servers: str,
    topics_config: TopicsConfig,
    client_options: Mapping[str, Any],
    *,
    roles: Collection[TopicRole] | None = None,
    timeout: float = 30.0,
) -> None:
    """Create the driftstream topics that do not exist yet (see :func:`topic_specs`).

    Existing topics are left as they are, whatever their settings (a topic
    created meanwhile by someone else is not an error).

    Parameters
    ----------
    bootstrap_servers
        Kafka ``host:port[,host:port]``.
    topics_config
        Names and partition count (``topics:`` of the configuration).
    client_options
        Security settings, :meth:`monitor.config.BrokerConfig.client_options`.
    roles
        Only these topics (default: all of them).
    timeout
        Seconds to reach the broker and for each admin request.

    Raises
    ------
    DriftstreamError
        The broker cannot be reached or refuses to create a topic.
    """
    specs = topic_specs(topics_config, roles)
    timeout_ms = int(timeout * 1000)
    admin = admin_client(bootstrap_servers, client_options, timeout)
    try:
        with broker_errors(bootstrap_servers):
            existing = set(admin.list_topics())
            missing = {spec.name: spec for spec in specs if spec.name not in existing}
            if not missing:
                return
            response = admin.create_topics(
                {
                    name: {
                        "num_partitions": spec.partitions,
                        "replication_factor": -1,  # the broker's default
                        "configs": dict(spec.configs),
                    }
                    for name, spec in missing.items()
                },
                timeout_ms=timeout_ms,
                raise_errors=False,
            )
            for topic in response["topics"]:
                error = for_code(topic["error_code"])
                if topic["error_code"] and error is not TopicAlreadyExistsError:
                    reason = topic.get("error_message") or error.__name__
                    raise DriftstreamError(f"cannot create topic {topic['name']}: {reason}")
            admin.wait_for_topics(list(missing), timeout_ms=timeout_ms)
    finally:
        admin.close()
