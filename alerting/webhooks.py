"""Retraining webhooks: alert transitions POSTed to a receiver, Airflow or GitHub.

Payload
-------
The ``generic`` preset POSTs one :class:`~schemas.alerts.AlertEvent` as JSON
(``schemas/json/`` describes it). The ``airflow`` preset wraps it as the
``conf`` of a new DAG run and the ``github`` preset as the ``alert`` of a
``repository_dispatch`` event's ``client_payload``.

Every request carries::

    Content-Type: application/json
    User-Agent: driftstream
    Idempotency-Key: <fingerprint>:<sequence>

The idempotency key names one transition of one alert. A delivery is
retried after timeouts and connection errors, when the receiver may already
have acted on the request, so a receiver must drop requests whose key it has
seen.

Signature
---------
When the sink has a ``secret``, requests also carry::

    X-Driftstream-Timestamp: <unix seconds when the request was sent>
    X-Driftstream-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

The HMAC covers the exact body bytes received, prefixed with the timestamp
and a dot, so a captured request cannot be replayed later with a new
timestamp. Every attempt is signed afresh. A receiver recomputes the HMAC
over the raw body (before parsing it), compares in constant time and rejects
timestamps more than a few minutes from its clock; :func:`verify_signature`
does all of this.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import NamedTuple
from urllib.parse import quote

import httpx
import orjson

from alerting.secrets import read_secret
from alerting.sink import DeliveryFailedError, RetryPolicy, wanted
from alerting.sink_config import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSinkConfig,
)
from schemas.alerts import AlertEvent

logger = logging.getLogger("driftstream.alerting")
# httpx logs every request's full URL at INFO (httpcore its details at DEBUG);
# a webhook URL may carry a token in its query string, and logs must not.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)

USER_AGENT = "driftstream"
GITHUB_API_VERSION = "2022-11-28"


class PresetRequest(NamedTuple):
    """What one preset sends for one event, before the common and signature headers."""

    url: str
    body: bytes
    headers: dict[str, str]


def build_request(config: WebhookSinkConfig, event: AlertEvent) -> PresetRequest:
    """The URL, JSON body and preset-specific headers delivering ``event``.

    Examples
    --------
    >>> config = WebhookSinkConfig(
    ...     name="retrain", preset="airflow", url="http://airflow:8080/", dag_id="retrain",
    ...     username="driftstream", password={"env": "AIRFLOW_PASSWORD"},
    ... )
    >>> event = AlertEvent(
    ...     fingerprint="d1d4b1bd8e1b5d3a", sequence=2, status="firing",
    ...     previous_status="pending", rule="drift", kind="feature_drift",
    ...     severity="critical", model="churn", summary="churn: plan drifted",
    ...     at="2026-11-23T10:00:00Z",
    ... )
    >>> request = build_request(config, event)
    >>> request.url
    'http://airflow:8080/api/v1/dags/retrain/dagRuns'
    >>> orjson.loads(request.body)["dag_run_id"]
    'driftstream-d1d4b1bd8e1b5d3a-2'
    """
    alert = event.model_dump(mode="json", exclude_none=True)
    base = config.url.rstrip("/")
    if config.preset == "airflow":
        assert config.dag_id is not None  # guaranteed by WebhookSinkConfig's validator
        body: dict[str, object] = {
            # Airflow refuses a second run with the same ID (HTTP 409), which
            # makes retries and redeliveries of a transition harmless.
            "dag_run_id": f"driftstream-{event.fingerprint}-{event.sequence}",
            "conf": alert,
        }
        if config.airflow_api == "v2":
            # Airflow 3 requires the field. A date would collide: runs of one
            # DAG need distinct logical dates, and the alerts of one window
            # share their time; null lets Airflow run each alert now.
            body["logical_date"] = None
        url = f"{base}/api/{config.airflow_api}/dags/{quote(config.dag_id, safe='')}/dagRuns"
        return PresetRequest(url, orjson.dumps(body), {})
    if config.preset == "github":
        payload = {
            "event_type": config.event_type,
            # GitHub accepts at most 10 top-level keys here; nesting the alert
            # keeps its field count out of that limit.
            "client_payload": {"idempotency_key": event.idempotency_key, "alert": alert},
        }
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": GITHUB_API_VERSION,
        }
        return PresetRequest(
            f"{base}/repos/{config.repository}/dispatches", orjson.dumps(payload), headers
        )
    return PresetRequest(config.url, event.to_json(), {})


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Driftstream-Signature`` value of ``body`` sent at ``timestamp``.

    Parameters
    ----------
    secret
        The sink's signing key, as bytes (UTF-8 of the configured secret).
    timestamp
        Unix seconds, the value of the ``X-Driftstream-Timestamp`` header.
    body
        The exact request body bytes.

    Returns
    -------
    str
        ``"sha256="`` followed by the hex HMAC-SHA256 of ``b"<timestamp>." + body``.

    Examples
    --------
    >>> sign(b"whsec", 1700000000, b'{"status":"firing"}')
    'sha256=2b715c10719d0addda567929f349e6101cf698e83e6a3020a7c4a796ef6e3a1a'
    """
    message = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: bytes,
    timestamp_header: str,
    body: bytes,
    signature_header: str,
    now: float,
    tolerance: float = 300,
) -> bool:
    """Whether a received request is signed with ``secret`` and recent (for receivers).

    Parameters
    ----------
    secret
        The signing key shared with the sink.
    timestamp_header
        The ``X-Driftstream-Timestamp`` header as received.
    body
        The raw request body, before any parsing.
    signature_header
        The ``X-Driftstream-Signature`` header as received.
    now
        The receiver's clock in Unix seconds, e.g. ``time.time()``.
    tolerance
        Largest accepted difference between ``now`` and the timestamp, in
        seconds; older (replayed) and future-dated requests are rejected.

    Returns
    -------
    bool
        True if the signature matches and the timestamp is within tolerance.

    Examples
    --------
    >>> body = b'{"status":"firing"}'
    >>> signature = sign(b"whsec", 1700000000, body)
    >>> verify_signature(b"whsec", "1700000000", body, signature, now=1700000060)
    True
    >>> verify_signature(b"whsec", "1700000000", body + b" ", signature, now=1700000060)
    False
    >>> verify_signature(b"whsec", "1700000000", body, signature, now=1700000000 + 3600)
    False
    """
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    # compare_digest takes as long for any mismatch, so response times do not
    # reveal how much of a forged signature is right.
    return hmac.compare_digest(
        sign(secret, timestamp, body).encode(), signature_header.strip().encode()
    )


def parse_retry_after(value: str, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date).

    None when the value is neither.

    Examples
    --------
    >>> now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    >>> parse_retry_after("7", now), parse_retry_after("Mon, 23 Nov 2026 10:00:30 GMT", now)
    (7.0, 30.0)
    >>> parse_retry_after("soon", now) is None
    True
    """
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # a "-0000" zone: UTC by RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def redact_url(url: str) -> str:
    """``url`` without query string, fragment or user info, which may carry secrets.

    Examples
    --------
    >>> redact_url("https://bot:pw@hooks.example.com/retrain?token=abc")
    'https://hooks.example.com/retrain'
    """
    return str(httpx.URL(url).copy_with(query=None, fragment=None, username=None, password=None))


@dataclass(frozen=True)
class _Failure:
    """Why one attempt failed and whether another attempt may succeed."""

    reason: str
    retryable: bool
    retry_after: float | None = None


class WebhookSink:
    """Delivers alert transitions by HTTP POST, retrying with backoff (a :class:`Sink`).

    Secrets are read when the sink is created, so a missing one stops
    start-up instead of the first alert.
    """

    def __init__(self, config: WebhookSinkConfig, *, rng: random.Random | None = None) -> None:
        self.config = config
        # Jitter spreads the retries of many workers; it needs no cryptographic quality.
        self._rng = rng or random.Random()
        owner = f"webhook sink {config.name!r}"
        secret = read_secret(owner, "secret", config.secret)
        self._secret = secret.encode() if secret is not None else None
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        token = read_secret(owner, "token", config.token)
        password = read_secret(owner, "password", config.password)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        elif password is not None:
            credentials = f"{config.username}:{password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        # trust_env=False: proxy variables meant for other traffic must not
        # reroute alerts (or their credentials). Redirects are not followed,
        # so credentials never reach another host.
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=config.timeout.total_seconds(),
            trust_env=False,
            follow_redirects=False,
        )

    @property
    def name(self) -> str:
        """The configured sink name."""
        return self.config.name

    @property
    def retry(self) -> RetryPolicy:
        """Rounds until ``delivery_timeout``, with the attempts' backoff between them."""
        config = self.config
        return RetryPolicy(config.delivery_timeout, config.backoff_initial, config.backoff_max)

    def accepts(self, event: AlertEvent) -> bool:
        """Whether ``event``'s status and rule are among those configured."""
        return wanted(event, self.config.statuses, self.config.rules)

    async def deliver(self, event: AlertEvent) -> int:
        """One round: POST ``event`` until it is accepted; return the attempts made.

        Raises
        ------
        DeliveryFailedError
            After a client error (4xx other than 429: not retryable) or
            ``max_attempts`` failed attempts.
        """
        request = build_request(self.config, event)
        headers = {**request.headers, "Idempotency-Key": event.idempotency_key}
        target = f"POST {redact_url(request.url)}"
        attempts = self.config.max_attempts
        attempt = 1
        while (failure := await self._attempt(request, headers)) is not None:
            if not failure.retryable or attempt == attempts:
                plural = "s" if attempt > 1 else ""
                raise DeliveryFailedError(
                    f"{target}: {failure.reason} after {attempt} attempt{plural}",
                    attempt,
                    retryable=failure.retryable,
                )
            delay = self._backoff(attempt, failure.retry_after)
            logger.warning(
                "webhook sink %s: %s: %s (attempt %d of %d); retrying in %.2f s",
                self.name,
                target,
                failure.reason,
                attempt,
                attempts,
                delay,
            )
            await asyncio.sleep(delay)
            attempt += 1
        return attempt

    async def _attempt(self, request: PresetRequest, headers: dict[str, str]) -> _Failure | None:
        """One POST; None if the receiver took the event."""
        if self._secret is not None:
            timestamp = int(time.time())
            headers = {
                **headers,
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: sign(self._secret, timestamp, request.body),
            }
        try:
            response = await self._client.post(request.url, content=request.body, headers=headers)
        except httpx.TimeoutException:
            return _Failure(f"timed out after {self.config.timeout.total_seconds():g} s", True)
        except httpx.TransportError as error:
            # Transport errors name the OS or protocol failure, not the URL.
            detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            return _Failure(f"connection failed ({detail})", True)
        status = response.status_code
        if response.is_success or (self.config.preset == "airflow" and status == 409):
            # Airflow's 409: a run with this transition's dag_run_id exists,
            # i.e. an earlier attempt got through.
            return None
        reason = f"HTTP {status} {response.reason_phrase}".rstrip()
        if status == 429:
            retry_after = response.headers.get("Retry-After")
            wait = parse_retry_after(retry_after, datetime.now(UTC)) if retry_after else None
            return _Failure(reason, True, wait)
        return _Failure(reason, retryable=status >= 500)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter over an exponentially growing cap, at least the receiver's Retry-After."""
        cap = self.config.backoff_max.total_seconds()
        ceiling = min(cap, self.config.backoff_initial.total_seconds() * 2 ** (attempt - 1))
        delay = self._rng.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, cap))
        return delay

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()
