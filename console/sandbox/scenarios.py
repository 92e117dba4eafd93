"""Failure scenarios, the traffic segments, and the ground truth the traffic is labelled with.

The scenario lives in ``scenario.json`` in the state directory; the model
servers and the traffic generator re-read it when it changes, so a switch
takes effect within a second.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from console.sandbox.names import SCENARIOS  # the one list of names (the CLI's parser reads it alone)

REGIONS = ("eu", "us")
PLATFORMS = ("ios", "android", "web")
SEGMENTS = tuple(f"{r}-{p}" for r in REGIONS for p in PLATFORMS)
FEATURES = ("amount", "velocity", "account_age", "hour")

# The true relation the labels follow, and the drifted one in a drifting segment.
TRUE_WEIGHTS = (2.0, 1.5, -1.0, 0.5)
TRUE_BIAS = -0.5
DRIFT_WEIGHTS = (-2.0, -1.5, 1.0, 0.5)
LABEL_NOISE = 0.3

REGRESSION_SEGMENTS = ("eu-android", "us-web")
DRIFT_SEGMENTS = ("us-ios",)
SHADOW_DISAGREE_SEGMENTS = ("us-android",)

VERSION_FAULTS = ("regression", "latency", "outage", "broken-predictions", "shadow-disagree", "shadow-slow")
"""Scenarios that hit one version (their target), in some segments or all."""

TARGETS = {"regression": "challenger", "latency": "challenger", "outage": "challenger",
           "broken-predictions": "champion", "champion-down": "champion",
           "shadow-disagree": "shadow", "shadow-slow": "shadow"}
"""The alias whose version a scenario hits when no version is named."""

FEATURE_BUG = "feature-bug"
"""A feature release breaks every version alike: the sandbox applies Feast release ``cents`` (no target version)."""


@dataclass(frozen=True)
class Scenario:
    """What is going wrong, where, and to which version."""

    name: str = "healthy"
    target_version: str | None = None
    segments: tuple[str, ...] = ()
    since: float = field(default_factory=time.time)

    def affects(self, version: str, segment: str) -> bool:
        """Whether a version-specific fault applies to this version and segment."""
        if self.name not in VERSION_FAULTS or version != self.target_version:
            return False
        return not self.segments or segment in self.segments

    def drifting(self, segment: str) -> bool:
        """Whether the data in a segment has drifted (every version alike)."""
        return self.name == "drift" and segment in self.segments


def make_scenario(name: str, target: str | None) -> Scenario:
    """The scenario called ``name``, aimed at ``target`` (the version it hits) where it has one."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    if name == "regression":
        return Scenario(name, target, REGRESSION_SEGMENTS)
    if name == "drift":
        return Scenario(name, None, DRIFT_SEGMENTS)
    if name == "shadow-disagree":
        return Scenario(name, target, SHADOW_DISAGREE_SEGMENTS)
    if name in TARGETS:
        return Scenario(name, target, ())
    if name == FEATURE_BUG:
        return Scenario(name, None, ())
    return Scenario("healthy")


def write_scenario(state_dir: Path, scenario: Scenario) -> None:
    """Write the scenario atomically (readers never see half a file)."""
    path = state_dir / "scenario.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(scenario)), encoding="utf-8")
    os.replace(tmp, path)


class ScenarioWatcher:
    """Re-reads ``scenario.json`` at most every ``interval`` seconds when it changed."""

    def __init__(self, state_dir: Path, interval: float = 0.5) -> None:
        self.path = state_dir / "scenario.json"
        self.interval = interval
        self._checked = 0.0
        self._mtime = None
        self.current = Scenario("healthy")

    def get(self) -> Scenario:
        """The scenario in force."""
        now = time.monotonic()
        if now - self._checked >= self.interval:
            self._checked = now
            try:
                mtime = self.path.stat().st_mtime_ns
                if mtime != self._mtime:
                    data = json.loads(self.path.read_text(encoding="utf-8"))
                    data["segments"] = tuple(data.get("segments") or ())
                    self.current = Scenario(**data)
                    self._mtime = mtime
            except (OSError, ValueError, TypeError):
                pass
        return self.current


def true_label(features: dict[str, float], drifted: bool, rng: random.Random) -> int:
    """The label the world assigns (with noise); a drifted segment follows another relation."""
    weights = DRIFT_WEIGHTS if drifted else TRUE_WEIGHTS
    z = sum(w * features[f] for w, f in zip(weights, FEATURES, strict=True)) + TRUE_BIAS
    return 1 if z + rng.gauss(0.0, LABEL_NOISE) > 0 else 0


def random_features(rng: random.Random) -> dict[str, float]:
    """One request's features."""
    return {f: round(rng.gauss(0.0, 1.0), 4) for f in FEATURES}


def sigmoid(z: float) -> float:
    """The logistic function, safe for large inputs."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
