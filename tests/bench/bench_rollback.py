"""Issue 4's figures: the console's rollback against the raw API calls it wraps.

- ``rollback_overhead_ratio``: the median time of the console applying a
  rollback (lock, journal intent and outcome, compare-and-set reads, the writes,
  read-back; planning, the version tags written afterwards and the verification
  window excluded) over
  the median time of the raw calls that make the same change
  (``MlflowClient.delete_registered_model_alias`` and one HAProxy ``set weight``
  line), both against the same sandbox in one run.
- ``rollback_e2e_ms``: the console's end-to-end time for one rollback on the
  sandbox: planning (both systems read, signatures compared) plus applying,
  verification window excluded. Median of 30, each run interleaved with the raw calls.
"""

from __future__ import annotations

import socket
import statistics
import time

from tests.bench.sandbox_env import bench_sandbox

RUNS = 30
MODEL = "fraud-detector"


def figures():
    """Yield issue 4's figures."""
    import mlflow

    from console.wiring import build_rollback_service

    with bench_sandbox(rate=20) as (box, loaded):
        service = build_rollback_service(loaded)
        incident = service.journal.open_incident(MODEL, "4", "rollback benchmark").incident_id
        client = mlflow.MlflowClient(tracking_uri=box.load_state()["tracking_uri"])
        sock = str(box.dir / "haproxy.sock")

        def haproxy(line: str) -> None:
            with socket.socket(socket.AF_UNIX) as conn:
                conn.connect(sock)
                conn.sendall(line.encode() + b"\n")
                while conn.recv(65536):
                    pass

        def reset() -> None:
            haproxy("set weight be_fraud_detector/v2 90; set weight be_fraud_detector/v3 10")
            client.set_registered_model_alias(MODEL, "challenger", "3")

        console_apply, console_e2e, raw = [], [], []
        for run in range(RUNS + 1):  # the first of each is a warm-up
            started = time.perf_counter()
            preview = service.preview(MODEL)
            planned = time.perf_counter()
            outcome = service.apply(preview, incident)
            done = time.perf_counter()
            assert outcome.status == "applied", outcome.message
            reset()
            raw_started = time.perf_counter()
            client.delete_registered_model_alias(MODEL, "challenger")
            haproxy("set weight be_fraud_detector/v3 0; set weight be_fraud_detector/v2 100")
            raw_done = time.perf_counter()
            reset()
            if run:
                console_apply.append(done - planned)
                console_e2e.append(done - started)
                raw.append(raw_done - raw_started)
        service.journal.close()
    yield "rollback_overhead_ratio", round(statistics.median(console_apply) / statistics.median(raw), 2), "x"
    yield "rollback_e2e_ms", round(statistics.median(console_e2e) * 1000, 1), "ms"
    yield "rollback_apply_ms", round(statistics.median(console_apply) * 1000, 1), "ms"
    yield "rollback_raw_calls_ms", round(statistics.median(raw) * 1000, 1), "ms"
