# SPDX-License-Identifier: Apache-2.0
"""Requests checked against the endpoint's own schemas, so the document is what is enforced.

A small checker for the part of JSON Schema the endpoints use (types, enums,
required and unknown properties, lengths, ranges, array items) — the same
dictionaries the OpenAPI document publishes. A failure is a 422 problem that
names the field. Query values arrive as text and are cast first.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from listserv.api.problems import Problem, invalid
from listserv.api.spec import Param, Schema

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def _type_ok(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


def check(value: Any, schema: Schema, where: str) -> None:
    """Raise a 422 problem naming `where` (a dotted field) if `value` breaks `schema`."""
    kinds = schema.get("type")
    if kinds is not None:
        allowed = [kinds] if isinstance(kinds, str) else list(kinds)
        if not any(_type_ok(value, k) for k in allowed):
            raise invalid(where, f"{where} must be {' or '.join(allowed)}")
    if value is None:
        return
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(str(c) for c in schema["enum"])
        raise invalid(where, f"{where} must be one of {choices}")
    if isinstance(value, str):
        if "\x00" in value:
            raise invalid(where, f"{where} may not contain NUL characters")
        if len(value) < schema.get("minLength", 0):
            raise invalid(where, f"{where} may not be empty")
        if len(value) > schema.get("maxLength", 1 << 30):
            raise invalid(where, f"{where} may be at most {schema['maxLength']} characters")
        if schema.get("format") == "date-time":
            parse_time(value, where)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < schema.get("minimum", value):
            raise invalid(where, f"{where} must be at least {schema['minimum']}")
        if value > schema.get("maximum", value):
            raise invalid(where, f"{where} must be at most {schema['maximum']}")
    if isinstance(value, list):
        items = schema.get("items")
        if len(value) > schema.get("maxItems", 1 << 30):
            raise invalid(where, f"{where} may have at most {schema['maxItems']} items")
        if items is not None:
            for i, item in enumerate(value):
                check(item, items, f"{where}[{i}]")
    if isinstance(value, dict):
        _check_object(value, schema, where)


def _check_object(value: dict[str, Any], schema: Schema, where: str) -> None:
    properties: dict[str, Schema] = schema.get("properties", {})
    prefix = f"{where}." if where else ""
    for name in schema.get("required", []):
        if name not in value:
            raise invalid(prefix + name, f"{prefix}{name} is required")
    for name, item in value.items():
        if name in properties:
            check(item, properties[name], prefix + name)
        elif schema.get("additionalProperties", True) is False:
            raise invalid(prefix + name, f"{prefix}{name} is not a field here")
        elif isinstance(schema.get("additionalProperties"), dict):
            check(item, schema["additionalProperties"], prefix + name)
    if len(value) < schema.get("minProperties", 0):
        raise invalid(where, "the body must name at least one field")


def parse_time(text: str, where: str) -> datetime:
    """An RFC 3339 timestamp (a trailing Z, or an offset; none means UTC)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise invalid(where, f"{where} must be an RFC 3339 date-time") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def cast_query(params: tuple[Param, ...], given: Mapping[str, str]) -> dict[str, Any]:
    """The endpoint's query parameters, cast to their types and checked; unknown ones refused."""
    known = {p.name: p for p in params if p.where == "query"}
    for name in given:
        if name not in known:
            raise invalid(name, f"{name} is not a query parameter here")
    values: dict[str, Any] = {}
    for name, param in known.items():
        if name not in given:
            if param.required:
                raise invalid(name, f"{name} is required")
            continue
        text = given[name]
        kind = param.schema.get("type")
        value: Any = text
        if kind == "integer":
            try:
                value = int(text)
            except ValueError:
                raise invalid(name, f"{name} must be a whole number") from None
        elif kind == "boolean":
            if text not in ("true", "false"):
                raise invalid(name, f"{name} must be true or false")
            value = text == "true"
        check(value, param.schema, name)
        if param.schema.get("format") == "date-time":
            value = parse_time(text, name)
        values[name] = value
    return values


def not_json(detail: str) -> Problem:
    return Problem(400, detail)
