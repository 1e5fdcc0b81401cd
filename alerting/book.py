"""The alert lifecycle: observations in, transitions (:class:`AlertEvent`) out.

One :class:`AlertBook` per input partition keeps every alert's state, the
activity clocks of the time rules, and an outbox of transitions not yet
delivered to every sink. The worker snapshots it with the partition's
state, so after a crash the book is exactly as it was when the covered
input was processed: replayed input re-creates no transition that was
already recorded, and undelivered transitions are delivered after the
restart.

Notes
-----
Each alert (one fingerprint per rule, model, version and feature) moves
``inactive → pending → firing → resolved`` (then inactive again):

- a breach of an inactive alert makes it *pending* (or *firing* at once
  when one breach is enough);
- it *fires* once ``fire_after`` of the last ``of_last`` evaluated windows
  breached, unless it resolved less than ``cooldown`` ago (it then stays
  pending until a breach after the cooldown);
- a firing alert *resolves* after ``resolve_after`` clean windows in a row;
- a pending alert whose breaches all left the ``of_last`` span is
  *cleared* without ever firing.

Each transition increments the alert's ``sequence``, so
``fingerprint:sequence`` names it uniquely for idempotent receivers. Time
rules (``no_events``, ``stalled_windows``) are judged on the worker clock
that the caller passes in; nothing here reads a clock.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from alerting.observations import Observation, window_observations
from alerting.rules import AnyRule, NoEventsRule, StalledWindowsRule, WindowRule
from monitor.stats.decision import DriftPolicy
from schemas.alerts import AlertEvent, AlertSeverity, alert_fingerprint
from schemas.outputs import WindowResult

Status = Literal["inactive", "pending", "firing"]
#: Placeholders link templates may use.
LINK_FIELDS = ("model", "model_version", "feature", "rule", "fingerprint", "window_id")


def check_link_template(template: str) -> None:
    """Raise ``ValueError`` if ``template`` uses a placeholder outside :data:`LINK_FIELDS`.

    Examples
    --------
    >>> check_link_template("http://grafana/d/x?var-model={model}")
    >>> check_link_template("http://x/{modle}")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown placeholder {modle}; use model, model_version, ...
    """
    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None and name not in LINK_FIELDS:
            raise ValueError(f"unknown placeholder {{{name}}}; use {', '.join(LINK_FIELDS)}")


@dataclass
class AlertState:
    """Where one alert is in its lifecycle."""

    rule: str
    model: str
    model_version: str | None
    feature: str | None
    status: Status = "inactive"
    history: list[bool] = field(default_factory=list)
    clean_streak: int = 0
    sequence: int = 0
    severity: AlertSeverity = "warning"
    incident_started_at: float | None = None
    resolved_at: float | None = None


@dataclass
class Activity:
    """Worker-clock times of a model version's last event and last closed window."""

    last_event_at: float
    last_window_at: float


@dataclass
class OutboxEntry:
    """A transition and the sinks that already have it."""

    event: AlertEvent
    done: set[str] = field(default_factory=set)


class AlertBook:
    """Alert states, activity clocks and undelivered transitions of one partition.

    Parameters
    ----------
    rules
        The configured rules (names unique).
    policy_for
        A model's drift policy (its thresholds are feature-drift defaults).
    links
        Link templates by name, filled per alert (see :data:`LINK_FIELDS`).
    version_ttl
        Seconds without events after which a model version is forgotten
        (its firing alerts resolve); ``None`` keeps versions forever.

    Examples
    --------
    >>> from alerting.rules import NoEventsRule
    >>> book = AlertBook([NoEventsRule(kind="no_events", name="silent", after=60)],
    ...                  lambda model: DriftPolicy())
    >>> book.observe([], [("churn", "7")], now=1000.0)
    []
    >>> [(e.status, e.summary) for e in book.tick(now=1030.0)]
    []
    >>> [(e.status, e.value) for e in book.tick(now=1075.0)]
    [('firing', 75.0)]
    >>> book.observe([], [("churn", "7")], now=1080.0)
    []
    >>> [(e.status, e.sequence) for e in book.tick(now=1081.0)]
    [('resolved', 2)]
    """

    def __init__(
        self,
        rules: Sequence[AnyRule],
        policy_for: Callable[[str], DriftPolicy],
        links: Mapping[str, str] | None = None,
        version_ttl: float | None = None,
    ) -> None:
        self.rules = {rule.name: rule for rule in rules}
        self.policy_for = policy_for
        self.links = dict(links or {})
        self.version_ttl = version_ttl
        self.alerts: dict[str, AlertState] = {}
        self.models: dict[str, float] = {}
        self.versions: dict[tuple[str, str], Activity] = {}
        self.outbox: dict[str, OutboxEntry] = {}

    # -- inputs ---------------------------------------------------------

    def observe(
        self,
        results: Sequence[WindowResult],
        active: Iterable[tuple[str, str]],
        now: float,
    ) -> list[AlertEvent]:
        """Record activity, judge closed windows; return the transitions.

        ``active`` lists the (model, version) pairs that sent events in
        this step.
        """
        for model, model_version in active:
            self.models[model] = now
            activity = self.versions.get((model, model_version))
            if activity is None:
                self.versions[model, model_version] = Activity(now, now)
            else:
                activity.last_event_at = now
        events = []
        for result in results:
            activity = self.versions.setdefault(
                (result.model, result.model_version), Activity(now, now)
            )
            activity.last_window_at = now
            policy = self.policy_for(result.model)
            for rule in self.rules.values():
                if isinstance(rule, WindowRule):
                    for observation in window_observations(rule, result, policy):
                        events.extend(self._advance(rule, observation, now))
        return events

    def tick(self, now: float) -> list[AlertEvent]:
        """Judge the time rules and forget expired versions; return the transitions."""
        events: list[AlertEvent] = []
        for rule in self.rules.values():
            if isinstance(rule, NoEventsRule):
                after = rule.after.total_seconds()
                for model, last in self.models.items():
                    if rule.applies_to(model):
                        silence = now - last
                        observation = Observation(
                            rule=rule.name,
                            model=model,
                            model_version=None,
                            feature=None,
                            breached=silence >= after,
                            severity=rule.severity,
                            detail=f"no events for {silence:.0f} s",
                            value=silence,
                            threshold=after,
                        )
                        events.extend(self._advance(rule, observation, now))
            elif isinstance(rule, StalledWindowsRule):
                after = rule.after.total_seconds()
                for (model, model_version), activity in self.versions.items():
                    if rule.applies_to(model):
                        waiting = now - activity.last_window_at
                        observation = Observation(
                            rule=rule.name,
                            model=model,
                            model_version=model_version,
                            feature=None,
                            breached=waiting >= after and now - activity.last_event_at < after,
                            severity=rule.severity,
                            detail=f"no window closed for {waiting:.0f} s",
                            value=waiting,
                            threshold=after,
                        )
                        events.extend(self._advance(rule, observation, now))
        if self.version_ttl is not None:
            events.extend(self._expire(now - self.version_ttl, now))
        return events

    def resume(self, now: float) -> None:
        """Restart the activity clocks at ``now`` (after a restore).

        Time spent down is not silence of the producers: without this, a
        worker restarting after a long outage would fire ``no_events`` for
        every model before reading the backlog.
        """
        for model in self.models:
            self.models[model] = max(self.models[model], now)
        for activity in self.versions.values():
            activity.last_event_at = max(activity.last_event_at, now)
            activity.last_window_at = max(activity.last_window_at, now)

    # -- outbox -----------------------------------------------------------

    def delivered(self, idempotency_key: str, sink: str, sinks: Iterable[str]) -> None:
        """Record that ``sink`` has a transition; drop it once every sink has it."""
        entry = self.outbox.get(idempotency_key)
        if entry is None:
            return
        entry.done.add(sink)
        if entry.done >= set(sinks):
            del self.outbox[idempotency_key]

    def attach_link(self, idempotency_key: str, name: str, url: str) -> None:
        """Add a link (e.g. a report written for the transition) before delivery."""
        entry = self.outbox.get(idempotency_key)
        if entry is not None:
            links = {**entry.event.links, name: url}
            entry.event = entry.event.model_copy(update={"links": links})

    # -- lifecycle --------------------------------------------------------

    def _advance(self, rule: AnyRule, seen: Observation, now: float) -> list[AlertEvent]:
        fingerprint = alert_fingerprint(rule.name, seen.model, seen.model_version, seen.feature)
        state = self.alerts.get(fingerprint)
        if state is None:
            if not seen.breached:
                return []
            state = self.alerts[fingerprint] = AlertState(
                rule.name, seen.model, seen.model_version, seen.feature
            )
        fire_after, span, resolve_after = (
            (rule.fire_after, rule.span, rule.resolve_after)
            if isinstance(rule, WindowRule)
            else (1, 1, 1)
        )
        state.history = [*state.history, seen.breached][-span:]
        if seen.breached:
            state.clean_streak = 0
            if state.status == "firing":
                return []
            if state.incident_started_at is None:
                state.incident_started_at = now
            cooldown = rule.cooldown.total_seconds()
            cooling = state.resolved_at is not None and now - state.resolved_at < cooldown
            if sum(state.history) >= fire_after and not cooling:
                state.severity = seen.severity
                return [self._transition(rule, state, "firing", seen, now, fingerprint)]
            if state.status == "inactive":
                state.severity = seen.severity
                return [self._transition(rule, state, "pending", seen, now, fingerprint)]
            return []
        state.clean_streak += 1
        if state.status == "firing" and state.clean_streak >= resolve_after:
            return [self._transition(rule, state, "resolved", seen, now, fingerprint)]
        if state.status == "pending" and not any(state.history):
            return [self._transition(rule, state, "cleared", seen, now, fingerprint)]
        return []

    def _transition(
        self,
        rule: AnyRule,
        state: AlertState,
        status: Literal["pending", "firing", "resolved", "cleared"],
        seen: Observation | None,
        now: float,
        fingerprint: str,
        reason: str | None = None,
    ) -> AlertEvent:
        previous = state.status
        state.sequence += 1
        started = state.incident_started_at
        event = AlertEvent(
            fingerprint=fingerprint,
            sequence=state.sequence,
            status=status,
            previous_status=previous,
            rule=rule.name,
            kind=rule.kind,
            severity=state.severity,
            model=state.model,
            model_version=state.model_version,
            feature=state.feature,
            summary=_summary(rule, state, status, seen, reason),
            at=_moment(now),
            incident_started_at=_moment(started) if started is not None else None,
            window=seen.window if seen else None,
            value=seen.value if seen else None,
            threshold=seen.threshold if seen else None,
            features=list(seen.features) if seen and status != "resolved" else [],
            links=self._links(state, fingerprint, seen),
        )
        if status in ("pending", "firing"):
            state.status = status
        else:
            state.status = "inactive"
            state.history = []
            state.clean_streak = 0
            state.incident_started_at = None
            if status == "resolved":
                state.resolved_at = now
        self.outbox[event.idempotency_key] = OutboxEntry(event)
        return event

    def _links(
        self, state: AlertState, fingerprint: str, seen: Observation | None
    ) -> dict[str, str]:
        values = {
            "model": state.model,
            "model_version": state.model_version or "",
            "feature": state.feature or "",
            "rule": state.rule,
            "fingerprint": fingerprint,
            "window_id": "" if seen is None or seen.window is None else str(seen.window.id),
        }
        return {name: template.format_map(values) for name, template in self.links.items()}

    def _expire(self, before: float, now: float) -> list[AlertEvent]:
        expired = {key for key, seen in self.versions.items() if seen.last_event_at < before}
        events = []
        for fingerprint, state in list(self.alerts.items()):
            if state.model_version is None or (state.model, state.model_version) not in expired:
                continue
            rule = self.rules.get(state.rule)
            if state.status != "inactive" and rule is not None:
                status: Literal["resolved", "cleared"] = (
                    "resolved" if state.status == "firing" else "cleared"
                )
                events.append(
                    self._transition(
                        rule, state, status, None, now, fingerprint, "model version no longer seen"
                    )
                )
            del self.alerts[fingerprint]
        for key in expired:
            del self.versions[key]
        return events

    # -- snapshots --------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """JSON-ready state; see :meth:`restore`."""
        return {
            "alerts": {
                fingerprint: {
                    "rule": s.rule,
                    "model": s.model,
                    "model_version": s.model_version,
                    "feature": s.feature,
                    "status": s.status,
                    "history": s.history,
                    "clean_streak": s.clean_streak,
                    "sequence": s.sequence,
                    "severity": s.severity,
                    "incident_started_at": s.incident_started_at,
                    "resolved_at": s.resolved_at,
                }
                for fingerprint, s in self.alerts.items()
            },
            "models": self.models,
            "versions": [
                [model, version, a.last_event_at, a.last_window_at]
                for (model, version), a in self.versions.items()
            ],
            "outbox": [
                {
                    "event": entry.event.model_dump(mode="json", exclude={"idempotency_key"}),
                    "done": sorted(entry.done),
                }
                for entry in self.outbox.values()
            ],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Load :meth:`state` output; alerts of rules no longer configured are dropped."""
        self.alerts = {
            fingerprint: AlertState(**entry)
            for fingerprint, entry in state["alerts"].items()
            if entry["rule"] in self.rules
        }
        self.models = dict(state["models"])
        self.versions = {(m, v): Activity(e, w) for m, v, e, w in state["versions"]}
        self.outbox = {}
        for item in state["outbox"]:
            event = AlertEvent.model_validate(item["event"])
            self.outbox[event.idempotency_key] = OutboxEntry(event, set(item["done"]))


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _summary(
    rule: AnyRule,
    state: AlertState,
    status: str,
    seen: Observation | None,
    reason: str | None,
) -> str:
    subject = state.model if state.model_version is None else f"{state.model} {state.model_version}"
    what = rule.kind.replace("_", " ")
    if state.feature is not None:
        what += f" on {state.feature}"
    detail = reason or (seen.detail if seen is not None else "")
    if status == "firing" and isinstance(rule, WindowRule) and rule.fire_after > 1:
        detail += f" ({sum(state.history)} of the last {rule.span} windows)"
    elif status == "resolved" and reason is None and isinstance(rule, WindowRule):
        detail = f"clean for {rule.resolve_after} window(s)"
    elif status == "pending" and seen is not None and seen.breached:
        detail += " (pending)"
    return f"{subject}: {what} {status} — {detail}"
