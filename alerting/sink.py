"""The contract between the alert dispatcher and each sink (Slack, webhooks).

A sink delivers one :class:`~schemas.alerts.AlertEvent` at a time in
*rounds*: each :meth:`Sink.deliver` call is one round of a few quick
attempts, which returns how many attempts it took or raises
:class:`DeliveryFailedError`. The dispatcher gives every sink its own queue,
so a sink that is down delays only itself, and starts new rounds after a
retryable failure, as the sink's :class:`RetryPolicy` says, until the
transition is ``delivery_timeout`` old.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from schemas.alerts import AlertEvent

#: How long an alert transition is retried by default before it is dead-lettered.
DEFAULT_DELIVERY_TIMEOUT = timedelta(hours=6)


class DeliveryFailedError(Exception):
    """A delivery round failed after ``attempts`` attempts.

    The message names the sink's target and what went wrong (status code,
    timeout) and never a secret. ``retryable`` is false when the receiver
    refused the transition itself (a 4xx answer): trying again cannot help.
    """

    def __init__(self, message: str, attempts: int, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.retryable = retryable


@dataclass(frozen=True)
class RetryPolicy:
    """When the dispatcher tries a failed transition again, and when it gives up.

    Parameters
    ----------
    delivery_timeout
        A transition whose round fails once it is at least this old (since
        its ``at``) goes to the alert dead letters; ``0`` gives up after
        the first round.
    backoff_initial
        Cap of the random wait before the second round; doubles per round.
    backoff_max
        Longest wait between rounds.

    Notes
    -----
    Round ``k`` (from 1) is followed by a wait drawn uniformly from
    ``[0, min(backoff_max, backoff_initial * 2**(k - 1))]`` ("full jitter",
    so many workers do not retry in step), cut to what is left of
    ``delivery_timeout`` so the last round comes when it is due.

    Examples
    --------
    >>> policy = RetryPolicy(timedelta(hours=1), timedelta(seconds=1), timedelta(seconds=60))
    >>> rng = random.Random(0)
    >>> [round(policy.wait(k, timedelta(hours=1), rng), 2) for k in (1, 2, 8, 20)]
    [0.84, 1.52, 25.23, 15.54]
    >>> policy.wait(20, timedelta(seconds=3), rng) <= 3
    True
    """

    delivery_timeout: timedelta = DEFAULT_DELIVERY_TIMEOUT
    backoff_initial: timedelta = timedelta(seconds=1)
    backoff_max: timedelta = timedelta(seconds=60)

    def wait(self, rounds: int, remaining: timedelta, rng: random.Random) -> float:
        """Seconds to wait after ``rounds`` failed rounds, ``remaining`` before the timeout."""
        ceiling = min(
            self.backoff_max.total_seconds(),
            self.backoff_initial.total_seconds() * 2.0 ** min(rounds - 1, 60),
        )
        return max(0.0, min(rng.uniform(0.0, ceiling), remaining.total_seconds()))


class Sink(Protocol):
    """Somewhere alert transitions go."""

    @property
    def name(self) -> str:
        """Unique among the configured sinks; used in metrics and dead letters."""
        ...

    @property
    def retry(self) -> RetryPolicy:
        """How the dispatcher retries failed rounds of this sink."""
        ...

    def accepts(self, event: AlertEvent) -> bool:
        """Whether this sink wants ``event`` (its statuses and rules filter)."""
        ...

    async def deliver(self, event: AlertEvent) -> int:
        """One delivery round of ``event``; return the attempts made.

        Raises
        ------
        DeliveryFailedError
            After the round's last attempt failed.
        """
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def wanted(event: AlertEvent, statuses: Collection[str], rules: Collection[str] | None) -> bool:
    """Whether a sink configured with ``statuses`` and ``rules`` (``None``: all) takes ``event``."""
    return event.status in statuses and (rules is None or event.rule in rules)
