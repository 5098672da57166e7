# SPDX-License-Identifier: Apache-2.0
"""Roster files out: the roster as CSV or a JSON array, streamed row by row.

A 1,000,000-member roster is never held: rows come from one Core query over the
`(list_id, address_key, role)` index in the order it already has (no sort
before the first row), a few thousand at a time (a server-side cursor on
PostgreSQL), and each is written as it comes, so memory stays flat and the
first line is out at once.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from listserv.models import DeliveryMode, Member, Role

EXPORT_COLUMNS = ("address", "name", "title", "role", "delivery", "status", "joined")

_COLUMNS = (
    Member.address,
    Member.display_name,
    Member.job_title,
    Member.role,
    Member.delivery_mode,
    Member.delivery_status,
    Member.joined_at,
)


def roster_rows(
    session: Session, list_id: int, role: Role | None = None
) -> Iterator[dict[str, Any]]:
    """Each member of the list as {address, name, title, role, delivery, status, joined}."""
    stmt = (
        select(*_COLUMNS)
        .where(Member.list_id == list_id)
        .order_by(Member.address_key, Member.role)
        .execution_options(yield_per=5000)
    )
    if role is not None:
        stmt = stmt.where(Member.role == role)
    for row in session.execute(stmt):
        values = dict(zip(EXPORT_COLUMNS, row, strict=True))
        values["delivery"] = DeliveryMode(str(values["delivery"])).word  # as `members set` says it
        yield values


def write_export(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    """The roster as CSV with a header row; returns the number of rows."""
    writer = csv.DictWriter(out, fieldnames=list(EXPORT_COLUMNS), lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in rows:
        joined = row["joined"]
        writer.writerow({**row, "joined": joined.isoformat(timespec="seconds")})
        count += 1
    return count


def write_json(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    """The rows as one JSON array (indented as `json.dumps(…, indent=2)` would), streamed."""
    count = 0
    for row in rows:
        plain = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
        text = json.dumps(plain, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        out.write(("[\n  " if count == 0 else ",\n  ") + text)
        count += 1
    out.write("\n]\n" if count else "[]\n")
    return count
