"""The sandbox's alerting files, generated: Prometheus' rules from the catalogue, Alertmanager's config, the owner."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from console.commands.sandbox import render_status
from console.config import MetricsConfig, load_config
from console.sandbox.templates import (
    ALERT_HOLD,
    CATALOGUE,
    alert_rules,
    alertmanager_config,
    breach_expression,
    prometheus_config,
    rewind_config,
    rules_yaml,
    sandbox_metrics,
)

MODEL = "fraud-detector"
PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


def metrics(catalogue: list[dict] | None = None, **changes) -> MetricsConfig:
    section = {**sandbox_metrics(9090), **changes}
    if catalogue is not None:
        section["catalogue"] = catalogue
    return MetricsConfig.model_validate(section)


def rules_of(config: MetricsConfig) -> dict[str, dict]:
    (group,) = alert_rules(MODEL, config)["groups"]
    return {rule["labels"]["rewind_metric"]: rule for rule in group["rules"]}


def entry(name: str) -> dict:
    return copy.deepcopy(next(m for m in CATALOGUE if m["name"] == name))


def test_one_rule_per_judged_metric_with_its_labels_hold_and_annotations():
    config = metrics()
    rules = rules_of(config)
    judged = [s.name for s in config.specs() if s.criteria.judges]
    assert list(rules) == judged == ["error_rate", "latency_p95", "accuracy", "score_mean"]
    assert {r["alert"] for r in rules.values()} == {
        "RewindErrorRateBreach", "RewindLatencyP95Breach", "RewindAccuracyBreach", "RewindScoreMeanBreach"}
    assert {m: r["labels"]["severity"] for m, r in rules.items()} == {
        "error_rate": "page", "latency_p95": "page", "accuracy": "ticket", "score_mean": "ticket"}
    shipped = {yaml.safe_load(p.read_text())["id"] for p in PLAYBOOKS.glob("*.yaml")}
    for rule in rules.values():
        assert rule["labels"]["model"] == MODEL and rule["for"] == ALERT_HOLD == "30s"
        assert set(rule["annotations"]) == {"summary", "description", "rewind_playbook"}
        assert rule["annotations"]["rewind_playbook"] in shipped
        # Every alert is one cell: the expression keeps the version and segment of `by (version, segment)`.
        assert rule["expr"].count("on (version, segment)") >= 1
        assert f'model="{MODEL}"' in rule["expr"] and "$" not in rule["expr"].replace("$labels", "")
    assert rules["error_rate"]["annotations"]["rewind_playbook"] == "version-outage"
    assert "{{ $labels.version }}" in rules["error_rate"]["annotations"]["summary"]


def test_a_ratio_is_judged_on_its_counts_and_a_value_on_its_traffic():
    rules = rules_of(metrics())
    errors, p95 = rules["error_rate"]["expr"], rules["latency_p95"]["expr"]
    # 5 % at 95 % confidence: k - 0.5 - 0.05 n > 1.96 sqrt(0.05 * 0.95 n), Wilson's bound with continuity correction.
    assert "* 0.05 - 0.5 > 0.4272 * sqrt(" in errors
    assert "increase(rewind_requests_total" in errors and ">= 0.5" not in errors
    assert "> 0.25" in p95 and 'rate(rewind_requests_total{model="fraud-detector"}[1m]))) >= 0.5' in p95
    # Worse is lower for accuracy: the line minus the correct labels.
    assert "* 0.85 - (sum by (version, segment) (increase(rewind_label_correct_total" in rules["accuracy"]["expr"]
    # A delta against the stable version: the busiest version of the segment, per segment.
    assert "topk by (segment) (1, " in rules["score_mean"]["expr"]
    assert "group_left() (max by (segment)" in rules["score_mean"]["expr"]


def test_the_rules_follow_the_catalogue():
    errors = entry("error_rate")
    errors["criteria"] = {"threshold": 0.1}
    accuracy = entry("accuracy")
    accuracy["criteria"] = {"max_delta": 0.2, "delta_kind": "relative"}
    unjudged = entry("request_rate")
    rules = rules_of(metrics([unjudged, errors, accuracy], traffic_metric="request_rate", window="5m"))
    assert list(rules) == ["error_rate", "accuracy"]
    assert "* 0.1 - 0.5 > 0.588 * sqrt(" in rules["error_rate"]["expr"] and "topk" not in rules["error_rate"]["expr"]
    assert "[5m]" in rules["error_rate"]["expr"] and "[1m]" not in rules["error_rate"]["expr"]
    assert " * 0.8)" in rules["accuracy"]["expr"]  # 20 % below the stable version's accuracy
    assert "For 30s, over a 5m window: 20% below" in rules["accuracy"]["annotations"]["description"]


def test_a_delta_on_a_value_needs_the_traffic_metric_to_find_the_stable_version():
    config = metrics([entry("request_rate"), entry("score_mean")], traffic_metric=None)
    with pytest.raises(ValueError, match="traffic_metric"):
        alert_rules(MODEL, config)
    with pytest.raises(ValueError, match="no criteria"):
        breach_expression(metrics([entry("request_rate")]).specs()[0], MODEL, "1m")


def test_the_rules_file_is_yaml_with_readable_expressions():
    text = rules_yaml(alert_rules(MODEL, metrics()))
    assert text.startswith("# Written by `rewind sandbox up`")
    assert "expr: |-\n" in text
    assert yaml.safe_load(text) == alert_rules(MODEL, metrics())


def test_alertmanager_routes_everything_to_rewind_quickly():
    config = yaml.safe_load(alertmanager_config(43210))
    assert config["route"] == {"receiver": "rewind", "group_by": ["alertname", "model", "version"],
                               "group_wait": "1s", "group_interval": "5s", "repeat_interval": "1m"}
    assert config["receivers"] == [{"name": "rewind", "webhook_configs": [
        {"url": "http://127.0.0.1:43210/alerts", "send_resolved": True, "max_alerts": 0}]}]


def test_prometheus_evaluates_the_rules_and_sends_to_alertmanager(tmp_path):
    config = yaml.safe_load(prometheus_config({"1": 1001}, 1002, tmp_path / "rules.yml", 1003))
    assert config["rule_files"] == [str(tmp_path / "rules.yml")]
    assert config["alerting"] == {"alertmanagers": [
        {"api_version": "v2", "static_configs": [{"targets": ["127.0.0.1:1003"]}]}]}
    assert "rule_files" not in yaml.safe_load(prometheus_config({"1": 1001}, 1002))


def test_the_sandbox_config_names_its_alertmanager_and_an_owner_on_call(tmp_path):
    path = tmp_path / "rewind.yaml"
    path.write_text(rewind_config(tmp_path, MODEL, 9090, 9093, 9095))
    config = load_config(str(path), environ={}).config
    assert config.alerts.alertmanager_url == "http://127.0.0.1:9093"
    assert config.alerts.listen == "127.0.0.1:9095"  # where `rewind alerts serve` takes what Alertmanager posts
    owner = config.owners[MODEL]
    assert owner.name and " " in owner.name and owner.contact.endswith("@example.com")
    assert owner.oncall in config.notify.webhooks
    assert owner.escalation and owner.escalation[0] != owner.name
    # Without an Alertmanager (benches, unit tests) the section is left at its default.
    path.write_text(rewind_config(tmp_path, MODEL, 9090))
    assert load_config(str(path), environ={}).config.alerts.alertmanager_url is None


def test_sandbox_status_shows_the_alertmanager():
    doc = {"dir": "/s", "running": True, "model": MODEL, "versions": ["1"], "config": "/s/rewind.yaml",
           "processes": [{"pid": 7, "name": "alertmanager", "alive": True}],
           "endpoints": {"alertmanager": "http://127.0.0.1:9093",
                         "alerts_webhook": "http://127.0.0.1:9095/alerts"}}
    text = render_status(doc)
    assert "  alertmanager         http://127.0.0.1:9093" in text
    assert "  alerts_webhook       http://127.0.0.1:9095/alerts" in text
