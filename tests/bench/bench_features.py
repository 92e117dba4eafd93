"""Issue 16's figures, on a real sandbox (Feast, MLflow, HAProxy, Prometheus, traffic).

- ``feature_bug_diagnosis_s``: from switching the scenario to ``feature-bug`` (its
  buggy transformation released to the feature store, as ``rewind sandbox scenario``
  does) to the first ``rewind status --json`` whose diagnosis says ``feature``. The
  real command is run back to back (each run is a whole process: ~2.5 s, most of it
  MLflow's import), so the figure is within one run of the truth. Target: at most 60.
- ``feature_rollback_ms``: from the confirmation (the action procedure's apply) to
  every model server reporting the pinned binding on its own ``/metrics``, polled
  every 20 ms. Median of 5 rollbacks, each undone before the next (minimum in the
  JSON). Target: at most 2000. ``feature_undo_ms`` is the same for the undo.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request

from tests.bench.sandbox_env import bench_sandbox

MODEL = "fraud-detector"
RUNS = 5
BINDING = re.compile(r'^rewind_feature_binding_info\{[^}]*feature_service="([^"]+)"', re.MULTILINE)


def _services_reported(ports: dict[str, int]) -> dict[str, set[str]]:
    """Each server's reported feature services, read from its own /metrics."""
    seen = {}
    for name, port in ports.items():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            seen[name] = set(BINDING.findall(answer.read().decode()))
    return seen


def _until_reported(ports: dict[str, int], service: str, limit_s: float = 30.0) -> float:
    """Seconds until every server reports ``service`` (and only it); raises after ``limit_s``."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        if all(found == {service} for found in _services_reported(ports).values()):
            return time.perf_counter()
        time.sleep(0.02)
    raise RuntimeError(f"the servers did not report {service} within {limit_s:g}s: {_services_reported(ports)}")


def _diagnosis_seconds(box, started: float, limit_s: float = 180.0) -> tuple[float, list[str]]:
    """Seconds from ``started`` to the first ``rewind status --json`` diagnosing a feature bug, and every poll's."""
    env = {**os.environ, "REWIND_CONFIG": str(box.config_path)}
    polls = []
    while time.perf_counter() - started < limit_s:
        done = subprocess.run([sys.executable, "-m", "console", "status", "--model", MODEL, "--json"],
                              capture_output=True, env=env, timeout=60, check=False)
        seen = "failed"
        if done.returncode == 0:
            diagnosis = json.loads(done.stdout).get("diagnosis") or {}
            seen = diagnosis.get("cause") or "none"
        polls.append(f"{time.perf_counter() - started:.1f}s {seen}")
        if seen == "feature":
            return time.perf_counter() - started, polls
    raise RuntimeError(f"no feature-bug diagnosis within {limit_s:g}s: {polls}")


def figures():
    """Yield issue 16's figures."""
    from console.domain.routing import RouterState
    from console.services.features import FeatureRollbacks, feature_signature
    from console.services.rollback import Preview, new_action_id
    from console.wiring import build_rollback_service, feature_catalog_of

    with bench_sandbox(rate=60) as (box, loaded):
        started = time.perf_counter()
        box.set_scenario("feature-bug")
        diagnosis_s, polls = _diagnosis_seconds(box, started)
        ports = {f"v{v}": p for v, p in box.load_state()["ports"]["models"].items()}
        ports["fallback"] = box.load_state()["ports"]["fallback"]
        service = build_rollback_service(loaded)
        planner = FeatureRollbacks(feature_catalog_of(service, loaded), new_action_id)
        incident = service.journal.open_incident(MODEL, "4", "feature rollback benchmark").incident_id
        rollback, undo = [], []
        for _ in range(RUNS):
            planned = planner.preview(MODEL, reason="benchmark")
            pinned = planned.plan.tag_moves[0].after
            preview = Preview(planned.plan, "benchmark", None, None, feature_signature(), RouterState(MODEL, ()),
                              planned.already, planned.details)
            confirmed = time.perf_counter()
            outcome = service.apply(preview, incident)
            assert outcome.status == "applied", outcome.message
            rollback.append(_until_reported(ports, pinned) - confirmed)
            back, _ = service.undo_preview(planned.plan.action_id, "benchmark")
            confirmed = time.perf_counter()
            outcome = service.apply(back, incident)
            assert outcome.status == "applied", outcome.message
            undo.append(_until_reported(ports, planned.plan.tag_moves[0].before or "") - confirmed)
        service.journal.close()
    yield "feature_bug_diagnosis_s", round(diagnosis_s, 1), "s", {"polls": polls}
    for name, times in (("feature_rollback_ms", rollback), ("feature_undo_ms", undo)):
        yield name, round(statistics.median(times) * 1000, 1), "ms", {"min": round(min(times) * 1000, 1),
                                                                     "max": round(max(times) * 1000, 1)}
