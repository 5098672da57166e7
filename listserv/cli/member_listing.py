# SPDX-License-Identifier: Apache-2.0
"""How `members list` prints a roster: streamed, in the shape the reader needs.

A terminal gets an aligned table whose address column is never cut (the other
columns give way); a pipe gets one address per line, so `| head -1`, `| wc -l`
and `| xargs` work; `csv` and `json` are for files and scripts. Rows come from
one streamed query (`roster.export.roster_rows`) and are written as they come,
so the first line of a large roster appears at once and memory stays flat.
"""

from __future__ import annotations

import csv
import enum
import shutil
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from listserv.models import DeliveryMode, MailingList, Member, Role


class Format(enum.StrEnum):
    TABLE = "table"
    PLAIN = "plain"
    CSV = "csv"
    JSON = "json"


COLUMNS = ("address", "name", "title", "role", "delivery", "status", "joined")


def member_row(member: Member) -> dict[str, Any]:
    """One member in the words `members set` and `lists set` use.

    Owners and moderators receive no posts as such, so their delivery and status
    are shown empty rather than as a receiving member's.
    """
    receiving = member.role == Role.MEMBER
    return {
        "address": member.address,
        "name": member.display_name,
        "title": member.job_title,
        "role": member.role,
        "delivery": DeliveryMode(member.delivery_mode).word if receiving else "",
        "status": member.delivery_status if receiving else "",
        "joined": member.joined_at,
    }


def shown_row(row: dict[str, Any]) -> dict[str, Any]:
    """A roster row as listed: an owner's or moderator's delivery is not a member's."""
    if row["role"] != Role.MEMBER:
        return {**row, "delivery": "", "status": ""}
    return row


def longest_address(session: Session, mlist: MailingList, role: Role | None) -> int:
    stmt = select(func.max(func.length(Member.address))).where(Member.list_id == mlist.id)
    if role is not None:
        stmt = stmt.where(Member.role == role)
    return int(session.scalar(stmt) or len("address"))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def write_plain(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for row in rows:
        out.write(f"{row['address']}\n")
        count += 1
    return count


def write_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([_text(row.get(c)) for c in columns])
        count += 1
    return count


def write_table(
    rows: Iterable[dict[str, Any]],
    columns: Sequence[str],
    out: TextIO,
    *,
    address_width: int,
    width: int | None = None,
) -> int:
    """Aligned columns: the address in full, the others shortened to fit the terminal."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    fixed = {"role": 9, "delivery": 8, "status": 17, "joined": 16}
    widths = {c: fixed.get(c, 0) for c in columns}
    widths["address"] = max(address_width, len("address"))
    free = width - sum(widths.values()) - 2 * (len(columns) - 1)
    flexible = [c for c in columns if widths[c] == 0]
    for column in flexible:
        widths[column] = max(len(column), free // max(len(flexible), 1))

    def line(cells: Sequence[str]) -> str:
        parts = []
        for column, cell in zip(columns, cells, strict=True):
            room = widths[column]
            if column != "address" and len(cell) > room:
                cell = cell[: max(room - 1, 0)] + "…"
            parts.append(cell.ljust(room))
        return "  ".join(parts).rstrip() + "\n"

    out.write(line([c.title() for c in columns]))
    out.write(line(["-" * widths[c] for c in columns]))
    count = 0
    for row in rows:
        out.write(line([_text(row.get(c)) for c in columns]))
        count += 1
    return count
