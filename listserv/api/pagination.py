# SPDX-License-Identifier: Apache-2.0
"""Keyset pages: `?limit=` (at most 500) and an opaque `?cursor=` naming the last row seen.

A cursor is the sort key of the last item of a page, so the next page is one
indexed range read (`WHERE key > cursor ORDER BY key LIMIT n`), and the
100th page costs what the first does; OFFSET would read and drop every row
before it. One row more than asked for is read to know whether a next page
exists, so the last page says `next_cursor: null` without another query.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from listserv.api.problems import invalid
from listserv.api.spec import INTEGER, Param

T = TypeVar("T")

DEFAULT_LIMIT = 100
MAX_LIMIT = 500

PARAMS: tuple[Param, ...] = (
    Param(
        "limit",
        "query",
        {**INTEGER, "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        "items per page (at most 500)",
    ),
    Param(
        "cursor", "query", {"type": "string", "maxLength": 2000}, "next_cursor of the page before"
    ),
)


def encode(key: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode(cursor: str | None, kinds: Sequence[type]) -> list[Any] | None:
    """The key a cursor carries, checked against the key's types (422 naming `cursor`)."""
    if cursor is None:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise invalid("cursor", "cursor is not one this API gave") from None
    if not isinstance(key, list) or len(key) != len(kinds):
        raise invalid("cursor", "cursor is not one this API gave")
    for value, kind in zip(key, kinds, strict=True):
        if not isinstance(value, kind) or isinstance(value, bool):
            raise invalid("cursor", "cursor is not one this API gave")
    return key


def page(
    rows: Sequence[T], limit: int, key: Callable[[T], Sequence[Any]], view: Callable[[T], Any]
) -> dict[str, Any]:
    """`{"items", "next_cursor"}` from up to `limit + 1` rows read in key order."""
    return page_by(rows, limit, key, lambda shown: [view(r) for r in shown])


def page_by(
    rows: Sequence[T],
    limit: int,
    key: Callable[[T], Sequence[Any]],
    views: Callable[[Sequence[T]], list[Any]],
) -> dict[str, Any]:
    """`page` with the items made all at once (`views`), for the busiest pages."""
    more = len(rows) > limit
    shown = rows[:limit]
    return {
        "items": views(shown),
        "next_cursor": encode(key(shown[-1])) if more and shown else None,
    }


def limit_of(query: dict[str, Any]) -> int:
    return int(query.get("limit", DEFAULT_LIMIT))
