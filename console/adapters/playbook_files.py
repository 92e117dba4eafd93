"""The playbook files of the configured directories: read safely, validated, found by id.

Implements :class:`console.adapters.protocols.PlaybookSource` over
:mod:`console.adapters.playbook_yaml`. A file is read once; the playbook and the
exact text it was validated from travel together, so the text a run journals is
the text that was checked.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from console.adapters.playbook_yaml import load_playbook_with_text, read_playbook_text
from console.domain.errors import UsageError
from console.domain.playbook import LoadedPlaybook, Playbook
from console.domain.playbook_check import CheckContext, Problem

if TYPE_CHECKING:
    from console.config import Config


@dataclass(frozen=True)
class FileCheck:
    """One playbook file, checked.

    Attributes:
        path: the file.
        loaded: the playbook it holds, when it reads as one (a duplicate id still gives one).
        problems: every problem; none when the file is valid.
    """

    path: Path
    loaded: LoadedPlaybook | None
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        """Whether the file is a valid playbook the library takes."""
        return self.loaded is not None and not self.problems


def check_context(config: Config) -> CheckContext:
    """What a playbook may name under this config: its metrics, endpoints and webhooks, and its rules."""
    return CheckContext(
        metric_names=frozenset(m.name for m in config.metrics.catalogue),
        endpoint_names=frozenset(config.endpoints),
        webhook_names=frozenset(config.notify.webhooks),
        require_confirmation=config.playbooks.require_confirmation,
    )


class PlaybookFiles:
    """``*.yaml`` and ``*.yml`` files in ``dirs``; a name found in an earlier directory hides later ones.

    Args:
        dirs: the directories, in order.
        context: the names playbooks are checked against.
        remember: keep each file's check while its size, modification time and inode stay the same (a
            long-running reader such as ``rewind alerts serve`` then reads the library in a few stats, and
            still sees every edit at once).
    """

    def __init__(self, dirs: Sequence[Path], context: CheckContext, remember: bool = False) -> None:
        self.dirs = tuple(dirs)
        self.context = context
        self._remembered: dict[Path, tuple[tuple[int, int, int], tuple[LoadedPlaybook | None, list[Problem]]]] | None
        self._remembered = {} if remember else None

    def describe(self) -> str:
        return ", ".join(str(d) for d in self.dirs) or "no directory"

    def files(self) -> list[Path]:
        """Every playbook file, the first of each name, sorted by name."""
        found: dict[str, Path] = {}
        for directory in self.dirs:
            if directory.is_dir():
                for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
                    if path.name.lower() != "readme.yaml":
                        found.setdefault(path.name, path)
        return [found[name] for name in sorted(found)]

    def check(self, path: Path) -> tuple[LoadedPlaybook | None, list[Problem]]:
        """One file, read and checked."""
        stamp: tuple[int, int, int] | None = None
        if self._remembered is not None:
            try:
                status = path.stat()
                stamp = (status.st_size, status.st_mtime_ns, status.st_ino)
            except OSError:
                stamp = None
            kept = self._remembered.get(path)
            if stamp is not None and kept is not None and kept[0] == stamp:
                return kept[1][0], list(kept[1][1])
        playbook, problems, text = load_playbook_with_text(path, self.context)
        result: tuple[LoadedPlaybook | None, list[Problem]] = (
            (None, problems) if playbook is None or problems or text is None else (LoadedPlaybook(playbook, text), []))
        if self._remembered is not None and stamp is not None:
            self._remembered[path] = (stamp, (result[0], list(result[1])))
        return result

    def check_files(self, paths: Sequence[Path]) -> list[FileCheck]:
        """These files, each checked on its own (their ids are not compared)."""
        checks = []
        for path in paths:
            loaded, problems = self.check(path)
            checks.append(FileCheck(path, loaded, tuple(problems)))
        return checks

    def check_library(self) -> list[FileCheck]:
        """Every playbook file, checked; a file reusing an earlier file's id is refused."""
        checks: list[FileCheck] = []
        seen: dict[str, str] = {}
        for path in self.files():
            loaded, found = self.check(path)
            if loaded is not None:
                first = seen.get(loaded.playbook.id)
                if first is not None:
                    found = [Problem(str(path), 0, 0, "id", f"id {loaded.playbook.id!r} is already used by "
                                                            f"{first}: playbook ids are unique")]
                else:
                    seen[loaded.playbook.id] = str(path)
            checks.append(FileCheck(path, loaded, tuple(found)))
        return checks

    def load(self) -> tuple[list[LoadedPlaybook], list[Problem]]:
        checks = self.check_library()
        valid = [check.loaded for check in checks if check.ok and check.loaded is not None]
        return valid, [problem for check in checks for problem in check.problems]

    def find(self, playbook_id: str) -> LoadedPlaybook:
        path = Path(playbook_id)
        if path.suffix in (".yaml", ".yml") and path.exists():
            loaded, problems = self.check(path)
            if loaded is None:
                raise UsageError(f"{path} does not validate: {problems[0] if problems else 'invalid'} "
                                 f"(rewind playbook validate {path})")
            return loaded
        valid, problems = self.load()
        for loaded in valid:
            if loaded.playbook.id == playbook_id:
                return loaded
        broken = [p for p in problems if Path(p.file).stem == playbook_id]
        if broken:
            raise UsageError(f"playbook {playbook_id} does not validate: {broken[0]} "
                             f"(rewind playbook validate {broken[0].file})")
        ids = [loaded.playbook.id for loaded in valid]
        close = difflib.get_close_matches(playbook_id, ids, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(ids) or 'none'}"
        raise UsageError(f"no playbook {playbook_id!r} in {self.describe()}{hint}")

    def parse(self, text: str, source: str) -> Playbook:
        playbook, problems = read_playbook_text(text, source, self.context)
        if playbook is None:
            raise UsageError(f"{source} no longer validates: {problems[0] if problems else 'invalid'}")
        return playbook
