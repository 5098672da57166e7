# SPDX-License-Identifier: Apache-2.0
"""Typed reading of TOML values, where every problem names the key to fix.

A configuration table is an untyped mapping; these readers turn one key into a
value of the expected kind or raise a `ConfigError` saying which key is wrong
and why, so an operator sees one line such as `smtp.port: must be a whole number`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(Exception):
    """A configuration problem, named by its key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def get(table: Mapping[str, Any], key: str, where: str, kind: type[T], default: T) -> T:
    """`table[key]` checked to be of `kind` (ints pass as floats), else `default`."""
    if key not in table:
        return default
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is int and isinstance(value, bool):
        raise ConfigError(f"{where}{key}", "must be a whole number")
    if not isinstance(value, kind):
        names = {str: "a string", int: "a whole number", bool: "true or false", float: "a number"}
        raise ConfigError(f"{where}{key}", f"must be {names.get(kind, kind.__name__)}")
    return value


def strings(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    """A list of strings, stripped, with empty entries dropped."""
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}{key}", "must be a list of strings")
    return tuple(v.strip() for v in value if v.strip())


def choice(table: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...]) -> str:
    """One of `choices`, case-insensitive; the first is the default."""
    value = get(table, key, where, str, choices[0]).strip().lower()
    if value not in choices:
        raise ConfigError(f"{where}{key}", f"must be one of {', '.join(choices)}; got {value!r}")
    return value


def positive(value: int, key: str) -> int:
    if value <= 0:
        raise ConfigError(key, "must be greater than zero")
    return value


def port_number(value: int, key: str) -> int:
    if not 0 <= value <= 65535:
        raise ConfigError(key, "must be a port number between 0 and 65535")
    return value


def check_unknown(table: Mapping[str, Any], known: set[str], where: str) -> None:
    """A misspelt key is an error, not silently the default."""
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}{key}", "unknown key")


def resolve(path_text: str, base: Path) -> Path:
    """A configured path; relative ones are under `base`."""
    path = Path(path_text)
    return path if path.is_absolute() else (base / path)
