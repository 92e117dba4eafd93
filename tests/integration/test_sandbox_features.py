"""The sandbox's Feast feature store: what each model server consumes, and the ``feature-bug`` scenario.

Every model server resolves the raw transaction through the Feast service its MLflow version
tag ``feast.feature_service`` names, and exports which view version (and UDF) it consumes and
the distribution of its inputs. ``feature-bug`` applies a release that reads amounts in cents:
every version breaks alike, a model rollback does not help, and pinning the service to the good
view version does.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest

from console.sandbox.features import (
    FEATURE_BUCKETS,
    FEATURE_SERVICE,
    FEATURE_VIEW,
    PROJECT,
    SERVICE_TAG,
    release_sha,
    repo_dir,
    udf_sha,
)
from tests.fixtures.servers import wait_for

MODEL = "fraud-detector"
TOP = f"{FEATURE_BUCKETS[-1]}"  # the le label of the training p99.5 bucket
WINDOW = "10s"


@pytest.fixture(scope="module")
def good_sha(tmp_path_factory) -> str:
    """The good release's UDF sha, from its source (nothing applied)."""
    return release_sha("good", tmp_path_factory.mktemp("release"))


@pytest.fixture(scope="module")
def store(sandbox):
    """The sandbox's feature store, read and written with the Feast SDK as an operator would."""
    import warnings

    from feast import FeatureStore

    warnings.filterwarnings("ignore", module="feast")
    return FeatureStore(repo_path=str(repo_dir(sandbox.dir)))


def all_versions(sandbox) -> list[str]:
    state = sandbox.load_state()
    return [*state["versions"], state["fallback_version"]]


def query(sandbox, promql: str) -> list[dict]:
    """An instant query's result vector."""
    url = f"http://127.0.0.1:{sandbox.load_state()['ports']['prometheus']}"
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}",  # noqa: S310
                                timeout=5) as response:
        return json.loads(response.read())["data"]["result"]


def bindings_in_prometheus(sandbox) -> dict[str, set[tuple[str, str, str, str]]]:
    """Per version: (feature_service, feature_view, feature_version, udf_sha) of every binding series."""
    found: dict[str, set[tuple[str, str, str, str]]] = {}
    for sample in query(sandbox, "max by (version, feature_service, feature_view, feature_version, udf_sha) "
                                 f'(rewind_feature_binding_info{{model="{MODEL}"}})'):
        m = sample["metric"]
        found.setdefault(m["version"], set()).add((m["feature_service"], m["feature_view"], m["feature_version"],
                                                   m["udf_sha"]))
    return found


def bindings_on_servers(sandbox) -> dict[str, set[tuple[str, str, str, str]]]:
    """The same, read straight from each server's /metrics (no scrape in between)."""
    from prometheus_client.parser import text_string_to_metric_families

    ports = sandbox.load_state()["ports"]
    found: dict[str, set[tuple[str, str, str, str]]] = {}
    for port in [*ports["models"].values(), ports["fallback"]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:  # noqa: S310
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            if family.name == "rewind_feature_binding_info":
                for s in family.samples:
                    found.setdefault(s.labels["version"], set()).add(
                        (s.labels["feature_service"], s.labels["feature_view"], s.labels["feature_version"],
                         s.labels["udf_sha"]))
    return found


def single_bindings(found: dict[str, set], versions: list[str]) -> dict[str, tuple[str, str, str, str]] | None:
    """Each version's one binding, or ``None`` while any version has none or several (a flip mid-scrape)."""
    if any(len(found.get(v, ())) != 1 for v in versions):
        return None
    return {v: next(iter(found[v])) for v in versions}


def share_above_range(sandbox, version: str, window: str = WINDOW) -> float | None:
    """The share of a version's amounts above the training p99.5 in the window (None without values)."""
    selector = f'model="{MODEL}",version="{version}",feature="amount"'
    total = query(sandbox, f'sum(increase(rewind_feature_value_bucket{{{selector},le="+Inf"}}[{window}]))')
    inside = query(sandbox, f'sum(increase(rewind_feature_value_bucket{{{selector},le="{TOP}"}}[{window}]))')
    if not total or not inside or float(total[0]["value"][1]) < 5:
        return None
    return 1.0 - float(inside[0]["value"][1]) / float(total[0]["value"][1])


def accuracy(sandbox, version: str, window: str = WINDOW) -> float | None:
    selector = f'model="{MODEL}",version="{version}"'
    found = query(sandbox, f"sum(increase(rewind_label_correct_total{{{selector}}}[{window}]))"
                           f" / sum(increase(rewind_labels_total{{{selector}}}[{window}]))")
    return float(found[0]["value"][1]) if found else None


def switch_to_feature_bug(sandbox, good_sha: str) -> dict[str, tuple[str, str, str, str]]:
    """Switch to ``feature-bug`` (promptly) and wait until every server consumes the buggy release."""
    started = time.monotonic()
    assert sandbox.set_scenario("feature-bug")["name"] == "feature-bug"
    # A hang guard, not a speed figure: the switch applies a Feast registry, which a loaded machine slows.
    assert time.monotonic() - started < 60, "switching to feature-bug must return, not hang"
    versions = all_versions(sandbox)

    def flipped():
        now = single_bindings(bindings_on_servers(sandbox), versions)
        return now if now and all(b[3] != good_sha for b in now.values()) else None

    return wait_for(flipped, 10, "every server to consume the buggy feature release")


def test_every_server_consumes_the_good_release(sandbox, systems, good_sha):
    versions = all_versions(sandbox)
    assert versions == ["1", "2", "3", "4"]
    bound = wait_for(lambda: single_bindings(bindings_in_prometheus(sandbox), versions), 30,
                     "one binding per server in Prometheus")
    for version, (service, view, feature_version, sha) in bound.items():
        assert (service, view, sha) == (FEATURE_SERVICE, FEATURE_VIEW, good_sha), version
        assert feature_version.startswith("v") and feature_version[1:].isdigit()
    # The buckets sit at the training quantiles, and the amounts fall inside them.
    assert TOP == "2.5758"
    shares = wait_for(lambda: (lambda s: [s] if s is not None else None)(share_above_range(sandbox, "2", "30s")),
                      30, "amount values of the champion", interval=0.5)
    assert shares[0] < 0.05


def test_pinning_the_service_to_the_good_version_clears_it(sandbox, systems, good_sha, store):
    switch_to_feature_bug(sandbox, good_sha)
    from feast import FeatureService

    history = store.list_feature_view_versions(FEATURE_VIEW)
    good_version = min(v["version_number"] for v in history if udf_sha(
        store.registry.get_feature_view_by_version(FEATURE_VIEW, PROJECT, v["version_number"])) == good_sha)
    pinned = f"{FEATURE_SERVICE}__pin_v{good_version}"
    store.apply([FeatureService(name=pinned, features=[f"{FEATURE_VIEW}@v{good_version}"])])
    assert [p.version_tag for p in store.get_feature_service(pinned).feature_view_projections] == [good_version]

    _, registry = systems
    versions = all_versions(sandbox)
    for version in versions:
        registry.set_version_tag(MODEL, version, SERVICE_TAG, pinned)
    tagged = time.monotonic()
    expected = {v: (pinned, FEATURE_VIEW, f"v{good_version}", good_sha) for v in versions}
    wait_for(lambda: single_bindings(bindings_on_servers(sandbox), versions) == expected, 2,
             "every server to report the pinned binding", interval=0.05)
    assert time.monotonic() - tagged < 2
    # The amounts the champion sees are back on the training scale.
    wait_for(lambda: (lambda s: s is not None and s < 0.05)(share_above_range(sandbox, "2", "4s")), 20,
             "the champion's amounts back in range", interval=0.5)
