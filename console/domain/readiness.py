"""Rollback readiness: conditions measured against the real systems before an incident needs them.

Each condition has the shape of a Kubernetes condition: a type, a status that is
``true``, ``false`` or ``unknown`` ("could not evaluate" is never a pass), a
machine-readable reason in CamelCase, a message stating what was *measured*, and
how to fix it. A model is READY when every condition is true or waived; a false
condition makes it NOT READY (exit 1), and an unknown one, with nothing false,
makes the answer unknown (exit 2). A waiver carries a reason and an expiry, and is
listed in every output; an expired waiver waives nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

DEPLOYABLE = "PreviousVersionDeployable"
RUNBOOK = "RollbackRunbook"
METRICS_FRESH = "SegmentMetricsFresh"
ALERTS = "AlertsCoverMetrics"
OWNER = "OwnerOnCall"
FALLBACK = "FallbackReady"
FEATURES = "FeaturesPinned"
CONDITION_TYPES = (DEPLOYABLE, RUNBOOK, METRICS_FRESH, ALERTS, OWNER, FALLBACK, FEATURES)
"""Every condition, in the order they are checked and shown."""

DRILL_MAX_S = 600.0
"""A drill must reach a verified rollback this fast ("if your rollback takes more than ten minutes, you don't
have rollback: you have hope")."""
DRILL_MAX_AGE_S = 30 * 86400.0
"""A drill older than this says little about today's systems and people."""
FRESH_MAX_AGE_S = 30.0
"""A series whose newest sample is older than this is not fresh enough to judge an incident on."""


class Status(StrEnum):
    """A condition's status: measured true, measured false, or not measured."""

    TRUE = "true"
    FALSE = "false"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Waiver:
    """A condition a person accepted as not holding, for a while, with a reason.

    Attributes:
        model: the model.
        condition: the condition's type.
        reason: why it may be waived.
        expires_at: when the waiver ends (ISO 8601, UTC).
        by: who waived it.
        at: when (ISO 8601, UTC).
    """

    model: str
    condition: str
    reason: str
    expires_at: str
    by: str
    at: str

    def active(self, now: datetime) -> bool:
        """Whether the waiver still holds at ``now``."""
        return datetime.fromisoformat(self.expires_at) > now

    def to_dict(self) -> dict[str, str]:
        """The waiver as a JSON object."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Condition:
    """One readiness condition as measured.

    Attributes:
        type: what is checked (``PreviousVersionDeployable``...).
        status: true, false, or unknown (could not be evaluated).
        reason: a CamelCase reason a program can rely on (never empty).
        message: what was measured, in words.
        remedy: how to make it true ("" when it is).
        measured: the measured values, for programs.
        waiver: the active waiver of a condition that does not hold, if any.
    """

    type: str
    status: Status
    reason: str
    message: str
    remedy: str = ""
    measured: dict[str, object] = field(default_factory=dict)
    waiver: Waiver | None = None

    @property
    def holds(self) -> bool:
        """True, or waived."""
        return self.status is Status.TRUE or self.waiver is not None

    def to_dict(self) -> dict[str, object]:
        """The condition as a JSON object: status and reason apart from the message, so a pass never reads
        as a finding and a finding never as a pass."""
        return {"type": self.type, "status": self.status.value, "reason": self.reason, "message": self.message,
                "remedy": self.remedy, "measured": self.measured,
                "waived": self.waiver.to_dict() if self.waiver else None}


def holds(kind: str, reason: str, message: str, **measured: object) -> Condition:
    """A condition measured true."""
    return Condition(kind, Status.TRUE, reason, message, "", dict(measured))


def fails(kind: str, reason: str, message: str, remedy: str, **measured: object) -> Condition:
    """A condition measured false."""
    return Condition(kind, Status.FALSE, reason, message, remedy, dict(measured))


def unknown(kind: str, reason: str, message: str, remedy: str, **measured: object) -> Condition:
    """A condition that could not be measured: never a pass."""
    return Condition(kind, Status.UNKNOWN, reason, message, remedy, dict(measured))


@dataclass(frozen=True)
class Report:
    """A model's readiness: its conditions, and the waivers that apply.

    Attributes:
        model: the model.
        conditions: every condition checked, in :data:`CONDITION_TYPES` order.
        waivers: every active waiver of the model (also those of conditions that hold now).
        checked_at: when it was measured (ISO 8601, UTC).
    """

    model: str
    conditions: tuple[Condition, ...]
    waivers: tuple[Waiver, ...]
    checked_at: str

    def count(self, status: Status) -> int:
        """How many conditions have ``status``."""
        return sum(1 for c in self.conditions if c.status is status)

    @property
    def ready(self) -> bool:
        """Every condition true or waived."""
        return all(c.holds for c in self.conditions)

    @property
    def exit_code(self) -> int:
        """0 ready, 1 not ready (a condition false), 2 unknown (one could not be measured, none false)."""
        if self.ready:
            return 0
        return 1 if any(c.status is Status.FALSE and not c.holds for c in self.conditions) else 2

    def verdict(self) -> str:
        """``READY``, ``NOT READY (4/6 true, 1 unknown)`` or ``UNKNOWN (5/6 true, 1 unknown)``."""
        waived = sum(1 for c in self.conditions if c.waiver is not None)
        tally = f"{self.count(Status.TRUE)}/{len(self.conditions)} true"
        if self.count(Status.UNKNOWN):
            tally += f", {self.count(Status.UNKNOWN)} unknown"
        if waived:
            tally += f", {waived} waived"
        word = {0: "READY", 1: "NOT READY", 2: "UNKNOWN"}[self.exit_code]
        return word if self.exit_code == 0 and not waived else f"{word} ({tally})"

    def to_dict(self) -> dict[str, object]:
        """The report as a JSON object."""
        return {"model": self.model, "ready": self.ready, "verdict": self.verdict(), "exit_code": self.exit_code,
                "checked_at": self.checked_at,
                "summary": {s.value: self.count(s) for s in Status} | {"conditions": len(self.conditions)},
                "conditions": [c.to_dict() for c in self.conditions],
                "waivers": [w.to_dict() for w in self.waivers]}


def apply_waivers(conditions: Sequence[Condition], waivers: Sequence[Waiver], now: datetime) -> tuple[
        tuple[Condition, ...], tuple[Waiver, ...]]:
    """The conditions with the active waivers attached to those that do not hold, and the active waivers.

    The latest active waiver of a condition wins; an expired one waives nothing and is not listed.
    """
    active = {}
    for waiver in sorted(waivers, key=lambda w: w.at):
        if waiver.active(now):
            active[waiver.condition] = waiver
    waived = tuple(
        Condition(c.type, c.status, c.reason, c.message, c.remedy, c.measured, active[c.type])
        if c.status is not Status.TRUE and c.type in active else c
        for c in conditions
    )
    return waived, tuple(active.values())


def newest_drill(drills: Sequence[tuple[float, float | None]], now: float, max_s: float = DRILL_MAX_S,
                 max_age_s: float = DRILL_MAX_AGE_S) -> Condition | None:
    """The runbook's drill condition from ``(started, seconds to verified or None)`` pairs; ``None``: no drill."""
    if not drills:
        return None
    started, took = max(drills, key=lambda d: d[0])
    age_days = (now - started) / 86400
    measured: dict[str, object] = {"drill_age_days": round(age_days, 1), "time_to_verified_s": took}
    if now - started > max_age_s:
        return fails(RUNBOOK, "DrillStale", f"the latest drill ran {age_days:.0f} days ago",
                     "drill it again: rewind drill PLAYBOOK --model MODEL", **measured)
    if took is None:
        return fails(RUNBOOK, "DrillNotVerified", "the latest drill did not reach a verified rollback",
                     "find why in its post-mortem (rewind incident export), fix it, drill again", **measured)
    if took > max_s:
        return fails(RUNBOOK, "DrillTooSlow", f"the latest drill took {took / 60:.1f} min to a verified rollback "
                     f"(at most {max_s / 60:.0f} min)", "shorten the playbook's waits and gates, drill again",
                     **measured)
    return holds(RUNBOOK, "Drilled", f"drilled {age_days:.0f} days ago, verified in {took:.0f} s", **measured)


@dataclass(frozen=True)
class Owner:
    """Who owns a model (see :class:`console.config.OwnerConfig`)."""

    name: str = ""
    contact: str = ""
    oncall: str = ""
    escalation: tuple[str, ...] = ()


def owner_condition(owner: Owner | None, webhooks: Sequence[str]) -> Condition:
    """A named owner with a contact, an on-call channel Rewind can post to, and someone paged next."""
    remedy = "set owners.MODEL in the config: name, contact, oncall (a notify webhook), escalation"
    if owner is None:
        return fails(OWNER, "NoOwner", "no owner is configured", remedy)
    measured = {"name": owner.name, "oncall": owner.oncall, "escalation": list(owner.escalation)}
    if not owner.name.strip():
        return fails(OWNER, "OwnerUnnamed", "the owner has no name: a person answers pages, not a blank",
                     remedy, **measured)
    if not owner.contact.strip():
        return fails(OWNER, "NoContact", f"{owner.name} has no contact", remedy, **measured)
    if not owner.oncall.strip():
        return fails(OWNER, "NoOncallChannel", f"{owner.name} has no on-call channel", remedy, **measured)
    if owner.oncall not in webhooks:
        return fails(OWNER, "OncallChannelUnknown", f"the on-call channel {owner.oncall!r} is not a configured "
                     "webhook", "add it under notify.webhooks, or name one that is", **measured)
    if not [name for name in owner.escalation if name.strip()]:
        return fails(OWNER, "NoEscalation", f"nobody is paged after {owner.name}", remedy, **measured)
    return holds(OWNER, "OwnerOnCall", f"{owner.name} ({owner.contact}), on call through {owner.oncall}, then "
                 f"{', '.join(owner.escalation)}", **measured)


def freshness_condition(serving: Sequence[str], segments: Sequence[str],
                        newest: dict[tuple[str, str], float] | None, at: float, without_data: Sequence[str],
                        fresh_s: float = FRESH_MAX_AGE_S) -> Condition:
    """Every serving version's series fresh in every segment, and every catalogue metric with a value there.

    Args:
        serving: the versions that take traffic now.
        segments: the model's segments.
        newest: (version, segment) -> the newest sample's time (``None``: ages not read, values only).
        at: when that was read.
        without_data: ``metric vN segment`` for each catalogue cell of a serving version without a value.
        fresh_s: the oldest a newest sample may be.
    """
    remedy = "check the scrape targets of the model's servers (Prometheus /targets) and the exporters"
    if not serving:
        return fails(METRICS_FRESH, "NothingServing", "no version takes traffic: nothing to judge", remedy)
    if not segments:
        return fails(METRICS_FRESH, "NoSeries", "Prometheus has no series of the model", remedy)
    stale = []
    oldest = 0.0
    ages = newest or {}
    for version in serving if newest is not None else ():
        for segment in segments:
            sampled = ages.get((version, segment))
            age = None if sampled is None else max(0.0, at - sampled)
            if age is None or age > fresh_s:
                stale.append(f"v{version} {segment}" + ("" if age is None else f" ({age:.0f}s old)"))
            else:
                oldest = max(oldest, age)
    measured: dict[str, object] = {"serving": list(serving), "segments": len(segments), "stale": stale,
                                   "without_data": list(without_data)}
    if stale:
        shown = ", ".join(stale[:4]) + (f" and {len(stale) - 4} more" if len(stale) > 4 else "")
        return fails(METRICS_FRESH, "SeriesStale", f"no sample in the last {fresh_s:.0f}s for {shown}", remedy,
                     **measured)
    if without_data:
        shown = ", ".join(without_data[:4]) + (f" and {len(without_data) - 4} more" if len(without_data) > 4 else "")
        return fails(METRICS_FRESH, "MetricWithoutData", f"no value for {shown}",
                     "check the catalogue's queries against the series (rewind status shows each query)", **measured)
    values = f"every metric has a value for v{', v'.join(serving)} in {len(segments)} segments"
    if newest is None:
        return holds(METRICS_FRESH, "Fresh", f"{values} (sample ages not read: readiness.freshness_series is unset)",
                     **measured)
    measured["oldest_s"] = round(oldest, 1)
    return holds(METRICS_FRESH, "Fresh", f"{values}; the newest samples are at most {oldest:.0f}s old", **measured)


def alerts_condition(uncovered: Sequence[str], covering: dict[str, list[str]], unrouted: Sequence[str],
                     alertmanagers: Sequence[str]) -> Condition:
    """Every judged metric has an alerting rule, Prometheus sends alerts somewhere, and each rule's alerts
    reach a receiver that notifies.

    Args:
        uncovered: judged metrics without a rule.
        covering: each covered metric with its rules' names.
        unrouted: ``rule → receiver`` for each rule whose alerts reach a receiver that sends nowhere.
        alertmanagers: where Prometheus sends its alerts.
    """
    measured: dict[str, object] = {"rules": covering, "uncovered": list(uncovered), "alertmanagers": len(alertmanagers)}
    if uncovered:
        return fails(ALERTS, "MetricsWithoutRule", f"no alerting rule watches {', '.join(uncovered)}",
                     "add rules labelled model and rewind_metric (the sandbox's rules.yml is an example), "
                     "then reload Prometheus", **measured)
    if not alertmanagers:
        return fails(ALERTS, "NoAlertmanager", "Prometheus sends its alerts to no Alertmanager",
                     "set alerting.alertmanagers in prometheus.yml", **measured)
    if unrouted:
        return fails(ALERTS, "RouteGoesNowhere", f"alerts reach a receiver that notifies nobody: {', '.join(unrouted)}",
                     "route them to a receiver with a webhook or pager integration", **measured)
    rules = sum(len(names) for names in covering.values())
    return holds(ALERTS, "Covered", f"{rules} rules watch {len(covering)} metrics; Alertmanager routes each "
                 "to a receiver that notifies", **measured)
