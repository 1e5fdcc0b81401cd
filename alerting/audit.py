"""The built-in sinks: the alerts topic (audit log) and the JSONL drift log.

Both take every transition, pending and cleared ones included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from alerting.sink import DeliveryFailedError, RetryPolicy
from schemas.alerts import AlertEvent


class AuditLogSink:
    """Publishes each transition to the alerts topic through ``publish(key, value)``."""

    name = "audit"
    retry = RetryPolicy()

    def __init__(self, publish: Callable[[bytes, bytes], Awaitable[None]]) -> None:
        self.publish = publish

    def accepts(self, event: AlertEvent) -> bool:
        """Every transition."""
        return True

    async def deliver(self, event: AlertEvent) -> int:
        """Publish (the producer retries on its own)."""
        try:
            await self.publish(event.key(), event.to_json())
        except Exception as error:  # a Kafka error must become a dead letter, not a crash
            raise DeliveryFailedError(f"alerts topic: {error}", 1) from error
        return 1

    async def close(self) -> None:
        """Nothing to release."""


class DriftLogSink:
    """Appends each transition as one JSON line to a file.

    Examples
    --------
    >>> import asyncio, tempfile
    >>> from pathlib import Path
    >>> from schemas.alerts import AlertEvent
    >>> path = Path(tempfile.mkdtemp()) / "drift.jsonl"
    >>> event = AlertEvent(fingerprint="f", sequence=1, status="firing",
    ...     previous_status="inactive", rule="r", kind="dataset_drift", severity="critical",
    ...     model="m", summary="s", at="2026-11-23T10:00:00Z")
    >>> asyncio.run(DriftLogSink(path).deliver(event))
    1
    >>> path.read_text().count("\\n"), '"idempotency_key":"f:1"' in path.read_text()
    (1, True)
    """

    name = "drift_log"
    retry = RetryPolicy()

    def __init__(self, path: Path) -> None:
        self.path = path

    def accepts(self, event: AlertEvent) -> bool:
        """Every transition."""
        return True

    async def deliver(self, event: AlertEvent) -> int:
        """Append one line (in a thread: file I/O must not stall the event loop)."""
        line = event.to_json() + b"\n"
        try:
            await asyncio.to_thread(self._append, line)
        except OSError as error:
            raise DeliveryFailedError(f"drift log {self.path}: {error.strerror}", 1) from error
        return 1

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as file:
            file.write(line)

    async def close(self) -> None:
        """Nothing to release."""
