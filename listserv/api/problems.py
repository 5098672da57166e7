# SPDX-License-Identifier: Apache-2.0
"""Errors as RFC 9457 problem details: `type`, `title`, `status`, `detail`, and the field.

An act's refusal keeps its words: `detail` is the sentence every channel
shows, `field` the input it is about, `code` its stable machine word. The
`type` is a URI under our own documentation, one per kind of problem, so a
client can branch on it without parsing the sentence.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from listserv.acts.errors import ActError, Conflict, Forbidden, Invalid, NotFound

MEDIA_TYPE = "application/problem+json"

#: status → (type slug, title)
KINDS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Not authenticated"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    412: ("precondition-failed", "Precondition failed"),
    413: ("too-large", "Request too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("invalid", "Invalid input"),
    429: ("rate-limited", "Too many requests"),
    500: ("server-error", "Server error"),
}

ACT_STATUS: tuple[tuple[type[ActError], int], ...] = (
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (Invalid, 422),
)


class Problem(Exception):
    """An answer other than success, raised anywhere below a handler."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        field: str = "",
        code: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        slug, title = KINDS.get(self.status, ("error", "Error"))
        data: dict[str, Any] = {
            "type": f"/api/v1/docs#problem-{slug}",
            "title": title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.field:
            data["field"] = self.field
        if self.code:
            data["code"] = self.code
        return data

    def response(self) -> Response:
        return Response(
            json.dumps(self.body()).encode(),
            status_code=self.status,
            media_type=MEDIA_TYPE,
            headers=self.headers,
        )


def from_act_error(exc: ActError) -> Problem:
    status = next((s for kind, s in ACT_STATUS if isinstance(exc, kind)), 422)
    return Problem(status, exc.message, field=exc.field, code=exc.code)


def unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"www-authenticate": 'Bearer realm="listserv"'})


def invalid(field: str, detail: str) -> Problem:
    return Problem(422, detail, field=field)


SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "field": {"type": "string"},
        "code": {"type": "string"},
    },
}
