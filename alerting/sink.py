"""The contract between the alert dispatcher and each sink (Slack, webhooks).

A sink delivers one :class:`~schemas.alerts.AlertEvent` at a time and does
its own retrying; it either returns how many attempts delivery took or
raises :class:`DeliveryFailedError` after its last attempt. The dispatcher gives
every sink its own queue, so a sink that is down delays only itself.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from schemas.alerts import AlertEvent


class DeliveryFailedError(Exception):
    """A delivery gave up after ``attempts`` attempts.

    The message names the sink's target and what went wrong (status code,
    timeout) and never a secret.
    """

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class Sink(Protocol):
    """Somewhere alert transitions go."""

    @property
    def name(self) -> str:
        """Unique among the configured sinks; used in metrics and dead letters."""
        ...

    def accepts(self, event: AlertEvent) -> bool:
        """Whether this sink wants ``event`` (its statuses and rules filter)."""
        ...

    async def deliver(self, event: AlertEvent) -> int:
        """Deliver ``event``, retrying as the sink sees fit; return the attempts made.

        Raises
        ------
        DeliveryFailedError
            After the last attempt failed.
        """
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def wanted(event: AlertEvent, statuses: Collection[str], rules: Collection[str] | None) -> bool:
    """Whether a sink configured with ``statuses`` and ``rules`` (``None``: all) takes ``event``."""
    return event.status in statuses and (rules is None or event.rule in rules)
