"""The console's backend over a real config: the readiness checks and the speed-to-rollback read are built on
first use over the console's own rollback use case, so they share its registry, router and journal."""

from __future__ import annotations

import yaml

from console.config import load_config
from console.services.readiness import ReadinessService
from console.services.recovery import RecoveryStats
from console.wiring import ConsoleBackend


def test_readiness_and_stats_share_the_consoles_rollback_service(tmp_path):
    path = tmp_path / "rewind.yaml"
    path.write_text(yaml.safe_dump({
        "registry": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        "router": {"socket": str(tmp_path / "haproxy.sock"), "backends": {"m": "be_m"}},
        "metrics": {"url": "http://127.0.0.1:9/", "window": "1m", "traffic_metric": "rate",
                    "catalogue": [{"name": "rate", "title": "req/s", "unit": "per_second",
                                   "query": 'x{model="$model"}'}]},
        "journal": {"url": f"sqlite:///{tmp_path / 'journal.db'}"},
    }))
    backend = ConsoleBackend(load_config(str(path), environ={}), environ={})
    try:
        readiness = backend.readiness()
        assert isinstance(readiness, ReadinessService)
        assert readiness.rollback is backend.rollback()
        assert backend.readiness() is readiness  # built once: its check is what takes seconds, not its building
        stats = backend.recovery_stats()
        assert isinstance(stats, RecoveryStats) and stats.journal is backend.rollback().journal
        assert stats.report("m").summary.recoveries == ()  # the journal is read, and is empty
    finally:
        backend.close()
