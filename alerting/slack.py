"""Slack sink: alert transitions as Block Kit messages, by incoming webhook or bot token.

Two ways to post, chosen in :class:`SlackSinkConfig`:

* ``webhook_url``: an incoming webhook, which posts to the channel it was
  created for. Its URL is a secret (the path authorises posting), so it is
  read from the environment or a file like any other secret.
* ``token`` and ``channel``: a bot token (``xoxb-…``) posting with
  ``chat.postMessage``; ``base_url`` points at another Web API host
  (Enterprise Grid gateways, tests).

:func:`slack_message` renders an :class:`~schemas.alerts.AlertEvent`: a
header with the severity's emoji, the facts (model, version, rule,
window, …), a monospace table of the drifted features with each test's
score against its threshold, and the event's links (dashboard, report,
runbook).

Retries are slack-sdk's: its rate-limit handler waits out a 429's
``Retry-After``, its connection-error handler retries connection failures
and timeouts, and a handler of this module retries 5xx answers, with
slack-sdk's exponential backoff and jitter; together they make at most
``max_attempts`` attempts per delivery round. The dispatcher starts new
rounds until ``delivery_timeout`` (see :class:`~alerting.sink.RetryPolicy`).

Proxies follow ``HTTPS_PROXY``/``HTTP_PROXY`` and ``NO_PROXY`` (through
aiohttp). slack-sdk's clients read the proxy variables themselves and
ignore ``NO_PROXY``, so the sink hands proxy selection back to aiohttp.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from types import SimpleNamespace
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from alerting.secrets import read_secret
from alerting.sink import DeliveryFailedError, RetryPolicy, wanted
from alerting.sink_config import SlackSinkConfig
from monitor.config_types import format_duration
from schemas.alerts import AlertEvent, FeatureBreach, TestScore
from schemas.outputs import WindowBounds

#: Slack's length limits, in characters, of the text objects used here.
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000

#: Longest feature and test names in the table (longer ones are cut with "…").
FEATURE_WIDTH = 28
TEST_WIDTH = 16

SEVERITY_EMOJI = {"warning": ":warning:", "critical": ":rotating_light:"}
LEVEL_MARK = {"ok": "", "warning": "(warn)", "critical": "(crit)"}

#: Kinds whose value and threshold are seconds.
SECONDS_KINDS = frozenset({"no_events", "stalled_windows"})

# slack-sdk's clients log request URLs (a webhook URL is a secret) whenever
# their logger's own level is DEBUG or unset; this logger's level keeps them quiet.
_SDK_LOGGER = logging.getLogger(f"{__name__}.sdk")
_SDK_LOGGER.setLevel(logging.INFO)


def slack_message(event: AlertEvent, max_features: int) -> tuple[str, list[dict[str, Any]]]:
    r"""The fallback text and Block Kit blocks announcing ``event``.

    Parameters
    ----------
    event
        A pending, firing or resolved alert transition.
    max_features
        Most drifted features in the table; the rest are counted ("…and N
        more"). Fewer are listed if the table would exceed Slack's limit.

    Returns
    -------
    tuple[str, list[dict[str, Any]]]
        The ``text`` shown in notifications and the ``blocks``: a header,
        the summary with the facts as fields, the drifted features (not for
        resolved alerts), and the links with the alert's idempotency key.
        Texts are escaped for Slack and cut to Slack's limits.

    Examples
    --------
    >>> from schemas.alerts import FeatureBreach, TestScore
    >>> event = AlertEvent(
    ...     fingerprint="d1d4b1bd8e1b5d3a", sequence=2, status="firing",
    ...     previous_status="pending", rule="drift", kind="feature_drift",
    ...     severity="critical", model="churn", model_version="7", feature="plan",
    ...     summary="churn 7: plan drifted (psi 0.41 >= 0.25)", at="2026-11-23T10:00:00Z",
    ...     window=WindowBounds(kind="count", id=3, start_event=3000, end_event=4000),
    ...     features=[FeatureBreach(feature="plan", severity="critical", tests={
    ...         "psi": TestScore(score=0.412, warning=0.1, critical=0.25, severity="critical"),
    ...         "ks": TestScore(score=0.061, warning=0.1, critical=0.2, severity="ok"),
    ...     })],
    ...     links={"Dashboard": "https://grafana.example/d/churn?var-version=7&from=now-6h"},
    ... )
    >>> text, blocks = slack_message(event, max_features=10)
    >>> text
    '[CRITICAL] churn 7: plan drifted (psi 0.41 &gt;= 0.25)'
    >>> blocks[0]["text"]["text"]
    ':rotating_light: [CRITICAL] feature drift — churn v7'
    >>> [field["text"].split("\n")[0] for field in blocks[1]["fields"]]
    ['*Model*', '*Version*', '*Rule*', '*Severity*', '*Feature*', '*Window*']
    >>> blocks[1]["fields"][-1]["text"]
    '*Window*\ncount #3 · events [3000, 4000)'
    >>> print(blocks[2]["text"]["text"])
    *Drifted features (1)*
    ```
    plan  psi  0.412 ≥ 0.250 (crit)
          ks   0.061 &lt; 0.100
    ```
    >>> for element in blocks[3]["elements"]:
    ...     print(element["text"])
    <https://grafana.example/d/churn?var-version=7&amp;from=now-6h|Dashboard>
    alert `d1d4b1bd8e1b5d3a:2`
    """
    subject = f"{event.kind.replace('_', ' ')} — {event.model}"
    if event.model_version is not None:
        subject += f" v{event.model_version}"
    severity = event.severity.upper()
    if event.status == "resolved":
        header = f":white_check_mark: Resolved — {subject}"
        text = f"Resolved: {event.summary}"
    elif event.status == "pending":
        header = f":hourglass_flowing_sand: Pending [{severity}] {subject}"
        text = f"Pending [{severity}] {event.summary}"
    else:
        header = f"{SEVERITY_EMOJI[event.severity]} [{severity}] {subject}"
        text = f"[{severity}] {event.summary}"
    fields = [_clip(f"*{name}*\n{_escape(value)}", FIELD_LIMIT) for name, value in _facts(event)]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(_clip(header, HEADER_LIMIT))},
        {
            "type": "section",
            "text": _mrkdwn(_clip(_escape(event.summary), SECTION_LIMIT)),
            "fields": [_mrkdwn(field) for field in fields],
        },
    ]
    if event.status != "resolved" and event.features:
        blocks.append(
            {"type": "section", "text": _mrkdwn(_feature_table(event.features, max_features))}
        )
    # The idempotency key last: it tells repeats apart and ties the message
    # to the alerts topic, the webhooks and the dead letters.
    context = [_mrkdwn(links)] if (links := _links(event.links)) else []
    context.append(_mrkdwn(f"alert `{event.idempotency_key}`"))
    blocks.append({"type": "context", "elements": context})
    return _clip(_escape(text), SECTION_LIMIT), blocks


def _facts(event: AlertEvent) -> list[tuple[str, str]]:
    """Name and value of each fact shown as a field (at most 10, Slack's limit)."""
    facts = [("Model", event.model)]
    if event.model_version is not None:
        facts.append(("Version", event.model_version))
    facts += [("Rule", event.rule), ("Severity", event.severity)]
    if event.feature is not None:
        facts.append(("Feature", event.feature))
    if event.window is not None:
        facts.append(("Window", _window(event.window)))
    if event.value is not None and event.kind != "feature_drift":
        facts.append(("Value", _value(event.value, event.threshold, event.kind)))
    if event.status == "resolved":
        if event.incident_started_at is not None:
            elapsed = _elapsed(event.at - event.incident_started_at)
            facts.append(("Firing since", _when(event.incident_started_at)))
            facts.append(("Resolved", f"{_when(event.at)} (after {elapsed})"))
        else:
            facts.append(("Resolved", _when(event.at)))
    elif event.incident_started_at is not None:
        facts.append(("Since", _when(event.incident_started_at)))
    return facts


def _window(window: WindowBounds) -> str:
    """``count #3 · events [3000, 4000)`` or ``time #<id> · [start, end)``."""
    label = f"{window.kind} #{window.id}"
    if window.start_event is not None and window.end_event is not None:
        return f"{label} · events [{window.start_event}, {window.end_event})"
    if window.start is not None and window.end is not None:
        return f"{label} · [{_when(window.start)}, {_when(window.end)})"
    return label


def _value(value: float, threshold: float | None, kind: str) -> str:
    """The rule's measured value and its threshold, in seconds for the clock-based kinds."""

    def show(number: float) -> str:
        return f"{number:.0f} s" if kind in SECONDS_KINDS else _number(number)

    return show(value) if threshold is None else f"{show(value)} (threshold {show(threshold)})"


def _feature_table(features: list[FeatureBreach], max_features: int) -> str:
    """A title and a code block with one row per test, critical features first.

    Features that do not fit in ``max_features`` or in Slack's section limit
    are counted after the block, so the block is never cut.
    """
    ranked = sorted(features, key=lambda breach: breach.severity != "critical")
    rows = [_breach_rows(breach) for breach in ranked[:max_features]]
    widths = [
        max((len(row[column]) for group in rows for row in group), default=0) for column in range(3)
    ]
    groups = ["\n".join(_escape(_table_line(row, widths)) for row in group) for group in rows]
    shown = len(groups)
    table = _table_text(len(ranked), groups)
    while len(table) > SECTION_LIMIT:
        shown -= 1
        table = _table_text(len(ranked), groups[:shown])
    return table


def _table_text(total: int, groups: list[str]) -> str:
    """The title, the code block of ``groups`` (one per feature) and the count left out."""
    parts = [f"*Drifted features ({total})*"]
    if groups:
        parts.append("```\n" + "\n".join(groups) + "\n```")
    if total > len(groups):
        parts.append(f"_…and {total - len(groups)} more_")
    return "\n".join(parts)


def _breach_rows(breach: FeatureBreach) -> list[tuple[str, str, str, str]]:
    """Rows of (feature, test, score, comparison); the feature only on the first."""
    feature = _shorten(breach.feature, FEATURE_WIDTH)
    if not breach.tests:
        return [(feature, "", "", LEVEL_MARK[breach.severity])]
    return [
        (feature if index == 0 else "", _shorten(name, TEST_WIDTH), *_comparison(test))
        for index, (name, test) in enumerate(breach.tests.items())
    ]


def _comparison(test: TestScore) -> tuple[str, str]:
    """The score and how it compares with the threshold that decided its severity."""
    score = "n/a" if test.score is None else _number(test.score)
    if test.severity == "ok":
        limit = test.warning if test.warning is not None else test.critical
        return score, "" if limit is None else f"< {_number(limit)}"
    limit = test.critical if test.severity == "critical" else test.warning
    mark = LEVEL_MARK[test.severity]
    return score, mark if limit is None else f"≥ {_number(limit)} {mark}"


def _table_line(row: tuple[str, str, str, str], widths: list[int]) -> str:
    """One row, its columns padded to ``widths`` (the score right-aligned)."""
    feature, test, score, comparison = row
    line = f"{feature:<{widths[0]}}  {test:<{widths[1]}}  {score:>{widths[2]}} {comparison}"
    return line.rstrip()


def _links(links: dict[str, str]) -> str:
    """``<url|Name>`` links joined by " · ", as many as fit in one text object."""
    text = ""
    for name, url in links.items():
        # A "|" would end the URL early; %7C is the same URL.
        link = f"<{_escape(url).replace('|', '%7C')}|{_escape(name)}>"
        candidate = f"{text} · {link}" if text else link
        if len(candidate) <= SECTION_LIMIT:
            text = candidate
    return text


def _number(value: float) -> str:
    """Three decimals, or scientific notation for very small or large magnitudes."""
    return f"{value:.3f}" if value == 0 or 1e-3 <= abs(value) < 1e4 else f"{value:.2e}"


def _when(moment: datetime) -> str:
    """``2026-11-23 10:00:00 UTC`` (naive times are taken as UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _elapsed(duration: timedelta) -> str:
    """The two largest units of a duration: ``1h 20m``, ``2d 3h``, ``45s``."""
    minutes, seconds = divmod(max(0, int(duration.total_seconds())), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    units = ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s"))
    return " ".join([f"{amount}{unit}" for amount, unit in units if amount][:2]) or "0s"


def _escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn reserves."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with "…", never inside an escape such as ``&amp;``."""
    if len(text) <= limit:
        return text
    return re.sub(r"&[a-z]*$", "", text[: limit - 1]) + "…"


def _shorten(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


@dataclass
class _Attempts:
    """Requests sent so far by one delivery."""

    made: int = 0


_ATTEMPTS: ContextVar[_Attempts] = ContextVar("slack_delivery_attempts")


async def _count_attempt(
    session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceRequestStartParams,
) -> None:
    """aiohttp trace hook: the delivery in progress sends one more request."""
    _ATTEMPTS.get().made += 1


async def _raise_for_server_error(response: aiohttp.ClientResponse) -> None:
    """Raise 5xx answers as :class:`aiohttp.ClientResponseError` for the retry handlers."""
    if response.status >= 500:
        response.raise_for_status()


class _ServerErrorRetryHandler(AsyncRetryHandler):
    """Retries 5xx answers, which the sink's session raises as ClientResponseError.

    slack-sdk's AsyncServerErrorRetryHandler inspects responses, but
    AsyncWebhookClient shows its handlers only 429 answers and exceptions;
    raising 5xx answers lets one handler serve both clients.
    """

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return isinstance(error, aiohttp.ClientResponseError) and error.status >= 500


def _retry_handlers(config: SlackSinkConfig) -> list[AsyncRetryHandler]:
    """slack-sdk's handlers, sharing ``max_attempts - 1`` retries between them."""
    retries = config.max_attempts - 1
    backoff = BackoffRetryIntervalCalculator(backoff_factor=config.backoff.total_seconds())
    return [
        AsyncRateLimitErrorRetryHandler(max_retry_count=retries),
        _ServerErrorRetryHandler(max_retry_count=retries, interval_calculator=backoff),
        AsyncConnectionErrorRetryHandler(
            max_retry_count=retries,
            interval_calculator=backoff,
            # ServerConnectionError covers disconnects and socket timeouts,
            # ClientOSError refused and reset connections, TimeoutError the
            # whole attempt's timeout.
            error_types=[aiohttp.ServerConnectionError, aiohttp.ClientOSError, TimeoutError],
        ),
    ]


#: What went wrong and whether another round may succeed, or None when posted.
Failure = tuple[str, bool] | None
Post = Callable[[str, list[dict[str, Any]]], Awaitable[Failure]]


def _retryable(status: int) -> bool:
    """Rate limits and server errors pass; other refusals are about the message."""
    return status == 429 or status >= 500


async def _post_webhook(
    client: AsyncWebhookClient, text: str, blocks: list[dict[str, Any]]
) -> Failure:
    """Post by incoming webhook."""
    response = await client.send(text=text, blocks=blocks, unfurl_links=False, unfurl_media=False)
    if 200 <= response.status_code < 300:
        return None
    # Slack explains refusals in a short plain-text body ("invalid_blocks").
    problem = f"HTTP {response.status_code} {' '.join(response.body.split())[:200]}".rstrip()
    return problem, _retryable(response.status_code)


async def _post_message(
    client: AsyncWebClient, channel: str, text: str, blocks: list[dict[str, Any]]
) -> Failure:
    """Post with chat.postMessage."""
    try:
        await client.chat_postMessage(
            channel=channel, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
        )
    except SlackApiError as error:
        answer = error.response
        problem = f"Slack API error {answer.get('error', 'unknown')} (HTTP {answer.status_code})"
        return problem, _retryable(answer.status_code)
    return None


def _describe(error: aiohttp.ClientError | TimeoutError, timeout: timedelta) -> str:
    """What went wrong, without the URL that aiohttp's messages contain."""
    if isinstance(error, aiohttp.ClientResponseError):
        return f"HTTP {error.status} {error.message}".rstrip()
    if isinstance(error, TimeoutError):
        return f"no answer within {format_duration(timeout)}"
    if isinstance(error, OSError):
        return f"connection failed ({error.strerror or type(error).__name__})"
    return type(error).__name__


class SlackSink:
    """Posts alert transitions to Slack (a :class:`~alerting.sink.Sink`).

    Secrets are read when the sink is created, so a missing one stops
    start-up instead of the first alert. The HTTP session opens with the
    first delivery (aiohttp needs a running event loop).
    """

    def __init__(self, config: SlackSinkConfig) -> None:
        self.config = config
        handlers = _retry_handlers(config)
        self._client: AsyncWebhookClient | AsyncWebClient
        self._post: Post
        owner = f"slack sink {config.name!r}"
        if config.webhook_url is not None:
            self._target = f"Slack incoming webhook (from {config.webhook_url.describe()})"
            webhook = AsyncWebhookClient(
                read_secret(owner, "webhook_url", config.webhook_url),
                logger=_SDK_LOGGER,
                retry_handlers=handlers,
            )
            self._client, self._post = webhook, partial(_post_webhook, webhook)
        else:
            # SlackSinkConfig guarantees token and channel here.
            assert config.token is not None
            assert config.channel is not None
            self._target = (
                f"Slack chat.postMessage to {config.channel} (token from {config.token.describe()})"
            )
            web = AsyncWebClient(
                token=read_secret(owner, "token", config.token),
                base_url=config.base_url or AsyncWebClient.BASE_URL,
                logger=_SDK_LOGGER,
                retry_handlers=handlers,
            )
            self._client, self._post = web, partial(_post_message, web, config.channel)
        # slack-sdk copied any HTTP(S)_PROXY here, ignoring NO_PROXY; the
        # session's trust_env applies both instead.
        self._client.proxy = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def name(self) -> str:
        """The configured sink name."""
        return self.config.name

    @property
    def retry(self) -> RetryPolicy:
        """Rounds until ``delivery_timeout``, 1 s apart at first, doubling to ``backoff_max``."""
        config = self.config
        return RetryPolicy(config.delivery_timeout, timedelta(seconds=1), config.backoff_max)

    def accepts(self, event: AlertEvent) -> bool:
        """Whether ``event``'s status and rule are among those configured."""
        return wanted(event, self.config.statuses, self.config.rules)

    async def deliver(self, event: AlertEvent) -> int:
        """One round: post ``event``; return the attempts (HTTP requests) made.

        Raises
        ------
        DeliveryFailedError
            After a refusal (4xx other than 429, ``ok: false``: not
            retryable) or ``max_attempts`` failed attempts; the message
            names the target but not the URL or token.
        """
        text, blocks = slack_message(event, self.config.max_features)
        self._connect()
        attempts = _Attempts()
        context = _ATTEMPTS.set(attempts)
        try:
            failure = await self._post(text, blocks)
        except (aiohttp.ClientError, TimeoutError) as error:
            failure = _describe(error, self.config.timeout), True
        finally:
            _ATTEMPTS.reset(context)
        if failure is not None:
            problem, retryable = failure
            plural = "s" if attempts.made > 1 else ""
            raise DeliveryFailedError(
                f"{self._target}: {problem} after {attempts.made} attempt{plural}",
                attempts.made,
                retryable=retryable,
            )
        return attempts.made

    def _connect(self) -> None:
        """Open the session the client posts with, unless it is open."""
        if self._session is None or self._session.closed:
            trace = aiohttp.TraceConfig()
            trace.on_request_start.append(_count_attempt)
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout.total_seconds()),
                raise_for_status=_raise_for_server_error,
                trust_env=True,
                trace_configs=[trace],
            )
            self._client.session = self._session

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
