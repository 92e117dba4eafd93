"""Feature health and the diagnosis that tells a feature bug from drift and from a model regression.

Three questions, answered from what the model's servers report:

- **Are a version's inputs healthy?** Each input feature is observed into a
  histogram whose bucket bounds sit at the feature's training quantiles
  (:data:`PROBABILITY_LADDER`, then +Inf), so the training distribution puts a
  known share in every bucket. :func:`judge_inputs` compares the window's shares
  with those: the population-stability index, the share outside the training
  range, and the share of missing values.
- **Does every version consume what its registry tag declares?**
  :func:`binding_findings` compares the declared feature bindings with the ones
  the servers report.
- **Who is to blame for a breach?** :func:`diagnose` reads which versions breach
  where, their inputs and their bindings: the model (one version breaches, others
  on the same traffic do not), the world (every version breaches alike, no
  feature release), a feature release (every version on a feature view version
  that landed minutes ago breaches, its inputs abnormal), or not sure, saying
  what would settle it.

Pure: the adapters read Prometheus and the feature store, this module only decides.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from console.domain.stats import binomial_tail_at_least, chi_square_survival
from console.domain.versions import version_sort_key

PROBABILITY_LADDER: tuple[float, ...] = (0.005, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.995)
"""The training quantiles a feature histogram's bucket bounds sit at (then +Inf).

The expected shares are the differences: 0.005, 0.095, 0.1 x8, 0.095, 0.005."""

EXPECTED_SHARES: tuple[float, ...] = tuple(
    upper - lower for lower, upper in zip((0.0, *PROBABILITY_LADDER), (*PROBABILITY_LADDER, 1.0), strict=True)
)
"""The share of training values in each of the twelve buckets (the last one above p99.5)."""

EXPECTED_OUT_OF_RANGE = EXPECTED_SHARES[0] + EXPECTED_SHARES[-1]
"""The share of training values below p0.5 or above p99.5: 1 %."""

PSI_FLOOR = 1e-4
"""The share an empty bucket counts as in the PSI (0.01 %, one value in 10,000).

An empty bucket's term ``(p - q) * ln(p / q)`` is infinite at ``p = 0``; flooring
``p`` keeps it finite and still large (0.69 for a 10 % bucket), so a window that
empties part of the range reads as the shift it is, while a chance-empty tail
bucket (0.5 % expected) adds only 0.02. The floor is below any share a window of
up to 10,000 values can show, so it never hides a bucket that holds a value."""


class Health(StrEnum):
    """One input feature's health over a window."""

    NORMAL = "normal"
    ABNORMAL = "abnormal"
    NO_DATA = "no data"


@dataclass(frozen=True)
class HealthCriteria:
    """When an input feature's window reads abnormal, or too thin to judge.

    Attributes:
        psi_max: a population-stability index above it is abnormal.
        out_of_range_max: a share below p0.5 or above p99.5 above it is abnormal (training: 1 %).
        missing_max: a share of missing values above it is abnormal.
        min_count: fewer (non-missing) values in the window are no data.
        confidence: a shift is abnormal only when chance explains it with a probability under
            ``1 - confidence`` (a chi-square goodness-of-fit test for the distribution, an exact
            binomial test for the share outside the range): 60 values spread over 12 buckets have
            a PSI near 0.2 by chance alone, and one above 0.25 every few windows.
    """

    psi_max: float = 0.25
    out_of_range_max: float = 0.05
    missing_max: float = 0.05
    min_count: int = 50
    confidence: float = 0.999

    def __post_init__(self) -> None:
        if not self.psi_max > 0.0:
            raise ValueError(f"psi_max must be above 0, not {self.psi_max!r}")
        for name in ("out_of_range_max", "missing_max"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {getattr(self, name)!r}")
        if self.min_count < 1:
            raise ValueError(f"min_count must be at least 1, not {self.min_count!r}")
        if not 0.5 <= self.confidence < 1.0:
            raise ValueError(f"confidence must be between 0.5 and 1, not {self.confidence!r}")


@dataclass(frozen=True)
class FeatureInput:
    """One input feature's health in one (model version, segment), over a window.

    Attributes:
        version: the model version whose servers observed the values.
        segment: the traffic segment.
        feature: the input feature.
        count: values observed in the window (missing ones not included); NaN when unknown.
        psi: the population-stability index against training, ``None`` when not computed.
        out_of_range: the share below p0.5 or above p99.5, ``None`` when not computed.
        missing: the share of missing values among all values, ``None`` when not reported.
        health: normal, abnormal or no data.
        reason: one line with the figures, e.g. ``amount: PSI 4.21, 98% outside the
            training range (expected 1%), 0% missing, 412 values``.
    """

    version: str
    segment: str
    feature: str
    count: float
    psi: float | None
    out_of_range: float | None
    missing: float | None
    health: Health
    reason: str


def _percent(share: float) -> str:
    """``98%``, ``1%``, ``0.4%``: whole percents from 10 %, two significant figures below."""
    value = share * 100.0
    return f"{value:.0f}%" if value >= 10.0 or value == 0.0 else f"{value:.2g}%"


def _whole(count: float) -> str:
    """A count as people count it (``increase`` extrapolates to fractions)."""
    return f"{count:.0f}"


def _known(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def population_stability(observed: Sequence[float], expected: Sequence[float] = EXPECTED_SHARES) -> float:
    """The population-stability index ``sum((p - q) * ln(p / q))`` of observed counts against expected shares.

    Args:
        observed: counts per bucket (any scale; at least one above 0).
        expected: each bucket's expected share (all above 0).

    Empty observed buckets count as :data:`PSI_FLOOR` (see there why).
    """
    total = sum(observed)
    psi = 0.0
    for count, q in zip(observed, expected, strict=True):
        p = max(count / total, PSI_FLOOR)
        psi += (p - q) * math.log(p / q)
    return psi


def _ladder_matches(bounds: Sequence[float]) -> bool:
    """Whether sorted bucket bounds can be the training quantiles at the ladder's probabilities, plus +Inf.

    The bounds are in the feature's own units (its training quantiles), which only the server
    knows; what the console can check is their number, that they rise, and the +Inf bucket.
    """
    if len(bounds) != len(PROBABILITY_LADDER) + 1 or bounds[-1] != math.inf:
        return False
    finite = bounds[:-1]
    return all(math.isfinite(b) for b in finite) and all(a < b for a, b in zip(finite, finite[1:], strict=False))


def _describe_bounds(bounds: Sequence[float]) -> str:
    if not bounds:
        return "no buckets"
    shown = ", ".join("+Inf" if b == math.inf else f"{b:g}" for b in bounds[:4])
    return f"{len(bounds)} bucket bounds ({shown}{', ...' if len(bounds) > 4 else ''})"


def _judge_one(key: tuple[str, str, str], buckets: Sequence[tuple[float, float]] | None,
               missing_count: float | None, criteria: HealthCriteria) -> FeatureInput:
    version, segment, feature = key

    def no_data(count: float, reason: str, missing: float | None = None) -> FeatureInput:
        return FeatureInput(version, segment, feature, count, None, None, missing, Health.NO_DATA,
                            f"{feature}: {reason}")

    if buckets is None:
        return no_data(math.nan, "no data: no histogram of its values in the window")
    ordered = sorted(buckets, key=lambda bucket: bucket[0])
    bounds = [le for le, _ in ordered]
    if not _ladder_matches(bounds):
        return no_data(math.nan, f"no data: {_describe_bounds(bounds)}, not the {len(PROBABILITY_LADDER)} training "
                                 f"quantiles (at p0.005 ... p0.995) plus +Inf: cannot compare with training")
    if any(math.isnan(count) for _, count in ordered):
        return no_data(math.nan, "no data: the histogram's counts are NaN")
    # Each bucket's increase() is extrapolated on its own, so cumulative counts can dip: keep them rising,
    # as histogram_quantile does.
    cumulative: list[float] = []
    for _, count in ordered:
        cumulative.append(max(count, cumulative[-1] if cumulative else 0.0, 0.0))
    per_bucket = [upper - lower for lower, upper in zip((0.0, *cumulative[:-1]), cumulative, strict=True)]
    count = cumulative[-1]
    missing_known = _known(missing_count)
    missing_share = None
    if missing_known is not None and count + max(missing_known, 0.0) > 0.0:
        missing_share = max(missing_known, 0.0) / (count + max(missing_known, 0.0))
    missing_text = "missing not reported" if missing_share is None else f"{_percent(missing_share)} missing"

    if count < criteria.min_count:
        # Too few values for the distribution; a window where most values are missing is abnormal all the same.
        total = count + (missing_known or 0.0)
        if missing_share is not None and total >= criteria.min_count and missing_share > criteria.missing_max:
            return FeatureInput(version, segment, feature, count, None, None, missing_share, Health.ABNORMAL,
                                f"{feature}: {_percent(missing_share)} missing (> {_percent(criteria.missing_max)}), "
                                f"{_whole(count)} values")
        return no_data(count, f"too few values to judge ({_whole(count)} of ≥ {criteria.min_count} needed), "
                              f"{missing_text}", missing_share)

    psi = population_stability(per_bucket)
    outside = per_bucket[0] + per_bucket[-1]
    out_of_range = outside / count
    chance = 1.0 - criteria.confidence
    # Pearson's statistic on the bucket counts against training's shares: its p-value says whether
    # the sample could have come from training's distribution at all.
    pearson = sum((observed - count * share) ** 2 / (count * share)
                  for observed, share in zip(per_bucket, EXPECTED_SHARES, strict=True))
    fit = chi_square_survival(pearson, len(EXPECTED_SHARES) - 1)
    over: list[str] = []
    within: list[str] = []
    if psi > criteria.psi_max:
        (over if fit < chance else within).append(f"PSI > {criteria.psi_max:g}")
    if out_of_range > criteria.out_of_range_max:
        tail = binomial_tail_at_least(outside, count, EXPECTED_OUT_OF_RANGE)
        (over if tail < chance else within).append(f"outside > {_percent(criteria.out_of_range_max)}")
    if missing_share is not None and missing_share > criteria.missing_max:
        over.append(f"missing > {_percent(criteria.missing_max)}")
    reason = (f"{feature}: PSI {psi:.2f}, {_percent(out_of_range)} outside the training range "
              f"(expected {_percent(EXPECTED_OUT_OF_RANGE)}), {missing_text}, {_whole(count)} values")
    if over:
        reason += f" (abnormal: {', '.join(over)})"
    elif within:
        reason += f" ({', '.join(within)}, but within chance on {_whole(count)} values)"
    return FeatureInput(version, segment, feature, count, psi, out_of_range, missing_share,
                        Health.ABNORMAL if over else Health.NORMAL, reason)


def judge_inputs(cumulative: Mapping[tuple[str, str, str], Sequence[tuple[float, float]]],
                 missing: Mapping[tuple[str, str, str], float],
                 criteria: HealthCriteria = HealthCriteria()) -> list[FeatureInput]:
    """Judge every (version, segment, feature)'s input values over a window.

    A window is abnormal when its PSI, its share outside the training range or its
    share of missing values is above the criteria; no data when its buckets are not
    the ladder, its counts are NaN, or it holds fewer than ``min_count`` values (a
    window that thin is abnormal only when most of a large enough window is missing).

    Args:
        cumulative: (version, segment, feature) -> ``[(le, cumulative count in the window)]``,
            +Inf included, in any order (Prometheus' ``increase()`` per histogram bucket).
        missing: the same key -> missing values in the window (a key absent: not reported).
        criteria: the limits.

    Returns:
        One judgement per key of either mapping, sorted by version (numerically), segment, feature.
    """
    keys = set(cumulative) | set(missing)
    judged = [_judge_one(key, cumulative.get(key), missing.get(key), criteria) for key in keys]
    return sorted(judged, key=lambda item: (version_sort_key(item.version), item.segment, item.feature))


@dataclass(frozen=True)
class Binding:
    """What one model version consumes: declared (registry tag -> feature service) or observed (servers report it).

    Attributes:
        version: the model version.
        feature_service: the feature service it reads through.
        view: the feature view.
        view_version: ``v1``; ``""`` unknown; ``latest`` for a declared projection that follows the active version.
        udf_sha: the first 12 hex digits of the sha256 of the transformation's source; ``""`` unknown.
        since: observed: the unix time this binding was first seen.
    """

    version: str
    feature_service: str
    view: str
    view_version: str
    udf_sha: str
    since: float | None = None

    @property
    def label(self) -> str:
        """``txn_features v1 (sha 2f78b0c1e2a3)``, leaving out what is unknown."""
        text = f"{self.view} {self.view_version}" if self.view_version else self.view
        return f"{text} (sha {self.udf_sha})" if self.udf_sha else text


LATEST = "latest"
"""A declared projection's view version when it follows the view's active version."""


def binding_findings(declared: Sequence[Binding], observed: Sequence[Binding]) -> list[str]:
    """Where what the servers read differs from what the registry declares.

    One line per difference per (model version, view): another feature service,
    another view version, another transformation sha, a declaration no server
    reports, a binding reported without a declaration. A declared ``latest``
    matches any observed version of its view; shas are compared only when both
    are known, and view versions only when both are.

    Returns:
        The lines, by version (numerically), view, then as found.
    """
    by_key_declared: dict[tuple[str, str], list[Binding]] = {}
    by_key_observed: dict[tuple[str, str], list[Binding]] = {}
    for binding in declared:
        by_key_declared.setdefault((binding.version, binding.view), []).append(binding)
    for binding in observed:
        by_key_observed.setdefault((binding.version, binding.view), []).append(binding)
    findings: list[str] = []
    for key in sorted(set(by_key_declared) | set(by_key_observed),
                      key=lambda k: (version_sort_key(k[0]), k[1])):
        version, view = key
        wanted, seen = by_key_declared.get(key, []), by_key_observed.get(key, [])
        where = f"version {version}, {view}"
        if not seen:
            for item in wanted:
                findings.append(f"{where}: declared {item.label} through {item.feature_service}, "
                                f"but no server reports reading it")
            continue
        if not wanted:
            for item in _distinct(seen):
                findings.append(f"{where}: servers read {item.label} through {item.feature_service}, "
                                f"which no registry tag declares")
            continue
        lines: list[str] = []
        for want in wanted:
            for item in _distinct(seen):
                if item.feature_service != want.feature_service:
                    lines.append(f"{where}: servers read through {item.feature_service}, "
                                 f"the registry declares {want.feature_service}")
                if want.view_version and item.view_version and want.view_version != LATEST \
                        and item.view_version != want.view_version:
                    lines.append(f"{where}: servers read {item.view_version}, the registry declares "
                                 f"{want.view_version}")
                if want.udf_sha and item.udf_sha and item.udf_sha != want.udf_sha:
                    lines.append(f"{where}: servers run transformation sha {item.udf_sha}, the registry declares "
                                 f"sha {want.udf_sha}")
        findings.extend(dict.fromkeys(lines))
    return findings


def _distinct(bindings: Iterable[Binding]) -> list[Binding]:
    """One binding per (service, view version, sha), the earliest seen first."""
    kept: dict[tuple[str, str, str], Binding] = {}
    for item in sorted(bindings, key=lambda b: math.inf if b.since is None else b.since):
        kept.setdefault((item.feature_service, item.view_version, item.udf_sha), item)
    return list(kept.values())


class Cause(StrEnum):
    """Who a breach is blamed on."""

    MODEL = "model"
    WORLD = "world"
    FEATURE = "feature"
    UNSURE = "unsure"


@dataclass(frozen=True)
class Diagnosis:
    """What a breach is blamed on, the evidence, and what to do.

    Attributes:
        cause: model, world, feature or unsure.
        summary: one line for the console's overview.
        evidence: each a line with figures.
        missing: what would settle it (an unsure diagnosis always says).
        versions: the breaching versions.
        segments: the segments the diagnosis is about.
        suspect: a feature diagnosis' feature view version.
        advice: what to do.
    """

    cause: Cause
    summary: str
    evidence: tuple[str, ...]
    missing: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    suspect: Binding | None = None
    advice: str = ""

    def to_dict(self) -> dict[str, object]:
        """The stable JSON form used by ``rewind status --json``."""
        suspect: dict[str, object] | None = None
        if self.suspect is not None:
            suspect = {
                "feature_service": self.suspect.feature_service,
                "view": self.suspect.view,
                "view_version": self.suspect.view_version,
                "udf_sha": self.suspect.udf_sha,
                "since": self.suspect.since,
            }
        return {
            "cause": self.cause.value,
            "summary": self.summary,
            "evidence": list(self.evidence),
            "missing": list(self.missing),
            "versions": list(self.versions),
            "segments": list(self.segments),
            "suspect": suspect,
            "advice": self.advice,
        }


_Abnormal = Callable[[Iterable[str]], list[FeatureInput]]
"""The abnormal input windows of some versions."""
_Unsure = Callable[[str, list[str], list[str]], Diagnosis]
"""An unsure diagnosis from its summary's reason, evidence and what is missing."""


def _ago(seconds: float) -> str:
    """``45 s``, ``2 min``, ``1 h 05 min``."""
    whole = max(0, round(seconds))
    if whole < 90:
        return f"{whole} s"
    minutes = round(whole / 60)
    if minutes < 90:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d} min"


def _versions_text(versions: Iterable[str]) -> str:
    ordered = sorted(set(versions), key=version_sort_key)
    return ("version " if len(ordered) == 1 else "versions ") + ", ".join(ordered)


def _verb(versions: Iterable[str], singular: str, plural: str) -> str:
    """``singular`` for one version, ``plural`` for more."""
    return singular if len(set(versions)) == 1 else plural


def _segments_text(segments: Iterable[str]) -> str:
    return ", ".join(sorted(set(segments)))


def _by_version(versions: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(versions), key=version_sort_key))


def _worst(inputs: Iterable[FeatureInput], limit: int = 3) -> list[FeatureInput]:
    """The most abnormal inputs first: by PSI, then by the share outside the range, then missing."""
    return sorted(inputs, key=lambda i: (-(i.psi or 0.0), -(i.out_of_range or 0.0), -(i.missing or 0.0),
                                         version_sort_key(i.version), i.segment, i.feature))[:limit]


def _input_line(item: FeatureInput) -> str:
    return f"version {item.version} in {item.segment}: {item.reason}"


@dataclass(frozen=True)
class _FeatureVersion:
    """One observed feature view version, the judged model versions reading it and when it first appeared."""

    view: str
    view_version: str
    udf_sha: str
    readers: frozenset[str]
    first: Binding


def _feature_versions(observed: Sequence[Binding], judged: Iterable[str]) -> list[_FeatureVersion]:
    """Observed bindings grouped by (view, view version, sha), with the judged versions on each."""
    judged_set = set(judged)
    groups: dict[tuple[str, str, str], list[Binding]] = {}
    for binding in observed:
        groups.setdefault((binding.view, binding.view_version, binding.udf_sha), []).append(binding)
    found = []
    for (view, view_version, sha), items in sorted(groups.items()):
        readers = frozenset(b.version for b in items) & judged_set
        if not readers:
            continue
        first = min(items, key=lambda b: (math.inf if b.since is None else b.since, version_sort_key(b.version)))
        found.append(_FeatureVersion(view, view_version, sha, readers, first))
    return found


def _landed_recently(group: _FeatureVersion, now: float, recent_s: float) -> bool:
    return group.first.since is not None and now - group.first.since <= recent_s


def _landing_line(group: _FeatureVersion, now: float, recent_s: float | None = None) -> str:
    since = group.first.since
    when = "at an unknown time" if since is None else f"{_ago(now - since)} ago"
    if recent_s is not None:
        when += f" (within the last {_ago(recent_s)})"
    return (f"{group.first.label} through {group.first.feature_service} was first seen {when}; "
            f"{_versions_text(group.readers)} {_verb(group.readers, 'reads', 'read')} it")


def diagnose(breaches: Mapping[str, frozenset[str]], judged: Mapping[str, frozenset[str]],
             inputs: Sequence[FeatureInput], observed: Sequence[Binding], now: float,
             recent_s: float = 1800.0, features_known: bool = True) -> Diagnosis | None:
    """Blame a breach on the model, the world or a feature release, or say what is missing to tell.

    - **feature bug**: every judged version reading one feature view version (view,
      version, sha) breaches, each with abnormal inputs, and that feature version was
      first seen within ``recent_s`` before ``now``; it explains every breaching version
      (any others are clean). It takes precedence over drift.
    - **model regression**: in the breaching segments other judged versions do not
      breach, and the breaching versions' inputs look normal (with no feature telemetry
      at all for the model, the inputs are not checked and the comparison decides).
    - **the world changed**: in some segment every judged version breaches alike, and
      no feature version they read was first seen within ``recent_s``.
    - **not sure** otherwise, with ``missing`` saying what would settle it.

    Args:
        breaches: model version -> segments where it breaches on any metric now.
        judged: version -> segments where it has a verdict (traffic enough to judge).
        inputs: :func:`judge_inputs`' judgements.
        observed: the bindings the servers report, with ``since``.
        now: the unix time of the evaluation.
        recent_s: how recent a feature release must be to be suspected.
        features_known: False when no feature telemetry exists at all for the model.

    Returns:
        ``None`` when no version breaches.
    """
    breaching = {version: frozenset(segments) for version, segments in breaches.items() if segments}
    if not breaching:
        return None
    # A breach is a verdict: a breaching segment counts as judged even if the caller left it out.
    judged_in: dict[str, frozenset[str]] = {version: frozenset(segments) for version, segments in judged.items()
                                            if segments}
    for version, segments in breaching.items():
        judged_in[version] = judged_in.get(version, frozenset()) | segments
    breaching_versions = _by_version(breaching)
    all_segments = sorted(set().union(*breaching.values()))
    inputs_of: dict[str, list[FeatureInput]] = {}
    for item in inputs:
        inputs_of.setdefault(item.version, []).append(item)

    def abnormal(versions: Iterable[str]) -> list[FeatureInput]:
        return [i for v in versions for i in inputs_of.get(v, []) if i.health is Health.ABNORMAL]

    def unsure(summary: str, evidence: list[str], missing: list[str]) -> Diagnosis:
        return Diagnosis(Cause.UNSURE, f"not sure: {summary}", tuple(evidence), tuple(missing),
                         breaching_versions, tuple(all_segments),
                         advice="do not roll back on this alone: settle what is missing first")

    breach_lines = [f"version {v} breaches in {_segments_text(breaching[v])} "
                    f"(judged in {_segments_text(judged_in[v])})" for v in breaching_versions]

    feature_versions = _feature_versions(observed, judged_in)
    recent = [g for g in feature_versions if _landed_recently(g, now, recent_s)]

    def clean(version: str) -> bool:
        """Whether a version's inputs were judged and none is abnormal (too few values to judge is not clean)."""
        judged_inputs = [i for i in inputs_of.get(version, []) if i.health is not Health.NO_DATA]
        return bool(judged_inputs) and not abnormal([version])

    # Feature bug: every judged reader of a recent feature version breaches, their inputs abnormal: at least one
    # reader's are, and none reads clean (a small version's minute may hold too few values to judge yet).
    guilty = [g for g in recent
              if g.readers <= set(breaching) and abnormal(g.readers) and not any(clean(v) for v in g.readers)]
    explained = set().union(*(g.readers for g in guilty)) if guilty else set()
    if guilty and set(breaching) <= explained:
        return _feature_bug(guilty, breaching, judged_in, abnormal, now, recent_s)

    # A lone version: its inputs and a feature release can still blame the features (above); nothing else can.
    if len(judged_in) < 2:
        lone = breaching_versions[0]
        evidence = [*breach_lines, "no other version has a verdict (traffic enough to judge) to compare with"]
        evidence += [_input_line(i) for i in _worst(abnormal([lone]))]
        evidence += [_landing_line(g, now) for g in _feature_versions(observed, [lone])
                     if _landed_recently(g, now, recent_s)]
        return unsure(f"only version {lone} has a verdict, nothing to compare with", evidence,
                      [f"a second version with traffic enough to judge in {_segments_text(breaching[lone])}, "
                       f"to tell the model from its inputs"])

    # Per breaching segment: does every version judged there breach (alike), or do some not (a comparison)?
    common, compared, alone = [], [], []
    for segment in all_segments:
        there = {v for v, segments in judged_in.items() if segment in segments}
        breaching_there = {v for v in there if segment in breaching.get(v, frozenset())}
        if len(there) < 2:
            alone.append(segment)
        elif breaching_there == there:
            common.append(segment)
        else:
            compared.append(segment)

    if guilty:  # a recent feature version breaks its readers, but other breaching versions do not read it
        others = sorted(set(breaching) - explained, key=version_sort_key)
        return unsure(
            f"{guilty[0].first.label} looks broken, yet {_versions_text(others)} breach without it",
            [*breach_lines, *(_landing_line(g, now) for g in guilty),
             *(_input_line(i) for i in _worst(abnormal(explained)))],
            [f"why {_versions_text(others)} breach too: they do not read {guilty[0].first.label}"])

    if common and compared:
        return unsure(
            f"every version breaches in {_segments_text(common)}, only some in {_segments_text(compared)}",
            breach_lines,
            [f"whether the breaches in {_segments_text(compared)} are the versions' own (some versions pass "
             f"there) or the change in {_segments_text(common)} spreading: watch a few more windows"])

    if compared:
        return _regression(compared, breaching, judged_in, inputs_of, feature_versions, recent, now,
                           features_known, breach_lines, unsure)

    if common:
        return _drift(common, judged_in, inputs_of, abnormal, feature_versions, recent, now, recent_s,
                      features_known, breach_lines, unsure)

    return unsure(f"no other version has a verdict in {_segments_text(alone)}", breach_lines,
                  [f"another version with traffic enough to judge in {_segments_text(alone)}, to compare with"])


def _feature_bug(guilty: list[_FeatureVersion], breaching: Mapping[str, frozenset[str]],
                 judged_in: Mapping[str, frozenset[str]], abnormal: _Abnormal, now: float,
                 recent_s: float) -> Diagnosis:
    suspect = max(guilty, key=lambda g: (len(g.readers), g.first.since or 0.0))
    readers = _by_version(set().union(*(g.readers for g in guilty)))
    segments = sorted(set().union(*(breaching[v] for v in readers)))
    clean = _by_version(set(judged_in) - set(readers))
    evidence = [
        f"{_versions_text(readers)} read {suspect.first.label} and every one of them breaches, "
        f"in {_segments_text(segments)}",
        *(_landing_line(g, now, recent_s) for g in guilty),
        *(_input_line(i) for i in _worst(abnormal(readers))),
    ]
    if clean:
        evidence.append(f"{_versions_text(clean)} {_verb(clean, 'reads', 'read')} other feature versions and "
                        f"{_verb(clean, 'does', 'do')} not breach")
    label = suspect.first.label
    return Diagnosis(
        Cause.FEATURE,
        f"feature bug: {label} — every version on it breaches; roll the features back, not the model",
        tuple(evidence), (), readers, tuple(segments), suspect.first,
        advice=(f"do not roll back the model: every version reading {label} breaches alike; roll the features "
                f"back with `rewind features rollback`"),
    )


def _regression(compared: list[str], breaching: Mapping[str, frozenset[str]],
                judged_in: Mapping[str, frozenset[str]], inputs_of: Mapping[str, list[FeatureInput]],
                feature_versions: list[_FeatureVersion], recent: list[_FeatureVersion], now: float,
                features_known: bool, breach_lines: list[str], unsure: _Unsure) -> Diagnosis:
    culprits = _by_version(v for v, segments in breaching.items() if segments & set(compared))
    passing = _by_version(v for v, segments in judged_in.items()
                          if (segments & set(compared)) - breaching.get(v, frozenset()))
    evidence = [*breach_lines,
                f"{_versions_text(passing)} {'passes' if len(passing) == 1 else 'pass'} in "
                f"{_segments_text(compared)} on the same traffic"]
    own = [i for v in culprits for i in inputs_of.get(v, [])]
    bad = [i for i in own if i.health is Health.ABNORMAL]
    if bad:
        return unsure(f"{_versions_text(culprits)} {_verb(culprits, 'breaches', 'breach')} alone, "
                      f"but {_verb(culprits, 'its', 'their')} inputs are abnormal",
                      [*evidence, *(_input_line(i) for i in _worst(bad))],
                      [f"why {_versions_text(culprits)}'s inputs are abnormal while other versions' are not: "
                       f"compare the feature bindings they read (binding findings)"])
    fresh = [g for g in recent if g.readers & set(culprits) and not g.readers & set(passing)]
    if fresh:
        return unsure(f"{fresh[0].first.label} landed recently, yet inputs look normal",
                      [*evidence, *(_landing_line(g, now) for g in fresh)],
                      [f"whether {fresh[0].first.label}'s transformation changed meaning without shifting the "
                       f"distribution: diff its source against the previous version"])
    if features_known:
        if not any(i.health is Health.NORMAL for i in own):
            thin = [_input_line(i) for i in own if i.health is Health.NO_DATA][:3]
            return unsure(f"{_versions_text(culprits)} {_verb(culprits, 'breaches', 'breach')} alone, "
                          f"inputs too thin to judge", evidence + thin,
                          [f"input telemetry with enough values from {_versions_text(culprits)}'s servers"
                           + (f" ({thin[0]})" if thin else " (none reported)")])
        evidence.append(f"inputs look normal: {sum(i.health is Health.NORMAL for i in own)} of {len(own)} "
                        f"feature windows of {_versions_text(culprits)} within limits")
    else:
        evidence.append("no feature telemetry for this model: inputs not checked")
    shown = ", ".join(culprits)
    summary = (f"model regression: version{'s' if len(culprits) > 1 else ''} {shown} breach"
               f"{'es' if len(culprits) == 1 else ''} in {_segments_text(compared)}, other versions pass")
    return Diagnosis(Cause.MODEL, summary, tuple(evidence), (), culprits, tuple(compared),
                     advice=f"roll back {_versions_text(culprits)} (`rewind rollback`): "
                            f"{_versions_text(passing)} {_verb(passing, 'serves', 'serve')} the same traffic "
                            f"within limits")


def _drift(common: list[str], judged_in: Mapping[str, frozenset[str]],
           inputs_of: Mapping[str, list[FeatureInput]], abnormal: _Abnormal,
           feature_versions: list[_FeatureVersion], recent: list[_FeatureVersion], now: float, recent_s: float,
           features_known: bool, breach_lines: list[str], unsure: _Unsure) -> Diagnosis:
    versions = _by_version(v for v, segments in judged_in.items() if segments & set(common))
    alike = f"every judged version ({', '.join(versions)}) breaches in {_segments_text(common)}"
    evidence = [alike, *breach_lines]
    if not features_known:
        return unsure("no feature telemetry: cannot tell drift from a feature bug", evidence,
                      ["feature telemetry (input histograms and the feature versions servers read): "
                       "without it a feature release breaks every version alike, as drift does"])
    if not any(g.readers & set(versions) for g in feature_versions):
        return unsure("no server reports its feature versions: cannot rule out a feature release", evidence,
                      ["which feature view versions the servers read, and since when"])
    recent_here = [g for g in recent if g.readers & set(versions)]
    if recent_here:
        own = [i for v in versions for i in inputs_of.get(v, [])]
        thin = [i for i in own if i.health is Health.NO_DATA]
        bad = [i for i in own if i.health is Health.ABNORMAL]
        landing = [_landing_line(g, now) for g in recent_here]
        if bad:
            readers = set().union(*(g.readers for g in recent_here))
            return unsure(f"{recent_here[0].first.label} landed recently; inputs shift, but not only on it",
                          [*evidence, *landing, *(_input_line(i) for i in _worst(bad))],
                          [f"whether the versions not reading it ({_versions_text(set(versions) - readers)}) "
                           f"shift alike (drift) or not (the feature release)"
                           if set(versions) - readers else
                           "which of the recent feature versions' readers have abnormal inputs"])
        if thin and not any(i.health is Health.NORMAL for i in own):
            return unsure("a feature version landed recently and inputs are too thin to judge",
                          [*evidence, *landing, *(_input_line(i) for i in thin[:3])],
                          [f"enough input values to judge ({_input_line(thin[0])})"])
        return unsure(f"{recent_here[0].first.label} landed recently, but inputs look normal",
                      [*evidence, *landing],
                      [f"whether {recent_here[0].first.label}'s transformation changed meaning without shifting "
                       f"the distribution: diff its source against the previous version"])
    shifted = abnormal(versions)
    if shifted:
        evidence += [f"inputs shift, as drift does: {_input_line(i)}" for i in _worst(shifted)]
    else:
        evidence.append("inputs look normal: the relation between inputs and outcomes changed, not the inputs")
    evidence.append(f"no feature version they read was first seen within the last {_ago(recent_s)}")
    return Diagnosis(Cause.WORLD, f"the world changed: every version breaches alike in {_segments_text(common)}",
                     tuple(evidence), (), versions, tuple(common),
                     advice="do not roll back the model: every version breaches alike, an older one would too; "
                            "retrain or adjust thresholds for the drifted segments")


def transformation_diff(old: str, new: str, old_label: str, new_label: str) -> list[str]:
    """The unified diff of two transformation sources, line by line without trailing newlines."""
    import difflib  # only a preview or a diff needs it: not on the status path

    return list(difflib.unified_diff(old.splitlines(), new.splitlines(), fromfile=old_label, tofile=new_label,
                                     lineterm=""))
