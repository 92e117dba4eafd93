"""Integration tests run against real servers; every test here is marked ``integration``."""

import pytest

from console.adapters.haproxy import HAProxyRouter
from console.adapters.mlflow_registry import MlflowRegistry
from console.sandbox.features import FEATURE_SERVICE, SERVICE_TAG
from console.sandbox.templates import backend_name

MODEL = "fraud-detector"
START_WEIGHTS = {"1": 0, "2": 90, "3": 10}
START_ALIASES = {"champion": "2", "challenger": "3", "fallback": "4"}


# Tests that start a whole sandbox of their own: real-time and CPU-heavy, like the shared sandbox's.
OWN_SANDBOX = {"test_console_e2e.py", "test_sandbox_lifecycle.py", "test_sandbox_fleet.py"}


@pytest.hookimpl(tryfirst=True)  # before xdist names the groups (its hook has no order of its own)
def pytest_collection_modifyitems(items):
    """Mark every test here ``integration``; under xdist, keep the real-time ones on one worker, in order.

    The shared sandbox's tests (and those that start a sandbox of their own) run one after another in one
    process, as they always did: they share a sandbox and judge live traffic against real time. The other
    tests (journal, registry, router, metrics and notify servers of their own) run beside them on the
    second worker (``make test``: ``pytest -n 2 --dist loadgroup``).
    """
    for item in items:
        if "tests/integration" not in str(item.fspath):
            continue
        item.add_marker(pytest.mark.integration)
        if "sandbox" in getattr(item, "fixturenames", ()) or item.fspath.basename in OWN_SANDBOX:
            item.add_marker(pytest.mark.xdist_group("sandbox"))


@pytest.fixture
def systems(sandbox):
    """The shared sandbox's router and registry, checked as the sandbox starts them and put back after the test.

    Put back: the scenario healthy (leaving ``feature-bug`` re-applies the good feature release), the
    weights, the servers' admin states, the aliases, and every version's feature-service tag.
    """
    router = HAProxyRouter(str(sandbox.dir / "haproxy.sock"), {MODEL: backend_name(MODEL)})
    registry = MlflowRegistry(sandbox.load_state()["tracking_uri"])
    assert router.read_state(MODEL).weights() == START_WEIGHTS
    assert registry.get_aliases(MODEL).aliases == START_ALIASES
    yield router, registry
    sandbox.set_scenario("healthy")
    router.set_weights(MODEL, START_WEIGHTS, expected=None)
    taken_out = {s.server: "ready" for s in router.read_state(MODEL).servers if s.admin_state == "maint"}
    if taken_out:
        router.set_admin_state(MODEL, taken_out, expected=None)
    for alias, version in START_ALIASES.items():
        registry.set_alias(MODEL, alias, version, expected=registry.get_aliases(MODEL).version_of(alias))
    for alias, version in registry.get_aliases(MODEL).aliases.items():
        if alias not in START_ALIASES:  # a shadow started by the test
            registry.delete_alias(MODEL, alias, expected=version)
    state = sandbox.load_state()
    for version in [*state["versions"], state["fallback_version"]]:
        if registry.get_version_tag(MODEL, version, SERVICE_TAG) != FEATURE_SERVICE:
            registry.set_version_tag(MODEL, version, SERVICE_TAG, FEATURE_SERVICE)
