"""The GTO registry against real git: a repository made here, versions and stages tagged by the gto CLI.

Rewind's reads are compared with what ``gto show`` reports; a rollback through the rollback
service (preview, compare-and-set, read-back, journal) moves the prod stage's tag in the
repository; a writer that is not Rewind (the gto CLI as another process and identity)
moving the stage makes Rewind refuse. No network, no shared sandbox.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console.adapters.gto_registry import GtoRegistry
from console.adapters.journal_sql import SqlActionLock, SqlJournal
from console.domain.errors import ConflictError
from console.domain.journal import Actor, EventKind
from console.domain.rollback import AliasMove
from console.services.journal import JournalService
from console.services.rollback import RollbackService, RollbackSettings
from tests.fixtures.fakes import FakeRouter
from tests.fixtures.servers import IN_CI, require_binary, wait_for

MODEL = "churn"
STAGES = {"champion": "prod", "challenger": "staging"}


def gto_binary() -> str:
    """The gto CLI installed beside this Python (the gto extra, part of dev)."""
    path = Path(sys.executable).with_name("gto")
    if path.exists():
        return str(path)
    message = "gto is not installed (pip install -e '.[dev]')"
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


class Repo:
    """A git repository of model versions, driven by git and the gto CLI as a team would."""

    def __init__(self, path: Path):
        self.path = path
        self.git_bin = require_binary("git", "git")
        self.gto_bin = gto_binary()

    def git(self, *args: str) -> str:
        return subprocess.run([self.git_bin, *args], cwd=self.path, check=True, capture_output=True,
                              text=True, timeout=30).stdout.strip()

    def gto(self, *args: str, who: str | None = None) -> str:
        env = {**os.environ}
        if who:  # another writer: its own identity on the tags it makes
            env.update(GIT_COMMITTER_NAME=who, GIT_COMMITTER_EMAIL=f"{who}@example.invalid")
        done = subprocess.run([self.gto_bin, *args], cwd=self.path, capture_output=True, text=True, timeout=60,
                              env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def shown_stages(self) -> dict[str, str | None]:
        """What ``gto show`` reports for each stage of the model."""
        return json.loads(self.gto("show", "--json"))[MODEL]["stage"]

    def stage_tags(self, stage: str) -> dict[str, str]:
        """Every tag of a stage -> the commit it points at (assignments and unassignments)."""
        lines = self.git("for-each-ref", "--format=%(refname:short) %(*objectname)", f"refs/tags/{MODEL}#{stage}*")
        return dict(line.split() for line in lines.splitlines())

    def commit_of(self, version: str) -> str:
        return self.git("rev-parse", f"{MODEL}@{version}^{{commit}}")


def next_second() -> None:
    """Wait for the clock's next second: GTO orders stage tags by their times in whole seconds."""
    started = int(time.time())
    wait_for(lambda: int(time.time()) > started, 2, "the next second", interval=0.02)


@pytest.fixture(scope="module")
def team_repo(tmp_path_factory) -> Path:
    """v1..v3 registered; prod held v1, then v2 (the champion now); staging holds v3 (the challenger).

    Made once, by the team's gto in this process (its CLI costs a second or more a call here); each
    test works on its own copy.
    """
    import gto.api

    path = tmp_path_factory.mktemp("gto") / "models"
    path.mkdir()
    repo = Repo(path)
    repo.git("init", "-q", "-b", "main")
    repo.git("config", "user.name", "Model Team")
    repo.git("config", "user.email", "models@example.invalid")
    repo.git("config", "tag.gpgSign", "false")
    repo.git("config", "commit.gpgSign", "false")
    for n in (1, 2, 3):
        (path / "model.txt").write_text(f"weights of v{n}\n")
        repo.git("add", "model.txt")
        repo.git("commit", "-q", "-m", f"train v{n}")
        gto.api.register(str(path), MODEL, "HEAD", version=f"v{n}.0.0")
    gto.api.assign(str(path), MODEL, "prod", version="v1.0.0")
    next_second()
    gto.api.assign(str(path), MODEL, "prod", version="v2.0.0")
    gto.api.assign(str(path), MODEL, "staging", version="v3.0.0")
    return path


@pytest.fixture
def repo(team_repo, tmp_path) -> Repo:
    copy = tmp_path / "models"
    shutil.copytree(team_repo, copy, symlinks=True)
    return Repo(copy)


class QuietMetrics:
    def describe(self):
        return "no metrics (the registry is under test)"

    def evaluate(self, specs, model, at=None):
        return {}


@pytest.fixture
def rollback(tmp_path, repo):
    """The rollback use case over the real GTO registry, a real SQLite journal and a fake router."""
    journal = SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}")
    journaled = JournalService(journal, Actor("alice", "bastion"))
    router = FakeRouter()
    router.weights = {"1": 0, "2": 100, "3": 0}
    registry = GtoRegistry(repo.path, STAGES)
    service = RollbackService(registry, router, QuietMetrics(), journaled, SqlActionLock(journal), (), None,
                              settings=RollbackSettings(gate_window_s=0.0, poll_interval_s=0.0))
    incident = journaled.open_incident(MODEL, "2", "v2 misbehaves").incident_id
    yield service, journaled, incident, router
    journal.close()


def test_versions_and_stages_read_as_gto_show_reports_them(repo):
    registry = GtoRegistry(repo.path, STAGES)
    assert repo.shown_stages() == {"prod": "v2.0.0", "staging": "v3.0.0"}
    assert registry.get_aliases(MODEL).aliases == {"champion": "2", "challenger": "3"}
    versions = registry.list_versions(MODEL)
    assert [(v.version, v.aliases) for v in versions] == [("1", ()), ("2", ("champion",)), ("3", ("challenger",))]
    assert versions[0].source == f"{MODEL}@v1.0.0 (commit {repo.commit_of('v1.0.0')[:12]})"
    # Without a mapping each stage is the alias of its own name.
    assert GtoRegistry(repo.path).get_aliases(MODEL).aliases == {"prod": "2", "staging": "3"}


def test_a_rollback_moves_the_prod_stage_tag_and_an_outside_writer_is_refused(repo, rollback):
    service, journaled, incident, router = rollback
    tags_before = repo.stage_tags("prod")

    preview = service.preview(MODEL, leave="2", target="1", reason="v2 misbehaves")
    assert preview.plan.alias_moves == (AliasMove("champion", "2", "1"),)
    assert "not checked" in preview.signature.reason  # GTO keeps no model signatures
    outcome = service.apply(preview, incident)
    assert outcome.status == "applied" and outcome.aliases == {"champion": "1", "challenger": "3"}
    assert router.weights == {"1": 100, "2": 0, "3": 0}

    # The stage moved in git: one new prod tag, on v1's commit, and gto itself reads v1 in prod.
    new_tags = {t: c for t, c in repo.stage_tags("prod").items() if t not in tags_before}
    assert list(new_tags.values()) == [repo.commit_of("v1.0.0")]
    assert repo.git("tag", "-l", "--format=%(contents:subject)", *new_tags).startswith("Rewind: stage prod")
    assert repo.shown_stages() == {"prod": "v1.0.0", "staging": "v3.0.0"}

    applied = list(journaled.journal.events(incident, [EventKind.ACTION_APPLIED]))[-1].payload
    assert applied["observed"]["aliases"] == {"champion": "1", "challenger": "3"}
    assert "GTO has no version tags" in (service.record_history(preview.plan) or "")

    # Another writer (CI, a teammate) puts v3 in prod after Rewind's preview of going back to v2.
    going_back = service.preview(MODEL, leave="1", target="2", reason="v1 is worse")
    next_second()  # a tag in the same second as Rewind's would be ambiguous to GTO itself
    repo.gto("assign", MODEL, "--version", "v3.0.0", "--stage", "prod", "--force", who="ci-bot")
    with pytest.raises(ConflictError, match=r"champion.*v3"):
        service.apply(going_back, incident)
    failed = list(journaled.journal.events(incident, [EventKind.ACTION_FAILED]))[-1].payload
    assert failed["conflict"] is True and failed["observed"]["aliases"]["champion"] == "3"
    assert router.weights == {"1": 100, "2": 0, "3": 0}  # nothing changed
    assert repo.shown_stages()["prod"] == "v3.0.0"

    # The adapter's own compare-and-set refuses too, and names the writer.
    with pytest.raises(ConflictError, match=r"stage 'prod' \(alias 'champion'\) of 'churn' holds v3 "
                                            r"\(assigned by ci-bot at .*\), expected v1"):
        service.registry.set_alias(MODEL, "champion", "2", expected="1")
    assert repo.shown_stages()["prod"] == "v3.0.0"


def test_removing_the_challenger_empties_the_staging_stage(repo):
    registry = GtoRegistry(repo.path, STAGES)
    assert registry.delete_alias(MODEL, "challenger", expected="3") is None
    assert repo.shown_stages() == {"prod": "v2.0.0"}  # gto show lists no stage that holds nothing
    assert registry.get_aliases(MODEL).aliases == {"champion": "2"}
    # Putting it back (an undo) is an assignment again, read back through gto.
    assert registry.set_alias(MODEL, "challenger", "3", expected=None) == "3"
    assert repo.shown_stages()["staging"] == "v3.0.0"


def test_with_registry_push_each_stage_tag_reaches_origin(repo, tmp_path):
    """``registry.push``: the team's other clones see the rollback, through origin (a bare repository here)."""
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True, capture_output=True)
    repo.git("remote", "add", "origin", str(origin))
    repo.git("push", "-q", "origin", "main", "--tags")
    before = set(repo.stage_tags("prod"))

    GtoRegistry(repo.path, STAGES, push=True).set_alias(MODEL, "champion", "1", expected="2")
    [new] = set(repo.stage_tags("prod")) - before
    on_origin = subprocess.run(["git", "ls-remote", "--tags", str(origin), f"refs/tags/{new}"],
                               capture_output=True, text=True, check=True).stdout.split()
    assert on_origin and on_origin[1] == f"refs/tags/{new}"
