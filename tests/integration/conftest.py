"""Integration tests run against real servers; every test here is marked ``integration``."""

import pytest

from console.adapters.haproxy import HAProxyRouter
from console.adapters.mlflow_registry import MlflowRegistry
from console.sandbox.features import FEATURE_SERVICE, SERVICE_TAG
from console.sandbox.templates import backend_name

MODEL = "fraud-detector"
START_WEIGHTS = {"1": 0, "2": 90, "3": 10}
START_ALIASES = {"champion": "2", "challenger": "3", "fallback": "4"}


# Under xdist (``make test``: ``pytest -n 2 --dist loadgroup``) each worker runs one of two groups, in
# order, in one process. Each group has a shared sandbox of its own (the session's ``sandbox``, started by
# its first test that needs it) and its share of the tests that start their own servers. The groups are
# balanced by the seconds each file took in CI (in brackets); a file not listed joins group a.
GROUPS = {
    "a": {
        "test_sandbox_playbooks.py",  # 276 (every shipped playbook, headless)
        "test_features_e2e.py",       # 205 (regression, drift, a feature bug and its rollback, live)
        "test_readiness.py",          # 92
        "test_console_e2e.py",        # 82 (a sandbox of its own, the console in tmux)
        "test_roles.py",              # 20
        "test_k8s_kserve_argo.py",    # 17
        "test_sandbox_features.py",   # 14
        "test_gto_registry.py",       # 9
        "test_wheel.py",              # 9
        "test_k8s_gateway.py",        # 7
        "test_notify.py",             # 2
        "test_victoriametrics.py",    # 1
    },
    "b": {
        "test_shadow_and_fallback.py",  # 159
        "test_sandbox_fleet.py",        # 108 (a three-model sandbox of its own)
        "test_rollback.py",             # 107
        "test_alert_rules.py",          # 71
        "test_status_scenarios.py",     # 71
        "test_mlflow_registry.py",      # 54 (an mlflow server, shared with the next)
        "test_sandbox_lifecycle.py",    # 45 (sandboxes of its own)
        "test_bad_input.py",            # 37
        "test_prometheus_metrics.py",   # 24
        "test_journal_contract.py",     # 13 (PostgreSQL, shared by the journal files)
        "test_haproxy_router.py",       # 12
        "test_alerts_paging.py",        # 10
        "test_mlflow_rest.py",          # 9
        "test_console_hangup.py",       # 8
        "test_journal_cli.py",          # 6
        "test_journal_soak.py",         # 4
        "test_journal_follow.py",       # 2
        "test_journal_secrets.py",      # 2
        "test_journal_restart.py",      # 1
    },
}
GROUP_OF = {name: group for group, names in GROUPS.items() for name in names}


@pytest.hookimpl(tryfirst=True)  # before xdist names the groups (its hook has no order of its own)
def pytest_collection_modifyitems(items):
    """Mark every test here ``integration`` and give it its xdist group (see ``GROUPS``)."""
    for item in items:
        if "tests/integration" not in str(item.fspath):
            continue
        item.add_marker(pytest.mark.integration)
        item.add_marker(pytest.mark.xdist_group(GROUP_OF.get(item.fspath.basename, "a")))


def pytest_terminal_summary(terminalreporter):
    """The seconds each integration file and each group took (setup, call and teardown), to keep ``GROUPS``
    balanced: a group runs in order on one worker, so the slower group is the integration tests' wall time."""
    seconds: dict[str, float] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            path = getattr(report, "nodeid", "").split("::")[0]
            if path.startswith("tests/integration/") and isinstance(getattr(report, "duration", None), float):
                name = path.rsplit("/", 1)[-1]
                seconds[name] = seconds.get(name, 0.0) + report.duration
    if not seconds:
        return
    groups: dict[str, float] = {}
    for name, took in seconds.items():
        groups[GROUP_OF.get(name, "a")] = groups.get(GROUP_OF.get(name, "a"), 0.0) + took
    terminalreporter.write_sep("=", "integration seconds by group and file")
    for group, took in sorted(groups.items()):
        files = sorted(((t, n) for n, t in seconds.items() if GROUP_OF.get(n, "a") == group), reverse=True)
        terminalreporter.write_line(f"group {group}: {took:.0f} s: " + ", ".join(f"{n} {t:.0f}" for t, n in files))


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
