"""YAML loading that remembers line numbers, so every registry error can say ``file:line``.

PyYAML forgets where values came from once it builds Python objects. Here the node tree is
composed first and converted by hand into :class:`YMap`/:class:`YList`, which carry the line of
each key and item. Duplicate keys, which PyYAML silently overwrites, are reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a file, at a 1-based line (0 when the file as a whole is wrong)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class YMap(dict[str, Any]):
    """A mapping that knows its own line and the line of each of its keys."""

    line: int
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        """Line of ``key`` if present, else the mapping's own line."""
        return self.key_lines.get(key, self.line)


class YList(list[Any]):
    """A sequence that knows its own line and the line of each item."""

    line: int
    item_lines: list[int]


def load_file(path: Path, problems: list[Problem]) -> Any:
    """Parse one YAML file; on failure append a problem and return ``None``."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problems.append(Problem(str(path), 0, f"not UTF-8 text ({exc.reason})"))
        return None
    except OSError as exc:
        problems.append(Problem(str(path), 0, f"cannot read the file: {exc.strerror}"))
        return None
    return load_text(text, str(path), problems)


COMPOSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML was built with it (its wheels are): it composes the
same nodes with the same line marks three times as fast (a 10,000-sensor registry in 3 s
instead of 9), which a worker pays at every start and registry reload."""


def load_text(text: str, name: str, problems: list[Problem]) -> Any:
    """Parse YAML text named ``name`` for messages; append problems, return ``None`` on error."""
    try:
        node = yaml.compose(text, Loader=COMPOSER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        what = exc.problem or exc.context or "invalid YAML"
        problems.append(Problem(name, line, f"YAML syntax error: {what}"))
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem(name, 0, f"YAML error: {exc}"))
        return None
    if node is None:
        return None
    return _Converter(name, problems).convert(node)


class _Converter:
    """Builds YMap/YList from one document's nodes; one per load, so nothing is kept after."""

    def __init__(self, name: str, problems: list[Problem]) -> None:
        self.name = name
        self.problems = problems
        self.scalars = yaml.SafeLoader("")
        self.open: set[int] = set()

    def error(self, node: yaml.Node, message: str) -> None:
        self.problems.append(Problem(self.name, node.start_mark.line + 1, message))

    def convert(self, node: yaml.Node) -> Any:
        if id(node) in self.open:
            self.error(node, "an alias refers to itself; recursive YAML is not supported")
            return None
        if isinstance(node, yaml.MappingNode):
            self.open.add(id(node))
            try:
                return self._mapping(node)
            finally:
                self.open.discard(id(node))
        if isinstance(node, yaml.SequenceNode):
            self.open.add(id(node))
            try:
                seq = YList(self.convert(item) for item in node.value)
            finally:
                self.open.discard(id(node))
            seq.line = node.start_mark.line + 1
            seq.item_lines = [item.start_mark.line + 1 for item in node.value]
            return seq
        if node.tag == "tag:yaml.org,2002:merge":
            self.error(node, "merge keys ('<<') are not supported; write the fields out")
            return None
        try:
            return self.scalars.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            what = getattr(exc, "problem", None) or str(exc)
            self.error(node, f"YAML value not understood: {what}")
            return None

    def _mapping(self, node: yaml.MappingNode) -> YMap:
        out = YMap()
        out.line = node.start_mark.line + 1
        out.key_lines = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.error(key_node, "merge keys ('<<') are not supported; write the fields out")
                continue
            key = self.convert(key_node)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                first = out.key_lines[key]
                self.error(key_node, f"duplicate key {key!r} (first given on line {first})")
                continue
            out[key] = self.convert(value_node)
            out.key_lines[key] = line
        return out
