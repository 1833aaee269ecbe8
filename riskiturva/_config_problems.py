"""How a configuration file is read and how its problems are told: file, line, field, value.

`parse_toml` turns the text into data or a `ConfigError` (syntax, an empty file, nesting no
person writes). `problems_of` turns pydantic's validation errors into `ConfigProblem`s in the
words of someone editing TOML: the field path, the line it is written on, an unknown key
with the key it was probably meant to be, and the value — never the value of a secret.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from riskiturva._toml_lines import locate_line

# No configuration a person writes nests tables or arrays this deep; deeper is refused
# before it can exhaust the parser's or the validator's recursion.
MAX_NESTING = 16
# Field names whose values are never shown in an error message, wherever they appear.
_SECRET_NAME = re.compile(r"pass|secret|token|credential|api_?key|private", re.IGNORECASE)


class ConfigError(Exception):
    """A configuration file could not be read or did not validate."""

    def __init__(self, path: Path, problems: list[ConfigProblem]):
        self.path = path
        self.problems = problems
        super().__init__(self.describe())

    def describe(self) -> str:
        lines = [f"{self.path}: invalid configuration"]
        for problem in self.problems:
            where = f"line {problem.line}, " if problem.line else ""
            value = f" (value: {_shown(problem.value)})" if problem.value is not None else ""
            lines.append(f"  {where}{problem.field or '<file>'}: {problem.message}{value}")
        return "\n".join(lines)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "…"


@dataclass(frozen=True)
class ConfigProblem:
    field: str
    message: str
    value: Any = None
    line: int | None = None


Location = tuple[str | int, ...]


def invalid(title: str, problems: Iterable[tuple[Location, str, Any]]) -> ValidationError:
    """A validation error with one line per (location, message, value), raised from a
    validator: pydantic prefixes each location with the path of the model that raised it."""
    return ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(
                type=PydanticCustomError("config", "{message}", {"message": message}),
                loc=location,
                input=value,
            )
            for location, message, value in problems
        ],
    )


def hidden_password(url: str) -> str:
    """`url` with its password replaced by ***; unparseable URLs are not shown at all."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<an unparseable URL>"


def parse_toml(path: Path, text: str) -> dict[str, Any]:
    if not text.strip():
        raise ConfigError(
            path,
            [ConfigProblem("", "the file is empty: declare [[organisations]] with their scope")],
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11 keeps the position only in the message: "(at line 7, column 3)".
        match = re.search(r"at line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        raise ConfigError(
            path, [ConfigProblem("", f"TOML syntax error: {exc}", line=line)]
        ) from exc
    except RecursionError as exc:
        raise ConfigError(path, [ConfigProblem("", _too_deep())]) from exc
    too_deep = _nested_too_deep(data)
    if too_deep is not None:
        location = list(too_deep)
        raise ConfigError(
            path,
            [ConfigProblem(format_path(location), _too_deep(), line=locate_line(text, location))],
        )
    return data


def _too_deep() -> str:
    return f"tables or arrays nested more than {MAX_NESTING} levels deep"


def _nested_too_deep(data: Any) -> Location | None:
    """The location of the first value nested deeper than MAX_NESTING (walked without
    recursion, so no depth can exhaust the stack)."""
    stack: list[tuple[Location, Any]] = [((), data)]
    while stack:
        location, value = stack.pop()
        if len(location) > MAX_NESTING:
            return location[:MAX_NESTING]
        if isinstance(value, dict):
            stack.extend(((*location, str(k)), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*location, i), v) for i, v in enumerate(value))
    return None


# pydantic's words for a wrong type, in the words of someone writing TOML.
_TYPE_MESSAGES = {
    "string_type": "must be a string (in quotes)",
    "int_type": "must be a whole number (without quotes)",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number (without quotes)",
    "bool_type": "must be true or false",
    "finite_number": "must be a finite number (not inf or nan)",
    "tuple_type": "must be an array: [ … ]",
    "list_type": "must be an array: [ … ]",
    "model_type": "must be a table: [name] or { … }",
    "dict_type": "must be a table: [name] or { … }",
}


def problems_of(
    error: ValidationError,
    text: str,
    root: type[BaseModel],
    collectors: Mapping[str, type[BaseModel]],
) -> list[ConfigProblem]:
    """One problem per field and message, in line order."""
    problems: dict[tuple[str, str], ConfigProblem] = {}
    for item in error.errors(include_url=False):
        # pydantic adds union members and validator names to some paths: drop non-fields.
        location = [p for p in item["loc"] if not (isinstance(p, str) and "[" in p)]
        value = item.get("input")
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = _unknown_key_message(location, root, collectors)
            value = None
        elif item["type"] == "missing":
            message = "required, missing"
            value = None
        else:
            message = _TYPE_MESSAGES.get(item["type"], message)
        if isinstance(value, dict | list) or any(
            isinstance(p, str) and _SECRET_NAME.search(p) for p in location
        ):
            value = None  # no tables, and never a secret
        elif location[-1:] == ["database_url"] and isinstance(value, str):
            value = hidden_password(value)
        field = format_path(location)
        problems.setdefault(
            (field, message), ConfigProblem(field, message, value, locate_line(text, location))
        )
    return sorted(problems.values(), key=lambda p: (p.line or 0, p.field))


def _unknown_key_message(
    location: list[str | int], root: type[BaseModel], collectors: Mapping[str, type[BaseModel]]
) -> str:
    key = str(location[-1])
    parent = tuple(location[:-1])
    if parent == ("settings", "collectors"):
        noun, known = "collector", list(collectors)
    else:
        noun, known = "key", _keys_at(parent, root, collectors)
    message = f"unknown {noun}"
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    elif known:
        message += f" (known: {', '.join(known)})"
    return message


def _keys_at(
    location: tuple[str | int, ...],
    root: type[BaseModel],
    collectors: Mapping[str, type[BaseModel]],
) -> list[str]:
    """The keys the table at `location` may hold, from the models."""
    current: Any = root
    for index, part in enumerate(location):
        if location[:index] == ("settings", "collectors"):
            current = collectors.get(str(part))
        elif isinstance(part, int):
            current = _element_type(current)
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            current = field.annotation if field is not None else None
        else:
            current = None
        current = _model_or_sequence(current)
        if current is None:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [name for name, field in current.model_fields.items() if not field.exclude]
    return []


def _model_or_sequence(annotation: Any) -> Any:
    """Strip Annotated and Optional from an annotation."""
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = members[0] if len(members) == 1 else None
    return annotation


def _element_type(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (tuple, list):
        return typing.get_args(annotation)[0]
    return None


def format_path(location: list[str | int]) -> str:
    out = ""
    for part in location:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
