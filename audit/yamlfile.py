"""Load YAML safely and keep the line of every node, for error messages.

Policy and inventory files are written by people; when one is wrong the message must
name the file, the line and the path inside the document
(``rules[3].expect.op: unknown operator 'teleport'``). PyYAML's safe composer gives the
node tree with positions; we build plain Python data from it (never Python objects) and
keep a map from document paths to lines.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audit.errors import InputError

if TYPE_CHECKING:
    import yaml

PathPart = str | int


@dataclass(frozen=True)
class YamlDocument:
    """Plain data from a YAML file, and where each part of it was written."""

    source: str
    data: Any
    lines: dict[tuple[PathPart, ...], int]

    def line_of(self, path: Sequence[PathPart]) -> int | None:
        """The line of the deepest known node on ``path`` (1-based)."""
        parts = tuple(path)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get((), None)


def format_path(path: Sequence[PathPart]) -> str:
    """``('rules', 3, 'expect', 'op')`` → ``rules[3].expect.op``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


MAX_FILE_BYTES = 16 << 20
"""Largest policy or inventory file read: 16 MiB (the largest built-in pack is 62 kB; an
inventory of 100,000 targets is about 6 MB)."""
MAX_EVENTS = 1_000_000
"""Most YAML events (scalars, collection starts and ends) a document may hold. Counted
while the parser streams, before anything is composed: PyYAML's node tree costs about
150 bytes of memory per byte of a file of tiny nodes, so counting afterwards is too late."""


def load_yaml(path: Path, error: type[InputError]) -> YamlDocument:
    """Read and parse ``path``; raise ``error(message, source=, line=)`` when it is not YAML."""
    source = str(path)
    try:
        raw = read_regular_file(path, MAX_FILE_BYTES)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise error("file not found", source=source) from None
    except FileTooLarge as exc:
        raise error(str(exc), source=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read file: {exc}", source=source) from None
    return parse_yaml(text, source, error)


class FileTooLarge(ValueError):
    """A file is larger than its reader accepts, or is not a regular file."""


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, which must be a regular file of at most ``limit`` bytes.

    A device (``/dev/zero``), a FIFO or a directory is refused before any read: reading
    one would never end, or block. Non-blocking open, so a FIFO with no writer cannot
    hang here either; the size is checked on the open descriptor and again while reading,
    so a file that grows in between is still capped.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileTooLarge("not a regular file")
        if info.st_size > limit:
            raise FileTooLarge(f"file too large ({info.st_size:,} bytes; at most {limit:,})")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise FileTooLarge(f"file too large (over {limit:,} bytes)")
    return data


def parse_yaml(text: str, source: str, error: type[InputError]) -> YamlDocument:
    """Parse YAML text with the safe composer, keeping node lines.

    PyYAML is imported here, not with the module: a scan whose packs come from the
    cache parses no YAML at all.
    """
    import yaml

    try:
        _count_events(text, source, error)
        node = yaml.compose(text, Loader=_loader())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        raise error(f"invalid YAML: {exc.problem}", source=source, line=line) from None
    except yaml.YAMLError as exc:
        raise error(f"invalid YAML: {exc}", source=source) from None
    lines: dict[tuple[PathPart, ...], int] = {}
    if node is None:
        return YamlDocument(source, None, lines)
    try:
        data = _build(node, (), lines, error, source, depth=0)
    except RecursionError:
        raise error("document nested too deeply", source=source) from None
    return YamlDocument(source, data, lines)


def _count_events(text: str, source: str, error: type[InputError]) -> None:
    """Stream the parser's events (constant memory) and refuse past :data:`MAX_EVENTS`."""
    import yaml

    for count, event in enumerate(yaml.parse(text, Loader=_loader()), start=1):
        if count > MAX_EVENTS:
            line = event.start_mark.line + 1 if event.start_mark else None
            raise error(
                f"document too large (more than {MAX_EVENTS:,} YAML nodes)",
                source=source,
                line=line,
            )


_MAX_DEPTH = 64


def _loader() -> Any:
    """libyaml's composer when PyYAML was built with it (several times faster), else
    Python's."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_MAX_NODES = 2_000_000
_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


def _build(
    node: yaml.Node,
    path: tuple[PathPart, ...],
    lines: dict[tuple[PathPart, ...], int],
    error: type[InputError],
    source: str,
    depth: int,
) -> Any:
    import yaml

    lines[path] = node.start_mark.line + 1
    if len(lines) > _MAX_NODES:
        raise error("document too large (alias expansion?)", source=source, line=lines[path])
    if depth > _MAX_DEPTH:
        raise error("document nested too deeply", source=source, line=lines[path])
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_TAGS:
        raise error(f"invalid YAML: unsupported tag {node.tag!r}", source=source, line=lines[path])
    if isinstance(node, yaml.MappingNode):
        return _build_mapping(node, path, lines, error, source, depth)
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(child, (*path, i), lines, error, source, depth + 1)
            for i, child in enumerate(node.value)
        ]
    return _scalar(node, error, source)


def _build_mapping(
    node: yaml.MappingNode,
    path: tuple[PathPart, ...],
    lines: dict[tuple[PathPart, ...], int],
    error: type[InputError],
    source: str,
    depth: int,
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = _scalar(key_node, error, source)
        if not isinstance(key, str | int | float | bool) or key is None:
            raise error(
                "mapping keys must be scalars", source=source, line=key_node.start_mark.line + 1
            )
        name = str(key) if not isinstance(key, str) else key
        if name in result:
            raise error(
                f"{format_path((*path, name))}: duplicate key {name!r}",
                source=source,
                line=key_node.start_mark.line + 1,
            )
        result[name] = _build(value_node, (*path, name), lines, error, source, depth + 1)
        # an entry is where its key is written (a block value starts on the next line)
        lines[(*path, name)] = key_node.start_mark.line + 1
    return result


def _scalar(node: yaml.Node, error: type[InputError], source: str) -> Any:
    """Construct a scalar with the safe constructor (no Python object is ever built)."""
    import yaml

    if not isinstance(node, yaml.ScalarNode):
        raise error("expected a scalar", source=source, line=node.start_mark.line + 1)
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    try:
        return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        # a marked error's str() adds a second line quoting the position we already give
        detail = exc.problem if isinstance(exc, yaml.MarkedYAMLError) and exc.problem else exc
        raise error(
            f"invalid value: {detail}", source=source, line=node.start_mark.line + 1
        ) from None
