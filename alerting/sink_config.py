"""Settings of the Slack and webhook sinks, apart from the clients that deliver.

The configuration imports these to validate a config file; keeping them
free of slack-sdk, aiohttp and httpx lets ``driftstream check-config`` (and
every other offline command) start without loading a network client.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from alerting.secrets import SecretSource
from alerting.sink import DEFAULT_DELIVERY_TIMEOUT
from monitor.config_types import Duration, Section
from schemas.alerts import AlertStatus

TIMESTAMP_HEADER = "X-Driftstream-Timestamp"
SIGNATURE_HEADER = "X-Driftstream-Signature"
GITHUB_API = "https://api.github.com"

Preset = Literal["generic", "airflow", "github"]

#: Fields that only some presets read; setting one for another preset is a
#: mistake worth reporting (the preset is probably wrong).
PRESET_FIELDS: dict[Preset, frozenset[str]] = {
    "generic": frozenset(),
    "airflow": frozenset({"dag_id", "airflow_api", "username", "password", "token"}),
    "github": frozenset({"repository", "event_type", "token"}),
}


class WebhookSinkConfig(Section):
    """One webhook sink: where alert transitions are POSTed, which ones, and how."""

    name: str = Field(
        min_length=1, description="Unique among sinks; names the sink in metrics and dead letters."
    )
    preset: Preset = Field(
        default="generic",
        description=(
            "generic: POST the alert to `url`, signed; airflow: trigger a DAG run through "
            "the Airflow REST API; github: send a repository_dispatch event."
        ),
    )
    url: str = Field(
        default=GITHUB_API,
        description=(
            "generic: the endpoint (required); airflow: the webserver's base URL such as "
            "http://airflow:8080 (required); github: the API base URL."
        ),
    )
    secret: SecretSource | None = Field(
        default=None,
        description=(
            "HMAC-SHA256 key signing every request (X-Driftstream-Signature); required by "
            "the generic preset."
        ),
    )
    statuses: tuple[AlertStatus, ...] = Field(
        default=("firing",),
        min_length=1,
        description="Alert statuses to deliver (pending, firing, resolved).",
    )
    rules: tuple[str, ...] | None = Field(
        default=None, description="Names of the alert rules to deliver; null: every rule."
    )
    timeout: Duration = Field(
        default=timedelta(seconds=10),
        description="Limit on each network operation (connect, send, wait for the reply).",
    )
    max_attempts: int = Field(
        default=5, ge=1, description="Attempts in one delivery round (see delivery_timeout)."
    )
    backoff_initial: Duration = Field(
        default=timedelta(seconds=1),
        description="Cap of the random wait after the first failed attempt; doubles per attempt.",
    )
    backoff_max: Duration = Field(
        default=timedelta(seconds=60),
        description="Longest wait between attempts, including a receiver's Retry-After.",
    )
    delivery_timeout: Duration = Field(
        default=DEFAULT_DELIVERY_TIMEOUT,
        ge=timedelta(0),
        description=(
            "Failed rounds are retried (backoff as between attempts) until the transition "
            "is this old; then it goes to the alert dead letters. 0: after one round."
        ),
    )
    dag_id: str | None = Field(default=None, description="airflow: the DAG to trigger.")
    airflow_api: Literal["v1", "v2"] = Field(
        default="v1", description="airflow: REST API version (v1: Airflow 2, v2: Airflow 3)."
    )
    username: str | None = Field(
        default=None, description="airflow: user for basic authentication (with `password`)."
    )
    password: SecretSource | None = Field(
        default=None, description="airflow: password for basic authentication."
    )
    token: SecretSource | None = Field(
        default=None,
        description=(
            "airflow: bearer token (instead of username and password); github: a token "
            "allowed to write the repository's contents."
        ),
    )
    repository: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$",
        description="github: the repository receiving the dispatch, as owner/repo.",
    )
    event_type: str = Field(
        default="driftstream-alert",
        min_length=1,
        max_length=100,
        description="github: the dispatch's event_type, which workflows filter on.",
    )

    @field_validator("url")
    @classmethod
    def http_url(cls, url: str) -> str:
        """An absolute http(s) URL with a host."""
        if not is_http_url(url):
            # The URL may carry a token, so it is not repeated in the message.
            raise ValueError("must be an absolute http:// or https:// URL")
        return url

    @model_validator(mode="after")
    def preset_settings(self) -> Self:
        """Each preset's required settings are present and other presets' are absent."""
        own = PRESET_FIELDS[self.preset]
        foreign = sorted(
            name
            for preset, fields in PRESET_FIELDS.items()
            if preset != self.preset
            for name in fields - own
            if name in self.model_fields_set
        )
        if foreign:
            raise ValueError(f"{', '.join(foreign)}: not used by the {self.preset} preset")
        if self.preset != "github" and "url" not in self.model_fields_set:
            raise ValueError(f"url: required by the {self.preset} preset")
        if self.preset == "generic" and self.secret is None:
            raise ValueError(
                "secret: required by the generic preset; receivers check the "
                f"{SIGNATURE_HEADER} header with it to reject forged alerts"
            )
        if self.preset == "airflow":
            self._check_airflow()
        if self.preset == "github" and (self.repository is None or self.token is None):
            raise ValueError("repository and token: both required by the github preset")
        return self

    def _check_airflow(self) -> None:
        if self.dag_id is None:
            raise ValueError("dag_id: required by the airflow preset")
        basic = self.username is not None or self.password is not None
        if basic and (self.username is None or self.password is None):
            raise ValueError("username and password: set both for basic authentication")
        if basic == (self.token is not None):
            raise ValueError("airflow authentication: set username and password, or token")


class SlackSinkConfig(Section):
    """A Slack sink: an incoming webhook, or a bot token posting to a channel.

    Examples
    --------
    >>> config = SlackSinkConfig(webhook_url={"env": "SLACK_WEBHOOK_URL"})
    >>> config.statuses, config.max_attempts
    (('firing', 'resolved'), 5)
    """

    name: str = Field(
        default="slack",
        min_length=1,
        description="Unique among sinks; names the sink in metrics and dead letters.",
    )
    webhook_url: SecretSource | None = Field(
        default=None,
        description=(
            "Where to read an incoming-webhook URL (a secret: its path authorises "
            "posting). Set this, or token and channel."
        ),
    )
    token: SecretSource | None = Field(
        default=None,
        description="Where to read a bot token (xoxb-…) for chat.postMessage; needs channel.",
    )
    channel: str | None = Field(
        default=None,
        min_length=1,
        description="With token: the channel ID or name to post to.",
    )
    base_url: str | None = Field(
        default=None,
        description=(
            "With token: the Slack Web API base URL (null: slack-sdk's, https://slack.com/api/)."
        ),
    )
    statuses: tuple[AlertStatus, ...] = Field(
        default=("firing", "resolved"),
        min_length=1,
        description="Alert statuses to post (pending, firing, resolved).",
    )
    rules: tuple[str, ...] | None = Field(
        default=None,
        min_length=1,
        description="Names of the alert rules to post; null: every rule.",
    )
    timeout: Duration = Field(
        default=timedelta(seconds=10),
        gt=timedelta(0),
        description="Limit on each attempt, from connecting to reading the answer.",
    )
    max_attempts: int = Field(
        default=5, ge=1, description="Attempts in one delivery round (see delivery_timeout)."
    )
    backoff: Duration = Field(
        default=timedelta(seconds=0.5),
        ge=timedelta(0),
        description=(
            "Wait before the first retry after a server or connection error; doubles per "
            "retry, plus up to 1 s of jitter (slack-sdk's backoff). A 429 waits its Retry-After."
        ),
    )
    backoff_max: Duration = Field(
        default=timedelta(seconds=60),
        gt=timedelta(0),
        description="Longest wait between delivery rounds (they start 1 s apart and double).",
    )
    delivery_timeout: Duration = Field(
        default=DEFAULT_DELIVERY_TIMEOUT,
        ge=timedelta(0),
        description=(
            "Failed rounds are retried until the transition is this old; then it goes to "
            "the alert dead letters. 0: after one round."
        ),
    )
    max_features: int = Field(
        default=10, ge=1, description="Most drifted features listed in a message's table."
    )

    @model_validator(mode="after")
    def one_way_to_post(self) -> Self:
        """``webhook_url``, or ``token`` with ``channel``; ``base_url`` only with ``token``."""
        either = "set webhook_url (incoming webhook) or token and channel (chat.postMessage)"
        if self.webhook_url is not None and self.token is not None:
            raise ValueError(f"{either}, not both")
        if self.webhook_url is None and self.token is None:
            raise ValueError(either)
        if self.token is not None and self.channel is None:
            raise ValueError("token needs channel: the channel chat.postMessage posts to")
        if self.webhook_url is not None and (self.channel or self.base_url) is not None:
            raise ValueError(
                "channel and base_url apply only with token; "
                "an incoming webhook posts to the channel it was created for"
            )
        return self


def is_http_url(url: str) -> bool:
    """Whether ``url`` is an absolute http(s) URL with a host.

    Examples
    --------
    >>> is_http_url("https://hooks.example/alerts"), is_http_url("ftp://host/x")
    (True, False)
    >>> is_http_url("http:///no-host"), is_http_url("http://two words.example/")
    (False, False)
    """
    if any(character.isspace() for character in url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host)
