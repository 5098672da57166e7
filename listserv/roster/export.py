# SPDX-License-Identifier: Apache-2.0
"""Roster files out: the roster as CSV, streamed row by row."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

from listserv.models import Member

EXPORT_COLUMNS = ("address", "name", "title", "role", "delivery", "status", "joined")


def export_row(member: Member) -> dict[str, str]:
    return {
        "address": member.address,
        "name": member.display_name,
        "title": member.job_title,
        "role": member.role,
        "delivery": member.delivery_mode,
        "status": member.delivery_status,
        "joined": member.joined_at.isoformat(timespec="seconds"),
    }


def write_export(members: Iterable[Member], out: TextIO) -> int:
    """The roster as CSV with a header row; returns the number of rows."""
    writer = csv.DictWriter(out, fieldnames=list(EXPORT_COLUMNS), lineterminator="\n")
    writer.writeheader()
    count = 0
    for member in members:
        writer.writerow(export_row(member))
        count += 1
    return count
