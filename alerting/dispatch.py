"""Deliver alert transitions to every sink, each through its own queue.

A sink that is slow or down holds up only its own queue: processing and
the other sinks go on. A delivery that fails after the sink's last attempt
becomes an :class:`~schemas.alerts.AlertDeadLetter` (the caller publishes
it to the alert dead-letter topic) and counts as done, so it is never
silently dropped and never blocks later transitions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

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
        Publishes a delivery that failed after its last attempt; awaited
        before ``on_done``, so a failure is recorded before it counts as done.
    """

    def __init__(
        self,
        sinks: Sequence[Sink],
        on_done: Callable[[Delivery], None],
        dead_letter: Callable[[AlertDeadLetter], Awaitable[None]],
    ) -> None:
        self.sinks = {sink.name: sink for sink in sinks}
        self.on_done = on_done
        self.dead_letter = dead_letter
        self.queues: dict[str, asyncio.Queue[tuple[int, AlertEvent]]] = {
            name: asyncio.Queue() for name in self.sinks
        }
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
            self.queues[name].put_nowait((owner, event))

    def depths(self) -> dict[str, int]:
        """Transitions waiting, by sink."""
        return {name: queue.qsize() for name, queue in self.queues.items()}

    async def _run(self, name: str) -> None:
        sink, queue = self.sinks[name], self.queues[name]
        while True:
            owner, event = await queue.get()
            try:
                attempts = await sink.deliver(event)
                outcome = "delivered"
            except Exception as error:  # a sink's bug must not kill its queue
                attempts, outcome = _attempts(error), "dead_lettered"
                # Only DeliveryFailedError messages are known to be free of secrets.
                reason = str(error) if isinstance(error, DeliveryFailedError) else repr(type(error))
                logger.error("alert %s to sink %s failed: %s", event.idempotency_key, name, reason)
                await self.dead_letter(
                    AlertDeadLetter(
                        sink=name,
                        attempts=attempts,
                        error=reason,
                        alert=event.model_dump(mode="json"),
                    )
                )
            self.on_done(Delivery(owner, event, name, outcome, attempts))

    async def close(self) -> None:
        """Stop the tasks and close the sinks."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for sink in self.sinks.values():
            await sink.close()


def _attempts(error: Exception) -> int:
    return error.attempts if isinstance(error, DeliveryFailedError) else 1
