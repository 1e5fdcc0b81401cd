"""Deliver alert transitions to every sink, each through its own queue.

A sink that is slow or down holds up only its own queue: processing and
the other sinks go on. A failed delivery round is tried again after a
backoff (the sink's :class:`~alerting.sink.RetryPolicy`) until the
transition is ``delivery_timeout`` old, so an outage of the receiver
shorter than that loses nothing and keeps each sink's transitions in order.
Only then, or at once when the receiver refused it, the transition becomes
an :class:`~schemas.alerts.AlertDeadLetter` (the caller publishes it to the
alert dead-letter topic) and counts as done: never silently dropped, never
blocking later transitions for longer than the timeout.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from alerting.sink import DeliveryFailedError, Sink
from schemas.alerts import AlertDeadLetter, AlertEvent

logger = logging.getLogger("driftstream.alerting")


@dataclass(frozen=True)
class Delivery:
    """A finished delivery: which transition, which sink, how it ended."""

    owner: int
    event: AlertEvent
    sink: str
    outcome: str
    attempts: int


class Dispatcher:
    """One queue and one task per sink.

    Parameters
    ----------
    sinks
        The sinks (names unique).
    on_done
        Called after each delivery (delivered or dead-lettered).
    dead_letter
        Publishes a delivery that failed for good; awaited before
        ``on_done``, so a failure is recorded before it counts as done.
    clock
        The current time (UTC); transitions' ages are measured with it.
    rng
        Draws the backoff jitter.
    """

    def __init__(
        self,
        sinks: Sequence[Sink],
        on_done: Callable[[Delivery], None],
        dead_letter: Callable[[AlertDeadLetter], Awaitable[None]],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.sinks = {sink.name: sink for sink in sinks}
        self.on_done = on_done
        self.dead_letter = dead_letter
        self.clock = clock
        # Jitter spreads the retries of many workers; it needs no cryptographic quality.
        self.rng = rng or random.Random()
        self.queues: dict[str, asyncio.Queue[tuple[int, AlertEvent]]] = {
            name: asyncio.Queue() for name in self.sinks
        }
        # Transitions handed to a sink and not done yet (queued or being
        # retried), by idempotency key: when each happened.
        self.undelivered: dict[str, dict[str, datetime]] = {name: {} for name in self.sinks}
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start one delivery task per sink."""
        self.tasks = [
            asyncio.create_task(self._run(name), name=f"sink-{name}") for name in self.sinks
        ]

    def required(self, event: AlertEvent) -> set[str]:
        """The sinks that want ``event``."""
        return {name for name, sink in self.sinks.items() if sink.accepts(event)}

    def submit(self, owner: int, event: AlertEvent, done: set[str]) -> None:
        """Queue ``event`` for every sink that wants it and does not have it yet.

        ``owner`` (the input partition) is handed back in the :class:`Delivery`.
        """
        for name in sorted(self.required(event) - done):
            self.undelivered[name][event.idempotency_key] = _utc(event.at)
            self.queues[name].put_nowait((owner, event))

    def depths(self) -> dict[str, int]:
        """Transitions not yet done (queued or being retried), by sink."""
        return {name: len(pending) for name, pending in self.undelivered.items()}

    def oldest_ages(self) -> dict[str, float]:
        """Seconds since the oldest transition not yet done happened, by sink (0: none)."""
        now = self.clock()
        return {
            name: max(0.0, (now - min(pending.values())).total_seconds()) if pending else 0.0
            for name, pending in self.undelivered.items()
        }

    async def _run(self, name: str) -> None:
        sink, queue = self.sinks[name], self.queues[name]
        while True:
            owner, event = await queue.get()
            attempts, error = await self._deliver(sink, event)
            if error is None:
                outcome = "delivered"
            else:
                outcome = "dead_lettered"
                await self.dead_letter(
                    AlertDeadLetter(
                        sink=name,
                        attempts=attempts,
                        error=error,
                        alert=event.model_dump(mode="json"),
                    )
                )
            self.undelivered[name].pop(event.idempotency_key, None)
            self.on_done(Delivery(owner, event, name, outcome, attempts))

    async def _deliver(self, sink: Sink, event: AlertEvent) -> tuple[int, str | None]:
        """Rounds of delivery until one succeeds or the policy gives up: (attempts, error)."""
        policy, attempts, rounds = sink.retry, 0, 0
        while True:
            try:
                return attempts + await sink.deliver(event), None
            except Exception as error:  # a sink's bug must not kill its queue
                rounds += 1
                attempts += _attempts(error)
                # Only DeliveryFailedError messages are known to be free of secrets.
                reason = str(error) if isinstance(error, DeliveryFailedError) else repr(type(error))
                remaining = policy.delivery_timeout - (self.clock() - _utc(event.at))
                retryable = isinstance(error, DeliveryFailedError) and error.retryable
                if not retryable or remaining.total_seconds() <= 0:
                    logger.error(
                        "alert %s to sink %s failed for good after %d attempts: %s",
                        event.idempotency_key,
                        sink.name,
                        attempts,
                        reason,
                    )
                    return attempts, reason
                wait = policy.wait(rounds, remaining, self.rng)
                logger.warning(
                    "alert %s to sink %s: %s; round %d, next in %.1f s (gives up %s from now)",
                    event.idempotency_key,
                    sink.name,
                    reason,
                    rounds,
                    wait,
                    remaining,
                )
                await asyncio.sleep(wait)

    async def close(self) -> None:
        """Stop the tasks and close the sinks."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for sink in self.sinks.values():
            await sink.close()


def _attempts(error: Exception) -> int:
    return error.attempts if isinstance(error, DeliveryFailedError) else 1


def _utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC time (naive times are taken as UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
