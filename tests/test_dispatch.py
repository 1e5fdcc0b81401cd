"""The dispatcher's rounds: retried until delivery_timeout, in order, then dead-lettered."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from alerting.dispatch import Delivery, Dispatcher
from alerting.sink import DeliveryFailedError, RetryPolicy
from schemas.alerts import AlertDeadLetter, AlertEvent

START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
#: Rounds a few milliseconds apart, so the tests run fast on a real event loop.
QUICK = RetryPolicy(timedelta(hours=1), timedelta(milliseconds=2), timedelta(milliseconds=5))


def event(sequence: int, at: datetime = START) -> AlertEvent:
    return AlertEvent(
        fingerprint="f",
        sequence=sequence,
        status="firing",
        previous_status="pending",
        rule="drift",
        kind="feature_drift",
        severity="critical",
        model="churn",
        summary="s",
        at=at,
    )


class Clock:
    """A clock the sink moves forward: each round takes ``step``."""

    def __init__(self, step: timedelta) -> None:
        self.now = START
        self.step = step

    def __call__(self) -> datetime:
        return self.now


class FlakySink:
    """Fails its first ``failures`` rounds (3 attempts each), then delivers."""

    name = "flaky"

    def __init__(
        self, failures: int, clock: Clock, policy: RetryPolicy, *, retryable: bool = True
    ) -> None:
        self.failures = failures
        self.clock = clock
        self.retry = policy
        self.retryable = retryable
        self.rounds: list[int] = []
        self.delivered: list[int] = []

    def accepts(self, event: AlertEvent) -> bool:
        return True

    async def deliver(self, event: AlertEvent) -> int:
        self.rounds.append(event.sequence)
        self.clock.now += self.clock.step
        if len(self.rounds) <= self.failures:
            raise DeliveryFailedError("HTTP 503 Service Unavailable", 3, retryable=self.retryable)
        self.delivered.append(event.sequence)
        return 1

    async def close(self) -> None:
        pass


def run(sink: FlakySink, events: list[AlertEvent]) -> tuple[list[Delivery], list[AlertDeadLetter]]:
    """Submit ``events``, wait for them all to be done; the deliveries and dead letters."""

    async def scenario() -> tuple[list[Delivery], list[AlertDeadLetter]]:
        done: list[Delivery] = []
        letters: list[AlertDeadLetter] = []
        finished = asyncio.Event()

        def on_done(delivery: Delivery) -> None:
            done.append(delivery)
            if len(done) == len(events):
                finished.set()

        async def dead_letter(letter: AlertDeadLetter) -> None:
            letters.append(letter)

        dispatcher = Dispatcher(
            [sink], on_done, dead_letter, clock=sink.clock, rng=random.Random(0)
        )
        dispatcher.start()
        for item in events:
            dispatcher.submit(0, item, done=set())
        assert dispatcher.depths() == {"flaky": len(events)}
        await asyncio.wait_for(finished.wait(), 10)
        assert dispatcher.depths() == {"flaky": 0}
        assert dispatcher.oldest_ages() == {"flaky": 0.0}
        await dispatcher.close()
        return done, letters

    return asyncio.run(scenario())


def test_an_outage_shorter_than_the_timeout_loses_nothing_and_keeps_the_order() -> None:
    sink = FlakySink(failures=4, clock=Clock(timedelta(minutes=1)), policy=QUICK)
    done, letters = run(sink, [event(1), event(2)])
    assert letters == []
    assert [(d.event.sequence, d.outcome, d.attempts) for d in done] == [
        (1, "delivered", 4 * 3 + 1),
        (2, "delivered", 1),
    ]
    # the second transition waited behind the first: never overtook it
    assert sink.rounds == [1, 1, 1, 1, 1, 2]


def test_a_transition_is_dead_lettered_once_a_round_fails_past_the_timeout() -> None:
    # Each round takes 25 minutes of the clock; the timeout is an hour: rounds
    # end at 25, 50 and 75 minutes, and the third is the last.
    policy = RetryPolicy(timedelta(hours=1), timedelta(milliseconds=2), timedelta(milliseconds=5))
    sink = FlakySink(failures=100, clock=Clock(timedelta(minutes=25)), policy=policy)
    done, letters = run(sink, [event(1)])
    assert [(d.outcome, d.attempts) for d in done] == [("dead_lettered", 9)]
    assert len(sink.rounds) == 3
    [letter] = letters
    assert (letter.sink, letter.attempts) == ("flaky", 9)
    assert "503" in letter.error


def test_a_refusal_is_not_retried() -> None:
    sink = FlakySink(failures=1, clock=Clock(timedelta(seconds=1)), policy=QUICK, retryable=False)
    done, letters = run(sink, [event(1)])
    assert [(d.outcome, d.attempts) for d in done] == [("dead_lettered", 3)]
    assert sink.rounds == [1]
    assert len(letters) == 1


def test_a_zero_timeout_gives_up_after_one_round() -> None:
    policy = RetryPolicy(timedelta(0), timedelta(milliseconds=2), timedelta(milliseconds=5))
    sink = FlakySink(failures=1, clock=Clock(timedelta(seconds=1)), policy=policy)
    done, _ = run(sink, [event(1)])
    assert [d.outcome for d in done] == ["dead_lettered"]


def test_the_oldest_undelivered_age_is_that_of_the_oldest_transition() -> None:
    async def scenario() -> dict[str, float]:
        clock = Clock(timedelta(0))
        sink = FlakySink(failures=10**6, clock=clock, policy=QUICK)

        async def dead_letter(letter: AlertDeadLetter) -> None:
            raise AssertionError("nothing should be dead-lettered within the hour")

        dispatcher = Dispatcher([sink], lambda d: None, dead_letter, clock=clock)
        dispatcher.start()
        dispatcher.submit(0, event(1, at=START - timedelta(minutes=2)), done=set())
        dispatcher.submit(0, event(2, at=START - timedelta(minutes=1)), done=set())
        for _ in range(5000):  # bounded: at most a few seconds
            if len(sink.rounds) >= 3:
                break
            await asyncio.sleep(0.001)
        assert len(sink.rounds) >= 3, "the sink was not retried"
        ages = dispatcher.oldest_ages()
        await dispatcher.close()
        return ages

    assert asyncio.run(scenario()) == {"flaky": 120.0}
