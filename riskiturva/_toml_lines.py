"""Find the line of a field in TOML text, so configuration errors can point at it.

`tomllib` keeps no positions, so this walks the table headers (`[a.b]`, `[[a.b]]`) and
`key = value` lines, tracking array-of-tables indices, and maps each field path to the
line where it is written. Good enough for configuration files written by people.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)

_INLINE_TABLE = re.compile(r"^\s*\{(.*)\}\s*,?\s*(#.*)?$")
_INLINE_KEY = re.compile(r"""(?:^|,)\s*([A-Za-z0-9_-]+|"[^"]*")\s*=""")
_ARRAY_SCALAR = re.compile(r"""^\s*("[^"]*"|'[^']*'|[-+0-9.]+|true|false)\s*,?\s*(#.*)?$""")

Path = tuple[str | int, ...]


def _split_dotted(key: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', key)]


def field_lines(text: str) -> dict[Path, int]:
    """Map every field path written in `text` to its 1-based line number."""
    lines: dict[Path, int] = {}
    array_counts: dict[Path, int] = {}
    current: Path = ()
    open_array: Path | None = None
    open_array_index = -1
    in_multiline_string = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.count('"""') % 2 or line.count("'''") % 2:
            in_multiline_string = not in_multiline_string
            if not in_multiline_string:
                continue
        if in_multiline_string:
            continue
        header = _HEADER.match(line)
        if header:
            is_array = header.group(1) == "[["
            path: Path = ()
            names = _split_dotted(header.group(2))
            for position, name in enumerate(names):
                path = (*path, name)
                last = position == len(names) - 1
                if last and is_array:
                    array_counts[path] = array_counts.get(path, 0) + 1
                if path in array_counts:
                    path = (*path, array_counts[path] - 1)
            current = path
            lines.setdefault(current, number)
            continue
        if open_array is not None:
            element = _INLINE_TABLE.match(line)
            if element:
                open_array_index += 1
                element_path = (*open_array, open_array_index)
                lines.setdefault(element_path, number)
                for name in _INLINE_KEY.findall(element.group(1)):
                    lines.setdefault((*element_path, *_split_dotted(name)), number)
            elif _ARRAY_SCALAR.match(line):
                open_array_index += 1
                lines.setdefault((*open_array, open_array_index), number)
            if line.strip().startswith("]"):
                open_array = None
            continue
        key = _KEY.match(line)
        if key:
            path = (*current, *_split_dotted(key.group(1)))
            lines.setdefault(path, number)
            rest = line[key.end() :].split("#", 1)[0].strip()
            if rest == "[":  # a multi-line array: its elements are on the next lines
                open_array, open_array_index = path, -1
    return lines


def locate_line(text: str, location: list[str | int] | tuple[str | int, ...]) -> int | None:
    """The line of the longest written prefix of `location`, or None."""
    lines = field_lines(text)
    path = tuple(location)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None
