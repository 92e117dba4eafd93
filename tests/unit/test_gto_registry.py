"""The GTO registry adapter's mapping and compare-and-set, over a fake of GTO's Python API (no git).

The fake keeps GTO's rules as measured on gto 1.10 (tests/integration/test_gto_registry.py
checks them against real git): a stage holds the version whose assignment still in effect
is the newest by its tag's time, in whole seconds; of two in one second it keeps the version
registered first.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from console.adapters.gto_registry import GtoRegistry, StageNames, gto_version, rewind_version
from console.config import parse_config
from console.domain.errors import ConfigError, ConflictError, NotFoundError, RegistryError, RegistryUnsupported

MODEL = "churn"


class ArtifactNotFound(Exception):
    __module__ = "gto.exceptions"


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.2):
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class FakeGto:
    """``gto.api``'s show, history, assign and unassign over in-memory tags."""

    class VersionSort:
        Timestamp = "timestamp"

    def __init__(self, clock: FakeClock):
        self.clock = clock
        self.registered: dict[str, dict[str, int]] = {}
        self.events: list[tuple[str, str, str, str, int, str]] = []  # model, kind, version, stage, second, author
        self.writes: list[tuple] = []

    def register(self, model: str, version: str) -> None:
        self.registered.setdefault(model, {})[version] = int(self.clock())

    def tag(self, model: str, kind: str, version: str, stage: str, author: str = "alice") -> None:
        self.events.append((model, kind, version, stage, int(self.clock()), author))

    def _holders(self, model: str) -> dict[str, tuple[str, int, str]]:
        latest: dict[tuple[str, str], tuple[str, int, str]] = {}
        for _model, kind, version, stage, at, author in sorted((e for e in self.events if e[0] == model),
                                                               key=lambda e: e[4]):
            latest[(version, stage)] = (kind, at, author)
        holders: dict[str, tuple[str, int, str]] = {}
        registered = self.registered[model]
        for (version, stage), (kind, at, author) in sorted(latest.items(), key=lambda i: registered[i[0][0]]):
            if kind == "assign" and (stage not in holders or at > holders[stage][1]):
                holders[stage] = (version, at, author)  # ties: the version registered first, as GTO does
        return holders

    def show(self, repo, *, name, sort):
        if name not in self.registered:
            raise ArtifactNotFound(f"Cannot find artifact '{name}'")
        holders = self._holders(name)
        return [{"version": v, "registrations": [{"tag": f"{name}@{v}"}], "commit_hexsha": "ab" * 20,
                 "created_at": datetime.fromtimestamp(at, UTC),
                 "stages": [{"stage": s, "version": v, "created_at": datetime.fromtimestamp(t, UTC), "author": a}
                            for s, (hv, t, a) in holders.items() if hv == v]}
                for v, at in self.registered[name].items()]

    def history(self, repo, *, artifact):
        return [{"timestamp": datetime.fromtimestamp(at, UTC), "stage": stage, "version": version}
                for m, kind, version, stage, at, _ in self.events if m == artifact]

    def assign(self, repo, name, *, stage, version, force, push, message):
        self.writes.append(("assign", stage, version, force, push))
        self.tag(name, "assign", version, stage, author="rewind")

    def unassign(self, repo, name, *, stage, version, push, message):
        self.writes.append(("unassign", stage, version))
        self.tag(name, "unassign", version, stage, author="rewind")


@pytest.fixture
def world(tmp_path):
    clock = FakeClock()
    gto = FakeGto(clock)
    for n in (1, 2, 3):
        gto.register(MODEL, f"v{n}.0.0")
        clock.now += 1
    gto.register(MODEL, "v3.1.0")
    gto.tag(MODEL, "assign", "v1.0.0", "prod")
    clock.now += 60
    gto.tag(MODEL, "assign", "v2.0.0", "prod")
    gto.tag(MODEL, "assign", "v3.0.0", "staging")
    clock.now += 60
    registry = GtoRegistry(tmp_path, {"champion": "prod", "challenger": "staging"}, api=gto, clock=clock,
                           sleep=clock.sleep)
    return registry, gto, clock


def test_versions_map_to_major_only_semver():
    assert rewind_version("v3.0.0") == "3" and gto_version("3") == "v3.0.0" and gto_version("03") == "v3.0.0"
    assert rewind_version("v3.1.0") is None and rewind_version("v3.0.0-rc1") is None
    assert rewind_version("ab" * 20) is None


def test_aliases_are_stages_by_mapping_or_by_name():
    names = StageNames({"champion": "prod"})
    assert names.stage_of("champion") == "prod" and names.stage_of("fallback") == "fallback"
    assert names.alias_of("prod") == "champion" and names.alias_of("dev") == "dev"
    assert names.alias_of("champion") is None  # a stage named like an alias mapped elsewhere stays hidden


def test_versions_and_aliases_read_through_the_stages(world):
    registry, gto, clock = world
    versions = registry.list_versions(MODEL)
    assert [v.version for v in versions] == ["1", "2", "3"]  # v3.1.0 cannot be named by Rewind
    assert {v.version: v.aliases for v in versions} == {"1": (), "2": ("champion",), "3": ("challenger",)}
    assert versions[0].source.startswith("churn@v1.0.0 (commit abab")
    assert registry.get_aliases(MODEL).aliases == {"champion": "2", "challenger": "3"}
    assert registry.get_alias(MODEL, "fallback") is None and registry.get_signature(MODEL, "2") is None


def test_an_unknown_model_is_not_found(world):
    registry, gto, clock = world
    with pytest.raises(NotFoundError, match="no model 'nope'"):
        registry.get_aliases("nope")


def test_a_stage_on_a_version_rewind_cannot_name_is_an_error(world):
    registry, gto, clock = world
    gto.tag(MODEL, "assign", "v3.1.0", "staging")
    with pytest.raises(RegistryError, match=r"stage 'staging' of 'churn' holds v3.1.0, which Rewind cannot name"):
        registry.get_aliases(MODEL)


def test_a_rollback_assigns_the_previous_version_again_and_reads_it_back(world):
    registry, gto, clock = world
    assert registry.set_alias(MODEL, "champion", "1", expected="2") == "1"
    assert gto.writes == [("assign", "prod", "v1.0.0", True, False)]  # --force: v1's old assignment counts
    assert clock.slept == []  # the stage's last event was a minute ago
    assert registry.set_alias(MODEL, "champion", "1", expected="2") == "1"  # already there: nothing written
    assert len(gto.writes) == 1


def test_a_stage_moved_by_another_writer_is_refused_and_named(world):
    registry, gto, clock = world
    gto.tag(MODEL, "assign", "v3.0.0", "prod", author="ci-bot")
    clock.now += 5
    with pytest.raises(ConflictError, match=r"stage 'prod' \(alias 'champion'\) of 'churn' holds v3 "
                                            r"\(assigned by ci-bot at .*\), expected v2"):
        registry.set_alias(MODEL, "champion", "1", expected="2", checked=True)
    assert gto.writes == []


def test_a_write_in_the_same_second_as_the_stages_last_event_waits_for_the_next(world):
    registry, gto, clock = world
    clock.now = int(clock.now) + 0.3
    gto.tag(MODEL, "assign", "v1.0.0", "prod")  # this very second
    assert registry.set_alias(MODEL, "champion", "2", expected="1") == "2"
    assert len(clock.slept) == 1 and 0.7 <= clock.slept[0] <= 0.72


def test_without_the_wait_gto_would_keep_the_older_assignment(world):
    registry, gto, clock = world
    registry._wait_past = lambda model, stage: None  # what the wait prevents
    clock.now = int(clock.now) + 0.3
    gto.tag(MODEL, "assign", "v1.0.0", "prod")
    with pytest.raises(ConflictError, match=r"moved under this write: read back at v1, not v2"):
        registry.set_alias(MODEL, "champion", "2", expected="1")


def test_an_unregistered_version_is_not_found(world):
    registry, gto, clock = world
    with pytest.raises(NotFoundError, match=r"v9 of 'churn' is not registered \(no churn@v9.0.0 tag\)"):
        registry.set_alias(MODEL, "champion", "9", expected="2")


def test_removing_an_alias_empties_the_stage_even_of_older_assignments(world):
    registry, gto, clock = world
    gto.tag(MODEL, "assign", "v2.0.0", "staging")
    clock.now += 60
    gto.tag(MODEL, "assign", "v3.0.0", "staging")
    clock.now += 60
    assert registry.delete_alias(MODEL, "challenger", expected="3") is None
    assert [w[:3] for w in gto.writes] == [("unassign", "staging", "v3.0.0"), ("unassign", "staging", "v2.0.0")]
    assert registry.get_alias(MODEL, "challenger") is None
    with pytest.raises(ConflictError, match="holds v2"):
        registry.delete_alias(MODEL, "champion", expected="1")


def test_what_gto_cannot_do_says_so(world):
    registry, gto, clock = world
    for call in (lambda: registry.set_version_tag(MODEL, "1", "k", "v"),
                 lambda: registry.get_version_tag(MODEL, "1", "feast.feature_service"),
                 lambda: registry.swap_version_tag(MODEL, "1", "k", "v", None),
                 lambda: registry.tagged_versions("k", "v")):
        with pytest.raises(RegistryUnsupported, match="GTO has no version tags"):
            call()
    with pytest.raises(RegistryUnsupported, match="a GTO version is a git tag"):
        registry.load(MODEL, "1")


def test_a_missing_repository_is_named_before_gto_is_asked(tmp_path):
    registry = GtoRegistry(tmp_path / "nowhere")
    with pytest.raises(RegistryError, match=r"GTO registry in .*nowhere: no such directory \(registry.repo\)"):
        registry.get_aliases(MODEL)


def _registry_config(section: dict):
    catalogue = [{"name": "rate", "title": "req/s", "unit": "per_second", "query": 'x{model="$model"}'}]
    return parse_config({"registry": section, "router": {"socket": "/tmp/s", "backends": {"m": "b"}},
                         "metrics": {"url": "http://127.0.0.1:9090", "traffic_metric": "rate",
                                     "catalogue": catalogue}}, "test.yaml", environ={})


def test_the_registry_kind_is_mlflow_unless_gto_is_named(tmp_path):
    assert _registry_config({"tracking_uri": "sqlite:///x.db"}).registry.kind == "mlflow"
    config = _registry_config({"kind": "gto", "repo": str(tmp_path), "stages": {"champion": "prod"}})
    assert (config.registry.kind, config.registry.stages, config.registry.push) == ("gto", {"champion": "prod"}, False)


@pytest.mark.parametrize(("section", "message"), [
    ({"kind": "gto"}, "registry: repo is required"),
    ({}, "registry: tracking_uri is required"),
    ({"tracking_uri": "sqlite:///x.db", "repo": "/r"}, "GTO settings: set registry.kind: gto"),
    ({"kind": "gto", "repo": "/r", "stages": {"champion": "pro d"}}, "not a GTO stage name"),
    ({"kind": "gto", "repo": "/r", "stages": {"champion": "prod", "challenger": "prod"}}, "more than one alias"),
    ({"kind": "svn", "tracking_uri": "sqlite:///x.db"}, "registry.kind"),
])
def test_bad_registry_settings_are_one_line_naming_the_setting(section, message):
    with pytest.raises(ConfigError, match=message):
        _registry_config(section)


def test_the_wiring_builds_the_gto_registry(tmp_path):
    from console.wiring import build_registry

    registry = build_registry(_registry_config({"kind": "gto", "repo": str(tmp_path),
                                                "stages": {"champion": "prod"}}))
    assert isinstance(registry, GtoRegistry) and registry.names.stage_of("champion") == "prod"
