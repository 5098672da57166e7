# SPDX-License-Identifier: Apache-2.0
"""Helpers for the archive tests: posts as mail bytes, archived through the importer."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

from listserv.archive.importers import Entry, Importer
from listserv.context import Context
from listserv.models import MailingList

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def raw_post(
    n: int,
    subject: str,
    body: str,
    *,
    sender: str = "jane.doe@agency.gov",
    name: str = "Jane Doe",
    date: datetime = T0,
    refs: str = "",
    content_type: str = "text/plain; charset=utf-8",
) -> bytes:
    headers = [
        f"From: {name} <{sender}>",
        "To: sm-cop@lists.example.gov",
        f"Subject: {subject}",
        f"Date: {format_datetime(date)}",
        f"Message-ID: <post{n}@agency.gov>",
    ]
    if refs:
        headers += [f"In-Reply-To: {refs.split()[-1]}", f"References: {refs}"]
    headers += ["MIME-Version: 1.0", f"Content-Type: {content_type}", ""]
    return ("\r\n".join(headers) + "\r\n" + body + "\r\n").encode()


def archive_raw(ctx: Context, mlist: MailingList, *raws: bytes) -> None:
    """Archive messages as accepted posts (the importer's path), in the context's session."""
    importer = Importer(ctx.session, mlist, ctx.now, "test", dry_run=False)
    for position, raw in enumerate(raws, 1):
        importer.add(Entry("test", position, 1, raw))
    result = importer.finish()
    assert not result.unreadable, result.unreadable
    ctx.session.flush()
