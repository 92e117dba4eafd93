"""fleet.discover: models found in the registry by a naming rule, kept only when the router has their backend."""

from __future__ import annotations

import pytest
import yaml

from console.config import parse_config
from console.domain.errors import ConfigError, RegistryError
from console.domain.fleet import discover_fleet, discovered_backend, fleet_document, fleet_row, validate_discovery
from console.domain.verdicts import State
from console.sandbox.templates import rewind_config
from console.services.fleet import discover_backends
from tests.fixtures.fakes import FakeRegistry, FakeRouter

REGISTERED = ["churn", "fraud-detector", "fraud-detector-2", "fraud-eu", "fraud-legacy"]
LISTED = ["be_fraud_detector", "be_fraud_detector_2", "be_fraud_eu", "be_churn", "stats"]


def test_a_matching_model_with_a_backend_joins_the_configured_ones_in_name_order():
    found = discover_fleet("fraud-*", "be_{model_id}", REGISTERED, LISTED, {"fraud-detector": "be_fraud_detector"})
    assert found == {"fraud-detector": "be_fraud_detector", "fraud-detector-2": "be_fraud_detector_2",
                     "fraud-eu": "be_fraud_eu"}
    assert list(found)[0] == "fraud-detector"  # the configured model stays first


def test_a_matching_model_without_a_backend_and_a_backend_without_a_model_are_left_out():
    found = discover_fleet("fraud-*", "be_{model_id}", REGISTERED, LISTED, {})
    assert "fraud-legacy" not in found  # registered and matching, but HAProxy has no be_fraud_legacy
    assert "churn" not in found  # routed, but not matching the pattern


def test_a_configured_model_keeps_its_configured_backend():
    found = discover_fleet("fraud-*", "be_{model_id}", REGISTERED, LISTED, {"fraud-eu": "eu_special"})
    assert found["fraud-eu"] == "eu_special"


def test_backend_placeholders():
    assert discovered_backend("be_{model_id}", "fraud-detector-2") == "be_fraud_detector_2"
    assert discovered_backend("{model}", "fraud-detector-2") == "fraud-detector-2"


@pytest.mark.parametrize(("pattern", "backend", "says"), [
    ("", "{model}", "pattern is empty"),
    ("fraud-*", "be_fraud", "names no model"),
    ("fraud-*", "be_{name}", "unknown placeholder {name}"),
])
def test_a_rule_that_can_never_work_is_refused(pattern, backend, says):
    with pytest.raises(ValueError, match=says):
        validate_discovery(pattern, backend)


def test_a_bad_setting_is_one_line_naming_it(tmp_path):
    data = yaml.safe_load(rewind_config(tmp_path, "fraud-detector", 9090))
    data["fleet"] = {"discover": {"pattern": "fraud-*", "backend": "be_{name}"}}
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "rewind.yaml", environ={})
    message = str(caught.value)
    assert message == ("config rewind.yaml: fleet.discover: backend 'be_{name}' has an unknown placeholder {name}: "
                       "use {model} or {model_id}")


def test_a_good_rule_is_read(tmp_path):
    data = yaml.safe_load(rewind_config(tmp_path, "fraud-detector", 9090))
    data["fleet"] = {"discover": {"pattern": "fraud-*", "backend": "be_{model_id}"}}
    rule = parse_config(data, "rewind.yaml", environ={}).fleet.discover
    assert rule is not None and (rule.pattern, rule.backend) == ("fraud-*", "be_{model_id}")


def test_the_service_reads_the_registry_and_the_router_once():
    registry, router = FakeRegistry(), FakeRouter()
    registry.models = REGISTERED
    router.backends = LISTED
    assert list(discover_backends(registry, router, "fraud-*", "be_{model_id}", {})) == [
        "fraud-detector", "fraud-detector-2", "fraud-eu"]


def test_the_service_says_which_setting_failed():
    registry, router = FakeRegistry(), FakeRouter()
    registry.models = ["churn"]
    with pytest.raises(ConfigError, match=r"fleet.discover: no model registered .* matches 'fraud-\*'"):
        discover_backends(registry, router, "fraud-*", "{model}", {})
    registry.fail_writes = True
    with pytest.raises(RegistryError, match="^fleet.discover: fake registry: unreachable$"):
        discover_backends(registry, router, "fraud-*", "{model}", {})


def test_a_router_that_cannot_list_its_backends_is_refused():
    class Unlisting:
        def describe(self):
            return "a router with no listing"

    with pytest.raises(ConfigError, match="cannot list its backends"):
        discover_backends(FakeRegistry(), Unlisting(), "fraud-*", "{model}", {})  # type: ignore[arg-type]


def test_the_fleet_document_lists_every_row_in_order():
    rows = [fleet_row(None, "fraud-eu", problems=["metrics: down"]), fleet_row(None, "fraud-detector")]
    doc = fleet_document(rows, "2026-01-01T00:00:00Z", metrics_error="down")
    assert doc["schema"] == "rewind.fleet/1" and doc["errors"] == {"metrics": "down"}
    models = doc["models"]
    assert isinstance(models, list)
    assert [m["model"] for m in models] == ["fraud-eu", "fraud-detector"]
    assert models[0]["state"] == State.NO_DATA.value and models[0]["problems"] == ["metrics: down"]
