"""A small index from TOML keys to line numbers, so spec errors can say ``spec.toml:14``.

tomllib gives values without positions; pydantic gives field paths. This
scanner walks the text once and records the line where each dotted path
(``modality[1].options.path``) is defined, inline tables included. It only
needs to be right for valid TOML (invalid TOML never reaches validation).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _split_key(key: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", key)
    return [p.strip("\"'") for p in parts]


def format_path(loc: Sequence[str | int]) -> str:
    """``("modality", 1, "options", "path")`` -> ``"modality[1].options.path"``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class TomlLineIndex:
    """Maps dotted key paths of a TOML document to 1-based line numbers."""

    def __init__(self, text: str):
        self.lines: dict[str, int] = {}
        self._array_counts: dict[str, int] = {}
        self._scan(text)

    def _resolve_table(self, parts: list[str]) -> str:
        # a header like [modality.options] after [[modality]] refers to the
        # latest element of the array of tables
        path = ""
        for part in parts:
            path = f"{path}.{part}" if path else part
            if path in self._array_counts:
                path = f"{path}[{self._array_counts[path] - 1}]"
        return path

    def _scan(self, text: str) -> None:
        prefix = ""
        in_multiline: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if in_multiline:
                if in_multiline in line:
                    in_multiline = None
                continue
            header = _HEADER.match(line)
            if header and not _KEY.match(line):
                parts = _split_key(header.group(2))
                if header.group(1) == "[[":
                    base = self._resolve_table(parts[:-1])
                    name = f"{base}.{parts[-1]}" if base else parts[-1]
                    self._array_counts[name] = self._array_counts.get(name, 0) + 1
                    prefix = f"{name}[{self._array_counts[name] - 1}]"
                else:
                    prefix = self._resolve_table(parts)
                self.lines.setdefault(prefix, number)
                continue
            key = _KEY.match(line)
            if not key:
                continue
            path = ".".join(p for p in [prefix, *_split_key(key.group(1))] if p)
            self.lines.setdefault(path, number)
            rest = line[key.end():]
            for quote in ('"""', "'''"):
                if rest.count(quote) == 1:
                    in_multiline = quote
            self._scan_inline(rest, path, number)

    def _scan_inline(self, rest: str, path: str, number: int) -> None:
        # keys inside inline tables on the same line: options = { path = "x" }
        stack = [path]
        i = 0
        pending_key: str | None = None
        while i < len(rest):
            ch = rest[i]
            if ch in "\"'":
                end = rest.find(ch, i + 1)
                i = len(rest) if end < 0 else end + 1
                continue
            if ch == "#":
                break
            if ch == "{":
                stack.append(f"{stack[-1]}.{pending_key}" if pending_key else stack[-1])
                pending_key = None
            elif ch == "}":
                if len(stack) > 1:
                    stack.pop()
            else:
                match = _KEY.match(rest[i:]) if (i == 0 or rest[i - 1] in "{, ") else None
                if match and len(stack) > 1:
                    parts = _split_key(match.group(1))
                    full = ".".join([stack[-1], *parts])
                    self.lines.setdefault(full, number)
                    pending_key = ".".join(parts)
                    i += match.end()
                    continue
            i += 1

    def line_of(self, loc: Sequence[str | int] | str) -> int | None:
        """The line of the closest defined ancestor of ``loc`` (None when none is known)."""
        path = loc if isinstance(loc, str) else format_path(loc)
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return None
