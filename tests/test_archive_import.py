# SPDX-License-Identifier: Apache-2.0
"""`listserv archive import`: a LISTSERV notebook and an mbox with a broken entry,
dates, senders, Message-IDs and threads kept, duplicates skipped, --dry-run."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from listserv.archive.importers import is_notebook, read_mbox, read_notebook
from listserv.db import make_engine, make_sessionmaker
from listserv.lists import get_list
from listserv.models import ArchiveEntry, AuditEvent, Post, PostStatus
from tests.admin_helpers import run_cli, write_config

SEPARATOR = "=" * 73

NOTEBOOK = f"""{SEPARATOR}
Date:         Mon, 3 Mar 2014 10:00:00 -0500
Reply-To:     Social Media Community <SM-COP@LISTSERV.EXAMPLE.GOV>
Sender:       Social Media Community <SM-COP@LISTSERV.EXAMPLE.GOV>
From:         Jane Doe <jane.doe@agency.gov>
Subject:      Records schedules for Twitter
Message-ID:   <nb1@agency.gov>
Content-Type: text/plain; charset=us-ascii

Does anyone have a records schedule for Twitter?
{SEPARATOR}
Date:         Tue, 4 Mar 2014 11:30:00 -0500
From:         Sam Smith <sam@agency.gov>
Subject:      Re: Records schedules for Twitter
Message-ID:   <nb2@agency.gov>
In-Reply-To:  <nb1@agency.gov>

Yes: GRS 6.4 covers it.
{SEPARATOR}
Subject:      no sender and no date

This entry cannot be imported.
"""

MBOX = """From jane.doe@agency.gov Wed Apr  2 09:00:00 2014
From: Jane Doe <jane.doe@agency.gov>
Subject: Instagram handles
Date: Wed, 02 Apr 2014 09:00:00 +0000
Message-ID: <mb1@agency.gov>

A line that begins with a quoted From:
>From the desk of the director.

From lee@army.mil Wed Apr  2 10:00:00 2014
garbage that is not a message at all

From lee@army.mil Thu Apr  3 10:00:00 2014
From: Lee Park <lee@army.mil>
Subject: Re: Instagram handles
Message-ID: <mb2@army.mil>
References: <mb1@agency.gov>

No Date header: the From line's date is kept.

From sam@agency.gov Thu Apr  3 12:00:00 2014
From: Sam Smith <sam@agency.gov>
Subject: Re: Records schedules for Twitter
Date: Thu, 03 Apr 2014 12:00:00 +0000
Message-ID: <nb2@agency.gov>

A duplicate of a notebook post: skipped.
"""


def _files(tmp_path: Path) -> tuple[Path, Path]:
    notebook = tmp_path / "SM-COP.LOG1403"
    notebook.write_text(NOTEBOOK.replace("\n", "\r\n"))
    mbox = tmp_path / "2014-April.txt"
    mbox.write_text(MBOX)
    return notebook, mbox


def test_readers_split_entries_and_say_where_each_began(tmp_path: Path) -> None:
    notebook, mbox = _files(tmp_path)
    assert is_notebook(notebook) and not is_notebook(mbox)
    entries = list(read_notebook(notebook))
    assert [(e.position, e.line) for e in entries] == [(1, 2), (2, 12), (3, 20)]
    boxed = list(read_mbox(mbox))
    assert [(e.position, e.line) for e in boxed] == [(1, 1), (2, 10), (3, 13), (4, 21)]
    assert b"\n>From the desk" not in boxed[0].raw and b"\nFrom the desk" in boxed[0].raw
    assert boxed[2].envelope_date is not None and boxed[2].envelope_date.day == 3


def test_import_keeps_dates_senders_ids_and_threads_and_reports_the_rest(
    tmp_path: Path, db_url: str
) -> None:
    config = write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")
    notebook, mbox = _files(tmp_path)

    dry = run_cli(config, "archive", "import", "sm-cop", str(notebook), str(mbox), "--dry-run")
    assert dry.code == 0, dry.stderr
    assert "would import 4, skipped 1 already archived, 2 unreadable" in dry.stdout

    result = run_cli(config, "archive", "import", "sm-cop", str(notebook), str(mbox), "--json")
    assert result.code == 0, result.stderr
    [summary] = json.loads(result.stdout)
    assert (summary["imported"], summary["skipped"]) == (4, 1)
    assert [(u["file"], u["entry"], u["line"]) for u in summary["unreadable"]] == [
        ("SM-COP.LOG1403", 3, 20),
        ("2014-April.txt", 2, 10),
    ]

    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            mlist = get_list(session, "sm-cop")
            assert mlist is not None
            posts = {p.message_id: p for p in session.scalars(select(Post))}
            assert set(posts) == {
                "<nb1@agency.gov>",
                "<nb2@agency.gov>",
                "<mb1@agency.gov>",
                "<mb2@army.mil>",
            }
            assert all(p.status == PostStatus.ACCEPTED for p in posts.values())
            first = posts["<nb1@agency.gov>"]
            assert first.sender == "jane.doe@agency.gov" and first.sender_name == "Jane Doe"
            assert first.received_at.isoformat() == "2014-03-03T15:00:00+00:00"
            assert posts["<mb2@army.mil>"].received_at.isoformat() == "2014-04-03T10:00:00+00:00"
            entries = {e.message_id: e for e in session.scalars(select(ArchiveEntry))}
            assert entries["<nb2@agency.gov>"].thread_id == first.id
            assert entries["<mb2@army.mil>"].thread_id == posts["<mb1@agency.gov>"].id
            assert entries["<nb1@agency.gov>"].month == "2014-03"
            [audit] = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "archive-import")
            )
            assert audit.detail["imported"] == 4

        again = run_cli(config, "archive", "import", "sm-cop", str(mbox))
        assert again.code == 0
        assert "imported 0, skipped 3 already archived, 1 unreadable" in again.stdout
        assert "2014-April.txt: entry 2 (line 10) unreadable: not a message" in again.stderr
        with make_sessionmaker(engine)() as session:
            assert session.scalar(select(func.count()).select_from(Post)) == 4
    finally:
        engine.dispose()


def test_a_missing_file_imports_nothing(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")
    notebook, _ = _files(tmp_path)
    result = run_cli(config, "archive", "import", "sm-cop", str(notebook), str(tmp_path / "nope"))
    assert result.code == 1
    assert "no such file" in result.stderr
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            assert session.scalar(select(func.count()).select_from(Post)) == 0
    finally:
        engine.dispose()


def test_archive_access_is_a_list_setting(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")
    shown = run_cli(config, "lists", "show", "sm-cop", "--json")
    assert shown.code == 0 and '"archive_access": "members"' in shown.stdout
    assert run_cli(config, "lists", "set", "sm-cop", "archive_access=public").code == 0
    bad = run_cli(config, "lists", "set", "sm-cop", "archive_access=everyone")
    assert bad.code == 1 and "archive_access" in bad.stderr
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            mlist = get_list(session, "sm-cop")
            assert mlist is not None and mlist.archive_access == "public"
    finally:
        engine.dispose()
