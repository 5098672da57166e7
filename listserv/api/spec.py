# SPDX-License-Identifier: Apache-2.0
"""The shape of an endpoint: one `Endpoint` row says everything the app and the document need.

`routes.ENDPOINTS` is the ordered list of these rows. The app (`app.py`)
turns each into a Starlette route that authenticates, validates the query
and body against the row's schemas, runs the handler in a worker thread
with a database session, and presents the reply; `openapi.py` turns the
same rows into the OpenAPI 3.1 document. So what the document says is what
the code checks, and nothing is kept twice.

Handlers are plain functions `(Call) -> Reply`: they parse nothing HTTP
beyond what `Call` gives them, and change state only by calling acts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from listserv.actors import Actor
from listserv.context import Context

JSON = "application/json"

Schema = dict[str, Any]


@dataclass(frozen=True)
class Param:
    """A path or query parameter (query values arrive as text and are cast by `schema`)."""

    name: str
    where: str  # "path" | "query" | "header"
    schema: Schema
    description: str = ""
    required: bool = False


@dataclass
class Call:
    """What a handler is given: the context, the token's actor, and the parsed request."""

    ctx: Context
    actor: Actor
    path: Mapping[str, str]
    query: Mapping[str, Any]
    body: Any
    headers: Mapping[str, str]


@dataclass
class Reply:
    """What a handler answers: a status, a JSON body (or bytes with their type), headers."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    media_type: str = JSON


Handler = Callable[[Call], Reply]


@dataclass(frozen=True)
class Endpoint:
    """One operation of the API, as the app serves it and the document describes it."""

    method: str
    path: str  # below /api/v1, with {name} parameters
    handler: Handler
    summary: str
    tag: str
    response: Schema | None  # the success body (None: no body)
    status: int = 200
    params: tuple[Param, ...] = ()
    body: Schema | None = None  # the request body, if any
    errors: tuple[int, ...] = ()  # beyond 401 and 429, which every endpoint may answer
    media_type: str = JSON
    description: str = ""
    #: A read that may take a while (a whole message, a search): never on the event loop.
    slow: bool = False

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


def rfc3339(value: datetime) -> str:
    """A UTC timestamp as the API writes every one: `2026-12-07T02:00:00.123456Z`."""
    return value.isoformat().replace("+00:00", "Z")


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def page_of(item: Schema) -> Schema:
    """A page of a collection: the items and the cursor of the next page (null at the end)."""
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": item},
            "next_cursor": {"type": ["string", "null"]},
        },
        "additionalProperties": False,
    }


def obj(
    properties: dict[str, Schema], required: tuple[str, ...] | None = None, *, closed: bool = True
) -> Schema:
    """An object schema; every property required unless `required` says which."""
    schema: Schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


STRING: Schema = {"type": "string"}
TEXT_OR_NULL: Schema = {"type": ["string", "null"]}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
TIMESTAMP: Schema = {"type": "string", "format": "date-time"}
TIMESTAMP_OR_NULL: Schema = {"type": ["string", "null"], "format": "date-time"}
