"""Issue 15's promotion figures, on a real sandbox.

- ``promote_e2e_ms``: from the confirmation to the read-back of a promotion (the
  lock and the journal's intent, the compare-and-set reads, HAProxy's weights and
  mirror, MLflow's aliases, each read back, the outcome journaled); the gate's
  reading and the verification window are excluded. Median of 15.
- ``revert_promotion_e2e_ms``: the same for reverting the promotion (its undo).

The gate is not waited for: the plans are the ones ``rewind promote`` carries out
(``--override-gate`` only adds a second person's approval, which is not timed).
"""

from __future__ import annotations

import statistics
import time

from tests.bench.sandbox_env import bench_sandbox

RUNS = 15
MODEL = "fraud-detector"


def figures():
    """Yield the promotion figures."""
    from console.wiring import build_shadow_service

    with bench_sandbox(rate=20) as (_, loaded):
        shadow = build_shadow_service(loaded)
        service = shadow.rollback
        incident = service.journal.open_incident(MODEL, "4", "promotion benchmark").incident_id
        started = service.apply(shadow.start_preview(MODEL, "3", reason="benchmark"), incident)
        assert started.status == "applied", started.message
        promote, revert = [], []
        for run in range(RUNS + 1):  # the first is a warm-up
            preview, _ = shadow.promote_preview(MODEL, "benchmark", override=True)
            confirmed = time.perf_counter()
            outcome = service.apply(preview, incident)
            promoted = time.perf_counter()
            assert outcome.status == "applied", outcome.message
            back, _ = shadow.revert_preview(MODEL, reason="benchmark")
            confirmed_back = time.perf_counter()
            outcome = service.apply(back, incident)
            reverted = time.perf_counter()
            assert outcome.status == "applied", outcome.message
            if run:
                promote.append(promoted - confirmed)
                revert.append(reverted - confirmed_back)
        service.journal.close()
    for name, times in (("promote_e2e_ms", promote), ("revert_promotion_e2e_ms", revert)):
        yield name, round(statistics.median(times) * 1000, 1), "ms", {"min": round(min(times) * 1000, 1),
                                                                     "max": round(max(times) * 1000, 1)}
