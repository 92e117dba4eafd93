"""A fleet sandbox (`rewind sandbox up --models 3`): every model registered, routed, scraped and judged.

It starts a sandbox of its own (it runs on the sandbox worker: see OWN_SANDBOX in conftest.py).
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request

import yaml

from console.adapters.haproxy import HAProxyRouter
from console.adapters.mlflow_registry import MlflowRegistry
from tests.fixtures.servers import require_binary, run_cli, wait_for
from tests.fixtures.tmux import EXITED, console_in_tmux_session

MODELS = ["fraud-detector", "fraud-detector-2", "fraud-detector-3"]
BACKENDS = {"fraud-detector": "be_fraud_detector", "fraud-detector-2": "be_fraud_detector_2",
            "fraud-detector-3": "be_fraud_detector_3"}


def requests_by_model(prometheus: str) -> dict[str, float]:
    """Each model's request rate over the last minute, from the sandbox's Prometheus."""
    query = urllib.parse.urlencode({"query": "sum by (model) (rate(rewind_requests_total[1m]))"})
    with urllib.request.urlopen(f"{prometheus}/api/v1/query?{query}", timeout=5) as response:  # noqa: S310
        found = json.load(response)["data"]["result"]
    return {series["metric"]["model"]: float(series["value"][1]) for series in found}


def fleet_shown(screen: str, width: int) -> bool:
    """Every model's row with its state judged (not *no data*) and its traffic split as HAProxy has it."""
    splits = {"fraud-detector": "v2 90 · v3 10", "fraud-detector-2": "v1 90 · v2 10",
              "fraud-detector-3": "v1 90 · v2 10"}
    lines = screen.splitlines()
    for model, split in splits.items():
        row = [line for line in lines if re.search(rf"(?<![\w-]){re.escape(model)}(?![\w-])", line)]
        if len(row) != 1 or split not in row[0] or "no data" in row[0] or len(row[0].rstrip()) > width:
            return False
    return True


def test_three_models_registered_routed_scraped_and_judged(tmp_path):
    require_binary("haproxy", "haproxy")
    require_binary("prometheus", "prometheus")
    require_binary("prometheus-alertmanager", "prometheus-alertmanager")
    state_dir = tmp_path / "fleet"
    up = run_cli("sandbox", "up", "--dir", str(state_dir), "--models", "3", timeout=180)
    try:
        assert up.returncode == 0, up.stderr
        config_path = state_dir / "rewind.yaml"
        config = yaml.safe_load(config_path.read_text())
        assert config["router"]["backends"] == BACKENDS  # every model listed: the console opens on the fleet

        status = run_cli("sandbox", "status", "--json", "--dir", str(state_dir))
        assert status.returncode == 0, status.stderr
        doc = json.loads(status.stdout)
        assert doc["models"] == MODELS
        # The first model is the one-model sandbox's, unchanged; the others have a champion and a challenger.
        assert doc["aliases"] == {"champion": "2", "challenger": "3", "fallback": "4"}
        assert doc["weights"] == {"1": 0, "2": 90, "3": 10}
        assert "fleet-models" in doc["pids"] and "model-v1" in doc["pids"]
        other = run_cli("sandbox", "up", "--dir", str(state_dir), "--models", "2")
        assert other.returncode != 0 and other.stderr.strip().count("\n") == 0
        assert "already runs 3 model(s)" in other.stderr and "--models 2" in other.stderr

        # As HAProxy and MLflow report them, not as the sandbox remembers them.
        router = HAProxyRouter(str(state_dir / "haproxy.sock"), BACKENDS)
        assert set(BACKENDS.values()) <= set(router.list_backends())
        registry = MlflowRegistry(config["registry"]["tracking_uri"])
        assert set(MODELS) <= set(registry.list_models())
        for model in MODELS[1:]:
            assert registry.get_aliases(model).aliases == {"champion": "1", "challenger": "2"}
            assert router.read_state(model).weights() == {"1": 90, "2": 10}
            assert all(server.operational for server in router.read_state(model).servers)
            assert doc["fleet"][model]["weights"] == {"1": 90, "2": 10}

        # Traffic reaches every model (split at random across them), through the one frontend.
        rates = wait_for(lambda: (r := requests_by_model(doc["endpoints"]["prometheus"])) and
                         all(r.get(m, 0) > 0 for m in MODELS) and r, 30, "traffic for every model")
        assert set(MODELS) <= set(rates)
        # Every model has its alert rules, as Prometheus loaded them: an alert opens the right model's playbook.
        with urllib.request.urlopen(f"{doc['endpoints']['prometheus']}/api/v1/rules", timeout=5) as answer:  # noqa: S310
            groups = {group["name"]: group for group in json.load(answer)["data"]["groups"]}
        assert set(groups) == {f"rewind-{model}" for model in MODELS}
        for model in MODELS:
            assert {rule["labels"]["model"] for rule in groups[f"rewind-{model}"]["rules"]} == {model}

        fleet = run_cli("status", "--fleet", "--json", "--config", str(config_path))
        assert fleet.returncode in (0, 1), fleet.stderr  # 1: a model breaches by chance
        rows = {row["model"]: row for row in json.loads(fleet.stdout)["models"]}
        assert set(rows) == set(MODELS)
        for model, row in rows.items():
            assert row["cells"] > 0 and row["state"] != "no_data", (model, row)
            assert row["problems"] == [], (model, row)
        assert rows["fraud-detector"]["split"] == {"2": 0.9, "3": 0.1}
        assert rows["fraud-detector-2"]["split"] == {"1": 0.9, "2": 0.1}

        # The console opens on the fleet view: every model on one screen, at 80x24 and at 160x50.
        settings = {"REWIND_JOURNAL__URL": f"sqlite:///{tmp_path / 'journal.db'}"}
        with console_in_tmux_session(["tui", "--config", str(config_path)], settings, tmp_path, 80, 24) as tmux:
            for width, height in ((80, 24), (160, 50)):
                if width != 80:
                    tmux.run("resize-window", "-t", tmux.session, "-x", str(width), "-y", str(height))
                screen = tmux.wait(lambda screen, w=width: fleet_shown(screen, w), 60,
                                   f"every model judged in the fleet view at {width}x{height}")
                assert tmux.pane("#{pane_width}x#{pane_height}") == f"{width}x{height}"
                assert "Fleet  3 models" in screen, screen
            tmux.keys("Enter")  # the highlighted (worst) model's overview
            tmux.wait(lambda screen: "router ok" in screen and "Fleet  3 models" not in screen, 30,
                      "the model's overview")
            tmux.keys("C-q")
            ended = tmux.wait(lambda screen: EXITED in screen, 15, "the console to exit on ctrl+q")
            assert f"{EXITED}0]" in ended, ended

        # fleet.discover: one model configured, the others found in MLflow and on HAProxy by the naming rule.
        config["router"]["backends"] = {"fraud-detector": "be_fraud_detector"}
        config["fleet"] = {"discover": {"pattern": "fraud-detector-*", "backend": "be_{model_id}"}}
        discovering = tmp_path / "discover.yaml"
        discovering.write_text(yaml.safe_dump(config))
        found = run_cli("status", "--fleet", "--json", "--config", str(discovering))
        assert found.returncode in (0, 1), found.stderr
        assert {row["model"] for row in json.loads(found.stdout)["models"]} == set(MODELS)
        # Every command reaches a model the rule finds, as the fleet view does.
        status = run_cli("status", "--json", "--model", "fraud-detector-3", "--config", str(discovering))
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["model"] == "fraud-detector-3"
        unconfirmed = run_cli("rollback", "--model", "fraud-detector-2", "--config", str(discovering),
                              env={"REWIND_JOURNAL__URL": f"sqlite:///{tmp_path / 'journal.db'}"})
        # Refused only for want of a terminal to confirm on: the preview read the model's registry and backend.
        assert unconfirmed.returncode == 2, unconfirmed.stderr
        assert "confirmation needs a terminal" in unconfirmed.stderr, unconfirmed.stderr
    finally:
        down = run_cli("sandbox", "down", "--dir", str(state_dir))
    assert down.returncode == 0, down.stderr
    assert json.loads(run_cli("sandbox", "status", "--json", "--dir", str(state_dir)).stdout)["running"] is False
