"""DVC's GTO (git tags as a model registry) behind the registry protocol.

GTO keeps a model's versions and stages as annotated tags in a git repository:
``churn@v3.0.0`` registers version v3.0.0 of ``churn`` at a commit, ``churn#prod#7``
assigns stage ``prod`` to the version at that commit (``#7`` is GTO's counter) and
``churn#prod!#8`` unassigns it. What a stage holds is what ``gto show`` reports by
default: the version with the newest assignment still in effect, newest by the
tags' times. So a rollback is a new assignment of the previous version
(``gto assign --force``: that version was assigned before and its assignment still
counts, so GTO wants ``--force`` to tag it again), and the stage's tag history is
its audit trail.

How Rewind's words map onto GTO's:

- **Versions.** Rewind numbers versions (the router's server names and the
  metrics' labels are built from the number); GTO versions are semver. Version
  ``N`` is GTO's ``vN.0.0`` (what ``gto register --bump-major`` makes). A version
  with a minor, patch or pre-release part is not listed, and a stage on one is an
  error naming it: Rewind cannot name it.
- **Aliases are stages.** ``registry.stages`` maps an alias (``champion``) to a
  stage (``prod``); an alias not listed is the stage of the same name, and a stage
  not listed shows as the alias of its own name.
- **Compare-and-set.** Tag creation is unconditional, so :meth:`GtoRegistry.set_alias`
  reads the stage, refuses when it moved (naming who assigned it and when), assigns,
  and reads it back. GTO orders assignments by their tags' times in whole seconds:
  of two in one second ``gto show`` keeps the version registered first (measured on
  gto 1.10.1: v1 then v2 within a second, and the stage still showed v1), so a write
  waits, at most a second, until the clock is past the stage's newest event.
- **Not in GTO.** Version tags (the feature-service link, Rewind's history tags),
  loading a version's artifacts (they live in DVC or elsewhere, not in the tags)
  and model signatures: the first two raise :class:`RegistryUnsupported`, a
  signature is ``None``.

gto is imported on first use (about half a second): only a console configured with
``registry.kind: gto`` pays for it. The repository must be a local clone: GTO
would clone a URL, and Rewind never reaches the network for its registry. Tags
are created in that clone; ``registry.push`` also pushes each one to ``origin``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from console.domain.errors import ConflictError, NotFoundError, RegistryError, RegistryUnsupported
from console.domain.versions import AliasMap, ModelVersion, normalise_version, shown_version, version_sort_key

_MAJOR_ONLY = re.compile(r"^v(0|[1-9][0-9]*)\.0\.0$")


def rewind_version(gto_version: str) -> str | None:
    """Rewind's number for a GTO version: ``v3.0.0`` is ``3``; ``None`` for any other (``v3.1.0``, a commit)."""
    match = _MAJOR_ONLY.match(gto_version)
    return match.group(1) if match else None


def gto_version(version: str) -> str:
    """GTO's name for Rewind's version ``3``: ``v3.0.0``."""
    return f"v{normalise_version(version)}.0.0"


@dataclass(frozen=True)
class StageNames:
    """Rewind's aliases as GTO stages: as configured (``registry.stages``), else by the same name."""

    mapping: Mapping[str, str]

    def stage_of(self, alias: str) -> str:
        """The GTO stage that holds ``alias``."""
        return self.mapping.get(alias, alias)

    def alias_of(self, stage: str) -> str | None:
        """The alias a GTO stage shows as; ``None`` when its name is an alias configured onto another stage."""
        for alias, mapped in self.mapping.items():
            if mapped == stage:
                return alias
        return None if stage in self.mapping else stage


@dataclass(frozen=True)
class _Holder:
    """The version a stage holds, as GTO reports it, and the assignment that put it there."""

    gto_version: str
    assigned_at: datetime | None
    author: str | None


@dataclass(frozen=True)
class _State:
    """One read of a model in GTO: its registered versions and what each stage holds."""

    versions: list[dict[str, Any]]
    stages: dict[str, _Holder]


class GtoRegistry:
    """A :class:`~console.adapters.protocols.Registry` on GTO's git tags.

    Args:
        repo: the local git repository holding the tags (``registry.repo``).
        stages: alias -> GTO stage (``registry.stages``); other aliases are stages of their own name.
        push: push every tag Rewind creates to ``origin`` (``registry.push``).
        api: GTO's Python API (``gto.api``); tests pass a fake. Imported on first use otherwise.
        clock, sleep: the wall clock and the wait, for the one-second ordering rule.
    """

    def __init__(self, repo: str | Path, stages: Mapping[str, str] | None = None, push: bool = False,
                 api: Any = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.repo = Path(repo).expanduser()
        self.names = StageNames(dict(stages or {}))
        self.push = push
        self._api = api
        self._clock = clock
        self._sleep = sleep

    def describe(self) -> str:
        """Where the registry is."""
        return f"GTO registry in {self.repo}"

    # -- GTO ----------------------------------------------------------------------------------
    @property
    def api(self) -> Any:
        """``gto.api``, imported on first use; the repository is checked first."""
        if not self.repo.is_dir():
            # GTO takes a path that does not exist for a URL and tries to clone it: say what is wrong instead.
            raise RegistryError(f"{self.describe()}: no such directory (registry.repo)")
        if self._api is None:
            try:
                import gto.api
            except ImportError:
                raise RegistryError(f"{self.describe()}: gto is not installed; install Rewind's gto extra "
                                    "(pip install 'rewind-console[gto]') (registry.kind)") from None
            self._api = gto.api
        return self._api

    def _call(self, what: str, model: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one GTO call, turning its exceptions (and git's) into Rewind's."""
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - GTO, scmrepo and the git backends each raise their own
            name, module = type(exc).__name__, type(exc).__module__
            if not module.startswith(("gto", "scmrepo", "git", "pygit2", "dulwich")):
                raise
            detail = (str(exc).strip().splitlines() or [name])[0][:200]
            if name == "ArtifactNotFound":
                raise NotFoundError(f"{self.describe()}: no model {model!r} (no {model}@vN.0.0 tag)") from None
            if name == "TagExists":
                raise ConflictError(f"{self.describe()}: another writer tagged {model!r} at the same moment "
                                    f"({detail}); read the stage again") from None
            if module.startswith("scmrepo") and "not a git repository" in detail:
                raise RegistryError(f"{self.describe()}: not a git repository (registry.repo)") from None
            raise RegistryError(f"{self.describe()}: {what} failed: {detail}") from None

    def _read(self, model: str) -> _State:
        """The model as ``gto show MODEL`` reports it (its default order: by the tags' times)."""
        api = self.api
        shown = self._call(f"read {model!r}", model, api.show, str(self.repo), name=model,
                           sort=api.VersionSort.Timestamp)
        versions, stages = [], {}
        for entry in shown:
            if entry.get("registrations"):
                versions.append(entry)
            for held in entry.get("stages") or []:
                stages[held["stage"]] = _Holder(str(held["version"]), held.get("created_at"), held.get("author"))
        return _State(versions, stages)

    def _last_event_at(self, model: str, stage: str) -> float | None:
        """When the stage's newest assignment or unassignment was tagged (epoch seconds), of any version."""
        events = self._call(f"read the history of {model!r}", model, self.api.history, str(self.repo), artifact=model)
        times = [e["timestamp"].timestamp() for e in events
                 if e.get("stage") == stage and isinstance(e.get("timestamp"), datetime)]
        return max(times) if times else None

    def _wait_past(self, model: str, stage: str) -> None:
        """Wait until a tag made now sorts after every earlier event of the stage (tags have whole seconds)."""
        last = self._last_event_at(model, stage)
        if last is None:
            return
        remaining = int(last) + 1 - self._clock()
        if remaining > 0:
            self._sleep(remaining + 0.01)

    # -- reads ----------------------------------------------------------------------------------
    def _aliases(self, model: str, state: _State) -> dict[str, str]:
        aliases = {}
        for stage, holder in state.stages.items():
            alias = self.names.alias_of(stage)
            if alias is not None:
                aliases[alias] = self._named(model, stage, holder)
        return aliases

    def _named(self, model: str, stage: str, holder: _Holder) -> str:
        version = rewind_version(holder.gto_version)
        if version is None:
            raise RegistryError(f"{self.describe()}: stage {stage!r} of {model!r} holds {holder.gto_version}, "
                                "which Rewind cannot name: it numbers versions, GTO's vN.0.0")
        return version

    def get_aliases(self, model: str) -> AliasMap:
        """Every stage of the model as an alias; NotFoundError for an unknown model."""
        return AliasMap(model, self._aliases(model, self._read(model)))

    def list_versions(self, model: str, with_signatures: bool = False) -> list[ModelVersion]:
        """Every registered ``vN.0.0`` version, oldest first, each with the aliases (stages) it holds."""
        state = self._read(model)
        aliases = AliasMap(model, self._aliases(model, state))
        listed = []
        for entry in state.versions:
            version = rewind_version(str(entry["version"]))
            if version is None:
                continue  # v1.2.0 and the like: Rewind's versions are whole numbers (module docstring)
            commit = str(entry.get("commit_hexsha") or "")
            listed.append(ModelVersion(
                model=model, version=version, run_id=None, created_at=entry.get("created_at"),
                source=f"{model}@{entry['version']} (commit {commit[:12]})", aliases=aliases.aliases_of(version),
            ))
        return sorted(listed, key=lambda v: version_sort_key(v.version))

    def list_models(self) -> list[str]:
        """Every model with a registered version (``gto show`` of the whole repository), sorted; deprecated ones
        are left out, as GTO leaves them out."""
        api = self.api
        shown = self._call("list the models", "", api.show, str(self.repo)) or {}
        return sorted(str(name) for name, state in shown.items() if (state or {}).get("registered"))

    def get_signature(self, model: str, version: str) -> dict | None:
        """GTO records no model signature: always ``None``."""
        return None

    def get_alias(self, model: str, alias: str) -> str | None:
        """The version the alias's stage holds, or ``None``."""
        stage = self.names.stage_of(alias)
        holder = self._read(model).stages.get(stage)
        return None if holder is None else self._named(model, stage, holder)

    # -- writes ---------------------------------------------------------------------------------
    def _moved(self, model: str, alias: str, current: str | None, expected: str | None) -> ConflictError:
        stage = self.names.stage_of(alias)
        holder = self._read(model).stages.get(stage)
        who = ""
        if holder is not None:
            when = holder.assigned_at.strftime("%Y-%m-%d %H:%M:%S %Z") if holder.assigned_at else "an unknown time"
            who = f" (assigned by {holder.author or 'someone'} at {when})"
        return ConflictError(f"{self.describe()}: stage {stage!r} (alias {alias!r}) of {model!r} holds "
                             f"{shown_version(current)}{who}, expected {shown_version(expected)}")

    def set_alias(self, model: str, alias: str, version: str, expected: str | None,
                  checked: bool = False) -> str | None:
        """Assign the alias's stage to ``version`` if it still holds ``expected``; the stage read back.

        The stage is read again even when ``checked``: a read is a local one (milliseconds), and a
        writer outside Rewind (``gto assign`` by hand, CI) is not held off by Rewind's action lock.

        Raises:
            ConflictError: the stage moved since the caller read it, or under this write.
            NotFoundError: the model, or ``vN.0.0`` for ``version``, is not registered.
        """
        version = normalise_version(version)
        stage = self.names.stage_of(alias)
        state = self._read(model)
        holder = state.stages.get(stage)
        current = None if holder is None else self._named(model, stage, holder)
        if current != expected and current != version:
            raise self._moved(model, alias, current, expected)
        if current != version:
            tag = gto_version(version)
            if not any(str(v["version"]) == tag for v in state.versions):
                raise NotFoundError(f"{self.describe()}: v{version} of {model!r} is not registered "
                                    f"(no {model}@{tag} tag)")
            self._wait_past(model, stage)
            self._call(f"assign stage {stage!r}", model, self.api.assign, str(self.repo), model, stage=stage,
                       version=tag, force=True, push=self.push,
                       message=f"Rewind: stage {stage} (alias {alias}) of {model} to {tag}, "
                               f"was {shown_version(current)}")
        after = self.get_alias(model, alias)
        if after != version:
            raise ConflictError(f"{self.describe()}: stage {stage!r} of {model!r} moved under this write: read "
                                f"back at {shown_version(after)}, not v{version} (another writer)")
        return after

    def delete_alias(self, model: str, alias: str, expected: str | None, checked: bool = False) -> str | None:
        """Empty the alias's stage if it still holds ``expected``; the read-back (``None``).

        GTO's stage falls back to an older assignment still in effect when the newest is
        unassigned, so each one it then shows is unassigned too, until the stage is empty.

        Raises:
            ConflictError: the stage holds another version, or another writer assigned it meanwhile.
        """
        stage = self.names.stage_of(alias)
        holder = self._read(model).stages.get(stage)
        current = None if holder is None else self._named(model, stage, holder)
        if current is None:
            return None
        if current != expected:
            raise self._moved(model, alias, current, expected)
        while holder is not None:
            self._wait_past(model, stage)
            started = self._clock()
            self._call(f"unassign stage {stage!r}", model, self.api.unassign, str(self.repo), model, stage=stage,
                       version=holder.gto_version, push=self.push,
                       message=f"Rewind: stage {stage} (alias {alias}) of {model} emptied, was {holder.gto_version}")
            holder = self._read(model).stages.get(stage)
            if holder is not None and (holder.assigned_at is None or holder.assigned_at.timestamp() >= int(started)):
                raise ConflictError(f"{self.describe()}: stage {stage!r} of {model!r} was assigned to "
                                    f"{holder.gto_version} under this removal (another writer)")
        return None

    def _no_tags(self, what: str) -> RegistryUnsupported:
        return RegistryUnsupported(f"{self.describe()}: {what}: GTO has no version tags "
                                   "(feature-service links and Rewind's history tags need MLflow)")

    def set_version_tag(self, model: str, version: str, key: str, value: str) -> None:
        """Unsupported: GTO has no version tags (the stage's tags and the journal keep the history)."""
        raise self._no_tags(f"cannot tag v{version} with {key}")

    def get_version_tag(self, model: str, version: str, key: str) -> str | None:
        """Unsupported: GTO has no version tags."""
        raise self._no_tags(f"cannot read tag {key} of v{version}")

    def swap_version_tag(self, model: str, version: str, key: str, value: str | None,
                         expected: str | None) -> str | None:
        """Unsupported: GTO has no version tags."""
        raise self._no_tags(f"cannot move tag {key} of v{version}")

    def tagged_versions(self, key: str, value: str) -> list[tuple[str, str]]:
        """Unsupported: GTO has no version tags."""
        raise self._no_tags(f"cannot search versions tagged {key}")

    def load(self, model: str, version: str) -> dict[str, object]:
        """Unsupported: a GTO version is a git tag; its artifacts live in DVC or elsewhere."""
        raise RegistryUnsupported(f"{self.describe()}: cannot load {model} v{version}: a GTO version is a git "
                                  "tag, and its artifacts live outside GTO (DVC or another store)")
