"""Reading playbook files safely: YAML in, the checked :class:`Playbook` (or every problem) out.

A playbook file may come from anyone who can write to a playbook directory,
so it is read as hostile: at most :data:`MAX_BYTES` are read, and a file that
is too large, not UTF-8 text, holds NUL or control characters, very long
lines, tabs in its indentation, YAML anchors or aliases (alias bombs), tags
other than the plain core ones (``!!python/object`` and friends), duplicate
keys, nesting deeper than :data:`MAX_DEPTH` or more than :data:`MAX_NODES`
values is refused with one problem naming the file, before anything is built
from it. Nothing in a file is ever constructed as a Python object: the YAML
event stream (libyaml's parser when available) is turned into the plain
positioned nodes of :mod:`console.domain.playbook_check`, which then checks
the playbook language and reports every problem.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from console.domain.playbook import Playbook, Position
from console.domain.playbook_check import (
    CheckContext,
    MappingNode,
    Node,
    Problem,
    ScalarNode,
    SequenceNode,
    check_playbook,
)

MAX_BYTES = 1024 * 1024
"""The largest playbook file read (1 MiB); only this many bytes plus one are ever read."""

MAX_LINE = 10_000
"""The longest line, in characters."""

MAX_DEPTH = 64
"""The deepest nesting of mappings and lists."""

MAX_NODES = 50_000
"""The most values (scalars, lists and mappings) in one file."""

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CORE = "tag:yaml.org,2002:"
_PLAIN_TAGS = {
    "scalar": {f"{_CORE}{name}" for name in ("str", "int", "float", "bool", "null")},
    "sequence": {f"{_CORE}seq"},
    "mapping": {f"{_CORE}map"},
}
# Characters YAML does not allow in a stream (NUL is reported on its own): C0 and C1 controls but tab, line
# feed, carriage return and next-line, DEL, and the two non-characters.
_CONTROL = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]")
_TAB_INDENT = re.compile(r"^ *\t", re.MULTILINE)
_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()


class _Refused(Exception):
    """The file is refused as a whole: one message, and where when known."""

    def __init__(self, message: str, position: Position | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position or Position(0, 0)

    def problem(self, source: str) -> Problem:
        return Problem(source, self.position.line, self.position.column, "", self.message)


# -- bytes to text -----------------------------------------------------------------------------------

def _position_of_byte(content: bytes, offset: int) -> Position:
    line_start = content.rfind(b"\n", 0, offset) + 1
    column = len(content[line_start:offset].decode("utf-8", errors="replace")) + 1
    return Position(content.count(b"\n", 0, offset) + 1, column)


def _position_of_char(text: str, offset: int) -> Position:
    return Position(text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1)


_LIMIT = f"the limit is 1 MiB, {MAX_BYTES:,} bytes" if MAX_BYTES == 1024 * 1024 else f"the limit is {MAX_BYTES:,} bytes"


def _decode(content: bytes) -> str:
    """The file's text, or a refusal: too large, NUL bytes, not UTF-8."""
    if len(content) > MAX_BYTES:
        raise _Refused(f"larger than a playbook may be (more than {MAX_BYTES:,} bytes; {_LIMIT})")
    nul = content.find(b"\x00")
    if nul >= 0:
        raise _Refused("NUL byte: a playbook is UTF-8 text (is this a binary or a UTF-16 file?)",
                       _position_of_byte(content, nul))
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        bad = content[error.start:error.start + 1].hex()
        raise _Refused(f"not UTF-8 text: byte 0x{bad} cannot be decoded (save the file as UTF-8)",
                       _position_of_byte(content, error.start)) from None


def _screen(text: str) -> None:
    """Refuse control characters, very long lines and tab indentation before YAML sees the text."""
    control = _CONTROL.search(text)
    if control:
        raise _Refused(f"control character U+{ord(control.group()):04X} is not allowed in a playbook",
                       _position_of_char(text, control.start()))
    if len(text) > MAX_LINE:
        for number, line in enumerate(text.split("\n"), start=1):
            if len(line) > MAX_LINE:
                raise _Refused(f"line {number} is {len(line)} characters long; the limit is {MAX_LINE}",
                               Position(number, 1))
    tab = _TAB_INDENT.search(text)
    if tab:
        raise _Refused("tab in the indentation: YAML indents with spaces only",
                       _position_of_char(text, tab.end() - 1))


# -- YAML events to nodes ----------------------------------------------------------------------------

def _where(mark: yaml.Mark | None) -> Position | None:
    return Position(mark.line + 1, mark.column + 1) if mark is not None else None


def _show_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag


class _Collection:
    """A list or mapping whose end the parser has not reached yet."""

    def __init__(self, position: Position, is_mapping: bool) -> None:
        self.position = position
        self.is_mapping = is_mapping
        self.items: list[Node] = []
        self.entries: list[tuple[ScalarNode, Node]] = []
        self.key: ScalarNode | None = None
        self.seen: dict[tuple[type, object], ScalarNode] = {}

    def add(self, node: Node) -> None:
        if not self.is_mapping:
            self.items.append(node)
        elif self.key is None:
            if not isinstance(node, ScalarNode):  # collections are refused as keys when they start
                raise _Refused("a mapping key must be a plain value", node.position)
            identity = (type(node.value), node.value)
            first = self.seen.get(identity)
            if first is not None:
                raise _Refused(f"duplicate key {node.raw!r} (first at line {first.position.line}): YAML would "
                               f"silently keep only the last one", node.position)
            self.seen[identity] = node
            self.key = node
        else:
            self.entries.append((self.key, node))
            self.key = None

    def finish(self) -> Node:
        if self.is_mapping:
            return MappingNode(tuple(self.entries), self.position)
        return SequenceNode(tuple(self.items), self.position)


def _scalar(event: yaml.ScalarEvent, position: Position) -> ScalarNode:
    """A scalar resolved by the core schema; numbers and booleans built by the safe constructor only."""
    if event.tag is None:
        tag = _RESOLVER.resolve(yaml.ScalarNode, event.value, event.implicit)
    elif event.tag == "!":
        tag = f"{_CORE}str"
    else:
        tag = event.tag
    node = yaml.ScalarNode(tag, event.value)
    try:
        if tag == f"{_CORE}int":
            return ScalarNode(_CONSTRUCTOR.construct_yaml_int(node), event.value, position)
        if tag == f"{_CORE}float":
            return ScalarNode(_CONSTRUCTOR.construct_yaml_float(node), event.value, position)
        if tag == f"{_CORE}bool":
            return ScalarNode(_CONSTRUCTOR.construct_yaml_bool(node), event.value, position)
    except (ValueError, KeyError, OverflowError):
        shown = repr(event.value) if len(event.value) <= 40 else f"a value of {len(event.value)} characters"
        raise _Refused(f"{shown} is not a valid {_show_tag(tag)}", position) from None
    if tag == f"{_CORE}null":
        return ScalarNode(None, event.value, position)
    return ScalarNode(event.value, event.value, position)  # text; timestamps and the like stay text


def _compose(text: str) -> Node | None:
    """The document's root node (``None`` when there is none), built from the parser's events."""
    stack: list[_Collection] = []
    root: Node | None = None
    documents = 0
    count = 0

    def attach(node: Node) -> None:
        nonlocal root
        if stack:
            stack[-1].add(node)
        else:
            root = node

    for event in _events(text):
        position = _where(event.start_mark) or Position(0, 0)
        if isinstance(event, yaml.StreamStartEvent | yaml.StreamEndEvent | yaml.DocumentEndEvent):
            continue
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise _Refused("a second YAML document ('---'): a playbook file holds one", position)
            continue
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(f"YAML alias *{event.anchor} is not allowed in a playbook: write the value out",
                           position)
        if isinstance(event, yaml.CollectionEndEvent):
            attach(stack.pop().finish())
            continue
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _Refused(f"YAML anchor &{anchor} is not allowed in a playbook (anchors and aliases can "
                           f"expand without bound): write the value out", position)
        count += 1
        if count > MAX_NODES:
            raise _Refused(f"more than {MAX_NODES} values: too large for a playbook", position)
        shape = "scalar" if isinstance(event, yaml.ScalarEvent) else \
            "sequence" if isinstance(event, yaml.SequenceStartEvent) else "mapping"
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!" and tag not in _PLAIN_TAGS[shape]:
            raise _Refused(f"YAML tag {_show_tag(tag)} is not allowed: a playbook is plain data "
                           f"(only !!str, !!int, !!float, !!bool and !!null)", position)
        if isinstance(event, yaml.ScalarEvent):
            attach(_scalar(event, position))
            continue
        if stack and stack[-1].is_mapping and stack[-1].key is None:
            raise _Refused("a mapping key must be a plain value, not a list or a mapping", position)
        if len(stack) >= MAX_DEPTH:
            raise _Refused(f"nested more than {MAX_DEPTH} levels deep", position)
        stack.append(_Collection(position, isinstance(event, yaml.MappingStartEvent)))
    return root


def _events(text: str) -> Iterable[yaml.Event]:
    """The parser's events; a syntax error becomes a refusal with its line and column."""
    events = yaml.parse(text, Loader=_LOADER)
    while True:
        try:
            event = next(events)
        except StopIteration:
            return
        except yaml.MarkedYAMLError as error:
            context = f" ({error.context})" if error.context else ""
            raise _Refused(f"not valid YAML: {error.problem}{context}", _where(error.problem_mark)) from None
        except yaml.YAMLError as error:
            raise _Refused(f"not valid YAML: {str(error).splitlines()[0]}") from None
        yield event


# -- the entry points --------------------------------------------------------------------------------

def _root(content: bytes) -> Node | None:
    text = _decode(content)
    _screen(text)
    return _compose(text)


def _as_bytes(text: str | bytes) -> bytes:
    if isinstance(text, bytes):
        return text
    if len(text) > MAX_BYTES:  # never encode a huge text just to measure it
        return text[: MAX_BYTES + 1].encode("utf-8", errors="replace")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise _Refused("not UTF-8 text: it holds a lone surrogate character",
                       _position_of_char(text, error.start)) from None


def _read_text(text: str | bytes, source: str,
               context: CheckContext) -> tuple[Playbook | None, list[Problem], Node | None]:
    try:
        content = _as_bytes(text)
        root = _root(content)
    except _Refused as refusal:
        return None, [refusal.problem(source)], None
    playbook, problems = check_playbook(root, source, content, context)
    return playbook, problems, root


def read_playbook_text(text: str | bytes, source: str,
                       context: CheckContext = CheckContext()) -> tuple[Playbook | None, list[Problem]]:
    """Check a playbook given as text or bytes (a journaled copy, a test).

    Args:
        text: the file's content; bytes are decoded as UTF-8 (a BOM is allowed).
        source: the name problems and ``Playbook.source`` give it.
        context: the names the config defines, and its rules.

    Returns:
        The playbook and no problems, or ``None`` and every problem (one when
        the text is refused as a whole), in file order.
    """
    playbook, problems, _ = _read_text(text, source, context)
    return playbook, problems


def _read_file(path: Path) -> bytes:
    """At most ``MAX_BYTES + 1`` bytes of a regular file; never blocks on a FIFO or a device."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise _Refused("file not found") from None
    except OSError as error:
        raise _Refused(f"cannot be read: {error.strerror or error}") from None
    try:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise _Refused("is a directory, not a playbook file")
        if not stat.S_ISREG(info.st_mode):
            raise _Refused("not a regular file")
        if info.st_size > MAX_BYTES:
            raise _Refused(f"larger than a playbook may be ({info.st_size:,} bytes; {_LIMIT})")
        chunks: list[bytes] = []
        remaining = MAX_BYTES + 1
        while remaining > 0:
            chunk = os.read(descriptor, remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    except OSError as error:
        raise _Refused(f"cannot be read: {error.strerror or error}") from None
    finally:
        os.close(descriptor)


def _load(path: Path, context: CheckContext) -> tuple[Playbook | None, list[Problem], Node | None]:
    try:
        content = _read_file(path)
    except _Refused as refusal:
        return None, [refusal.problem(str(path))], None
    return _read_text(content, str(path), context)


def load_playbook(path: Path, context: CheckContext = CheckContext()) -> tuple[Playbook | None, list[Problem]]:
    """Read and check one playbook file.

    Args:
        path: the file; problems name it as given.
        context: the names the config defines (metrics, roles, endpoints, webhooks), and its rules.

    Returns:
        The playbook and no problems, or ``None`` and every problem, in file
        order; a hostile or unreadable file gives exactly one. Never raises for
        what is in the file.
    """
    playbook, problems, _ = _load(path, context)
    return playbook, problems


def load_playbook_with_text(path: Path, context: CheckContext = CheckContext(),
                            ) -> tuple[Playbook | None, list[Problem], str | None]:
    """Read and check one playbook file, and keep the text it was checked from (the file is read once).

    Args:
        path: the file; problems name it as given.
        context: as for :func:`load_playbook`.

    Returns:
        The playbook (or ``None``), every problem, and the file's text exactly
        as checked (``None`` when it is not UTF-8 text within the size limit):
        ``read_playbook_text(text, ...)`` gives the same playbook and content hash.
    """
    try:
        content = _read_file(path)
    except _Refused as refusal:
        return None, [refusal.problem(str(path))], None
    playbook, problems, _ = _read_text(content, str(path), context)
    try:
        text = content.decode("utf-8") if len(content) <= MAX_BYTES else None
    except UnicodeDecodeError:
        text = None
    return playbook, problems, text


def load_playbooks(paths: Iterable[Path],
                   context: CheckContext = CheckContext()) -> tuple[list[Playbook], list[Problem]]:
    """Read and check several playbook files; ids must be unique among them.

    Args:
        paths: the files, in the order problems are reported.
        context: as for :func:`load_playbook`.

    Returns:
        The valid playbooks (a later file reusing an earlier one's id is not
        among them) and every problem of every file.
    """
    playbooks: list[Playbook] = []
    problems: list[Problem] = []
    first_by_id: dict[str, Playbook] = {}
    for path in paths:
        playbook, found, root = _load(path, context)
        problems += found
        if playbook is None:
            continue
        first = first_by_id.get(playbook.id)
        if first is not None:
            id_node = root.get("id") if isinstance(root, MappingNode) else None
            where = id_node.position if id_node is not None else Position(0, 0)
            problems.append(Problem(playbook.source, where.line, where.column, "id",
                                    f"id {playbook.id!r} is already used by {first.source}: playbook ids are unique"))
            continue
        first_by_id[playbook.id] = playbook
        playbooks.append(playbook)
    return playbooks, problems
