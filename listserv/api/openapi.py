# SPDX-License-Identifier: Apache-2.0
"""The OpenAPI 3.1 document, made from `routes.ENDPOINTS` and their schemas at start.

Every path, parameter, body, success answer and problem comes from the same
rows and dictionaries the app enforces, so the description cannot drift
from the code. Descriptions are the handlers' docstrings.
"""

from __future__ import annotations

import inspect
import json
from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from listserv import __version__
from listserv.api import problems
from listserv.api.routes import ENDPOINTS, SCHEMAS
from listserv.api.spec import JSON, Endpoint, Param, ref
from listserv.webhooks.events import EVENTS

TITLE = "listserv API"
SUMMARY = (
    "Lists, members, requests, held posts, bans, bounces, the archive, the audit log, the "
    "outbox and webhooks, with scoped bearer tokens (`listserv tokens create`). Errors are "
    "RFC 9457 problem details; collections page by cursor; timestamps are RFC 3339 UTC."
)

IDEMPOTENCY = Param(
    "Idempotency-Key",
    "header",
    {"type": "string", "maxLength": 200},
    "retrying with the same key does the POST once and returns the first answer",
)


def _parameter(param: Param) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": param.name,
        "in": param.where,
        "required": param.required or param.where == "path",
        "schema": param.schema,
    }
    if param.description:
        data["description"] = param.description
    return data


def _problem(status: int) -> dict[str, Any]:
    _, title = problems.KINDS.get(status, ("error", "Error"))
    answer: dict[str, Any] = {
        "description": title,
        "content": {problems.MEDIA_TYPE: {"schema": ref("Problem")}},
    }
    if status == 429:
        answer["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    if status == 401:
        answer["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return answer


def _operation(row: Endpoint) -> dict[str, Any]:
    params = list(row.params)
    if row.method == "POST":
        params.append(IDEMPOTENCY)
    success: dict[str, Any] = {"description": row.summary}
    if row.response is not None and row.status != 204:
        success["content"] = {row.media_type: {"schema": row.response}}
    if row.path == "/lists/{list}" and row.method == "GET":
        success["headers"] = {"ETag": {"schema": {"type": "string"}}}
    if row.status == 201:
        success["headers"] = {"Location": {"schema": {"type": "string"}}}
    errors = {401, 429, *row.errors}
    if row.body is not None:
        errors |= {400, 413, 415, 422}
    if any(p.where == "query" for p in row.params):
        errors.add(422)
    if any(p.where == "path" for p in row.params):
        errors.add(404)
    if row.method == "POST":
        errors.add(422)
    operation: dict[str, Any] = {
        "operationId": row.operation_id,
        "summary": row.summary,
        "description": row.description or inspect.getdoc(row.handler) or row.summary,
        "tags": [row.tag],
        "parameters": [_parameter(p) for p in params],
        "responses": {
            str(row.status): success,
            **{str(s): _problem(s) for s in sorted(errors)},
        },
    }
    if row.body is not None:
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": row.body}},
        }
    return operation


EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "type", "created_at", "list", "data"],
    "properties": {
        "id": {"type": "string", "description": "the same in every retry (Listserv-Event-Id)"},
        "type": {"type": "string", "enum": list(EVENTS)},
        "created_at": {"type": "string", "format": "date-time"},
        "list": {"type": "string"},
        "data": {"type": "object"},
    },
}


def _webhook() -> dict[str, Any]:
    """OpenAPI 3.1's `webhooks`: what we POST to a URL `listserv webhooks add` named."""
    return {
        "post": {
            "summary": "An event on a list",
            "description": (
                "Signed with `Listserv-Signature: t=<unix time>,v1=<hex>`, where v1 is "
                "HMAC-SHA256(secret, t + '.' + body); retried with backoff for three days "
                "until the receiver answers 2xx."
            ),
            "parameters": [
                {
                    "name": "Listserv-Signature",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                },
                {
                    "name": "Listserv-Event",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "enum": list(EVENTS)},
                },
                {
                    "name": "Listserv-Event-Id",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                },
            ],
            "requestBody": {"required": True, "content": {JSON: {"schema": ref("Event")}}},
            "responses": {"2XX": {"description": "received; anything else is retried"}},
        }
    }


@cache
def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for row in ENDPOINTS:
        paths.setdefault(row.path, {})[row.method.lower()] = _operation(row)
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": __version__, "summary": SUMMARY},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "webhooks": {"event": _webhook()},
        "components": {
            "schemas": {**SCHEMAS, "Problem": problems.SCHEMA, "Event": EVENT},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a token from `listserv tokens create`",
                }
            },
        },
    }


@cache
def document_bytes() -> bytes:
    return json.dumps(document(), indent=1).encode()


async def serve_document(request: Request) -> Response:
    """The document itself needs no token: it describes, it reveals nothing."""
    return Response(document_bytes(), media_type="application/json")
