# SPDX-License-Identifier: Apache-2.0
"""Records export for FOIA requests: mbox, .eml, manifest hashes and recipients."""

from __future__ import annotations

import csv
import email
import email.policy
import hashlib
import json
import mailbox
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from listserv import roster
from listserv.context import Context
from listserv.lists import get_list
from listserv.models import DeliveryMode, MailingList, Post, PostStatus
from listserv.records import export as records
from tests.actors import as_actor
from tests.admin_helpers import run_cli, write_config

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def raw_message(n: int, sender: str = "jane.doe@agency.gov") -> bytes:
    return (
        f"From: Jane Doe <{sender}>\r\n"
        f"To: sm-cop@lists.example.gov\r\n"
        f"Subject: Post number {n}\r\n"
        f"Message-ID: <post{n}@agency.gov>\r\n"
        f"Date: Sat, 01 Mar 2025 09:00:00 +0000\r\n"
        f"\r\n"
        f"Hello {n}.\r\n"
        f"From the field: a line mbox must quote.\r\n"
    ).encode()


def add_post(
    ctx: Context,
    mlist: MailingList,
    n: int,
    status: str,
    received: datetime,
    decided: datetime | None = None,
    recipients: int = 0,
) -> Post:
    raw = raw_message(n)
    post = Post(
        list_id=mlist.id,
        status=status,
        reason="" if status == PostStatus.ACCEPTED else f"{status} by rule",
        sender="jane.doe@agency.gov",
        sender_name="Jane Doe",
        subject=f"Post number {n}",
        message_id=f"<post{n}@agency.gov>",
        raw=raw,
        sha256=hashlib.sha256(raw).hexdigest(),
        received_at=received,
        decided_at=decided if decided is not None else received,
        recipient_count=recipients,
    )
    ctx.session.add(post)
    ctx.session.flush()
    return post


@pytest.fixture
def archive(ctx_factory: Callable[..., Context]) -> tuple[Context, MailingList]:
    """A list whose roster changes between posts, with posts of every status."""
    ctx = ctx_factory(now=T0 + timedelta(days=30))
    mlist = get_list(ctx.session, "sm-cop")
    assert mlist is not None
    a = roster.add_member(ctx.session, mlist, "a@agency.gov", now=T0, actor=as_actor("test", "cli"))
    roster.add_member(ctx.session, mlist, "b@army.mil", now=T0, actor=as_actor("test", "cli"))
    add_post(ctx, mlist, 1, PostStatus.ACCEPTED, T0 + timedelta(hours=1), recipients=2)
    add_post(ctx, mlist, 2, PostStatus.ACCEPTED, T0 + timedelta(hours=2), recipients=2)
    roster.add_member(
        ctx.session, mlist, "c@navy.mil", now=T0 + timedelta(hours=3), actor=as_actor("test", "cli")
    )
    # Held at 4h, approved at 6h: after c joined and a went nomail at 5h.
    add_post(
        ctx,
        mlist,
        3,
        PostStatus.ACCEPTED,
        T0 + timedelta(hours=4),
        decided=T0 + timedelta(hours=6),
        recipients=2,
    )
    roster.change_member(
        ctx.session,
        mlist,
        a,
        {"delivery_mode": DeliveryMode.NOMAIL},
        now=T0 + timedelta(hours=5),
        actor=as_actor("test", "email"),
    )
    add_post(ctx, mlist, 4, PostStatus.HELD, T0 + timedelta(hours=7))
    add_post(ctx, mlist, 5, PostStatus.REJECTED, T0 + timedelta(hours=8))
    add_post(ctx, mlist, 6, PostStatus.DISCARDED, T0 + timedelta(hours=9))
    add_post(ctx, mlist, 7, PostStatus.ACCEPTED, T0 + timedelta(days=3), recipients=2)
    ctx.session.commit()
    return ctx, mlist


def test_export_writes_mbox_eml_and_a_manifest_whose_hashes_match(
    archive: tuple[Context, MailingList], tmp_path: Path
) -> None:
    ctx, mlist = archive
    out = tmp_path / "foia"
    result = records.export_archive(
        ctx.session,
        mlist,
        out,
        since=T0,
        until=T0 + timedelta(days=1),
        statuses=[PostStatus.ACCEPTED],
        generated_by="records@agency.gov",
        now=ctx.now,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    rows = manifest["messages"]
    assert rows == result.rows
    assert [r["subject"] for r in rows] == ["Post number 1", "Post number 2", "Post number 3"]
    assert manifest["totals"]["by_status"] == {"accepted": 3}
    assert manifest["totals"]["archive_by_status"] == {
        "accepted": 3,
        "held": 1,
        "rejected": 1,
        "discarded": 1,
    }
    assert manifest["totals"]["complete"] is True
    # Every .eml is the original bytes, and the manifest's hashes match the files.
    for row in rows:
        data = (out / row["file"]).read_bytes()
        assert data == raw_message(int(row["subject"].split()[-1]))
        assert hashlib.sha256(data).hexdigest() == row["sha256"] == row["sha256_at_receipt"]
        assert row["unchanged_since_receipt"] is True
    for entry in manifest["files"]:
        assert hashlib.sha256((out / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
    # SHA256SUMS covers everything, manifest.json included.
    sums = dict(
        reversed(line.split("  ", 1)) for line in (out / "SHA256SUMS").read_text().splitlines()
    )
    assert "manifest.json" in sums and "posts.mbox" in sums and "manifest.csv" in sums
    for name, digest in sums.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name
    # The CSV manifest has the same rows.
    with (out / "manifest.csv").open() as handle:
        csv_rows = list(csv.DictReader(handle))
    assert [r["sha256"] for r in csv_rows] == [r["sha256"] for r in rows]
    assert [r["message_id"] for r in csv_rows] == [f"<post{n}@agency.gov>" for n in (1, 2, 3)]

    # The mbox opens with Python's mailbox module and holds the same messages.
    box = mailbox.mbox(str(out / "posts.mbox"))
    messages = list(box)
    assert [m["Message-ID"] for m in messages] == [r["message_id"] for r in rows]
    body = email.message_from_bytes(box.get_bytes(0), policy=email.policy.default)
    assert "From the field" in body.get_content()
    assert not (out / "held.mbox").exists()


def test_recipients_are_the_receiving_members_when_each_post_went_out(
    archive: tuple[Context, MailingList], tmp_path: Path
) -> None:
    ctx, mlist = archive
    out = tmp_path / "foia"
    records.export_archive(
        ctx.session,
        mlist,
        out,
        since=T0,
        until=T0 + timedelta(days=5),
        now=ctx.now,
    )
    rows = json.loads((out / "manifest.json").read_text())["messages"]
    files = {r["subject"]: r["recipients_file"] for r in rows}

    def addresses(name: str) -> list[str]:
        with (out / name).open() as handle:
            return [r["address"] for r in csv.DictReader(handle)]

    # Posts 1 and 2 went to the same roster, so they share one file.
    assert files["Post number 1"] == files["Post number 2"]
    assert addresses(files["Post number 1"]) == ["a@agency.gov", "b@army.mil"]
    # Post 3 was approved after c joined and a chose nomail.
    assert addresses(files["Post number 3"]) == ["b@army.mil", "c@navy.mil"]
    for row in rows:
        moment = datetime.fromisoformat(row["recipients_command"].rsplit("--at ", 1)[1])
        expected = [e.address for e in roster.members_at(ctx.session, mlist, moment)]
        assert addresses(row["recipients_file"]) == expected
        assert row["recipient_count"] == len(expected)
        assert row["recipients_command"].startswith("listserv members list sm-cop --at ")


def test_held_rejected_and_discarded_are_included_on_request_and_marked(
    archive: tuple[Context, MailingList], tmp_path: Path
) -> None:
    ctx, mlist = archive
    out = tmp_path / "foia"
    records.export_archive(
        ctx.session,
        mlist,
        out,
        since=T0,
        until=T0 + timedelta(days=1),
        statuses=list(PostStatus),
        now=ctx.now,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert [r["status"] for r in manifest["messages"]] == [
        "accepted",
        "accepted",
        "accepted",
        "held",
        "rejected",
        "discarded",
    ]
    for status, name in (
        ("held", "held.mbox"),
        ("rejected", "rejected.mbox"),
        ("discarded", "discarded.mbox"),
    ):
        [message] = list(mailbox.mbox(str(out / name)))
        [row] = [r for r in manifest["messages"] if r["status"] == status]
        assert message["Message-ID"] == row["message_id"]
        assert row["file"].startswith(f"messages/{status}/")
        assert row["reason"] == f"{status} by rule"
        assert row["recipients_file"] == ""
    assert len(list(mailbox.mbox(str(out / "posts.mbox")))) == 3


def test_export_refuses_a_non_empty_directory_and_an_empty_period(
    archive: tuple[Context, MailingList], tmp_path: Path
) -> None:
    ctx, mlist = archive
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(records.ExportError, match="not an empty directory"):
        records.export_archive(
            ctx.session,
            mlist,
            tmp_path / "used",
            since=T0,
            until=T0 + timedelta(days=1),
            now=ctx.now,
        )
    with pytest.raises(records.ExportError, match="after its start"):
        records.export_archive(
            ctx.session,
            mlist,
            tmp_path / "new",
            since=T0,
            until=T0,
            now=ctx.now,
        )


def test_archive_cli_export_list_and_audit(
    archive: tuple[Context, MailingList], db_url: str, tmp_path: Path
) -> None:
    archive[0].session.close()
    config = write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")
    out = tmp_path / "foia"
    result = run_cli(
        config,
        "archive",
        "export",
        "sm-cop",
        "--since",
        "2025-03-01",
        "--until",
        "2025-03-01",
        "--out",
        str(out),
        "--include-held",
        "--include-rejected",
        "--json",
    )
    assert result.code == 0, result.stderr
    [totals] = result.json()
    assert totals["by_status"] == {"accepted": 3, "held": 1, "rejected": 1}
    assert (out / "held.mbox").exists() and (out / "rejected.mbox").exists()
    again = run_cli(
        config,
        "archive",
        "export",
        "sm-cop",
        "--since",
        "2025-03-01",
        "--until",
        "2025-03-02",
        "--out",
        str(out),
    )
    assert again.code == 1 and "not an empty directory" in again.stderr
    baddate = run_cli(
        config,
        "archive",
        "export",
        "sm-cop",
        "--since",
        "March 1",
        "--until",
        "2025-03-02",
        "--out",
        str(tmp_path / "x"),
    )
    assert (
        baddate.code == 1 and baddate.stderr.count("\n") == 1 and "is not a date" in baddate.stderr
    )
    listed = run_cli(config, "archive", "list", "sm-cop", "--json").json()
    assert [p["subject"] for p in listed][:2] == ["Post number 7", "Post number 6"]
    held = run_cli(config, "archive", "list", "sm-cop", "--status", "held", "--json").json()
    assert [p["status"] for p in held] == ["held"]
    [event] = run_cli(config, "audit", "--action", "archive-export", "--json").json()
    assert event["detail"]["totals"]["messages"] == 5
    assert (
        event["detail"]["manifest_sha256"]
        == hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest()
    )


def test_a_member_who_changed_address_is_one_recipient_under_the_new_address(
    ctx_factory: Callable[..., Context], tmp_path: Path
) -> None:
    ctx = ctx_factory(now=T0 + timedelta(days=30))
    mlist = get_list(ctx.session, "sm-cop")
    assert mlist is not None
    jane = roster.add_member(ctx.session, mlist, "jane@agency.gov", now=T0, actor=as_actor())
    roster.add_member(ctx.session, mlist, "b@army.mil", now=T0, actor=as_actor())
    add_post(ctx, mlist, 1, PostStatus.ACCEPTED, T0 + timedelta(hours=1), recipients=2)
    roster.move_member(
        ctx.session, mlist, jane, "jane@navy.mil", now=T0 + timedelta(hours=2), actor=as_actor()
    )
    add_post(ctx, mlist, 2, PostStatus.ACCEPTED, T0 + timedelta(hours=3), recipients=2)
    ctx.session.commit()
    out = tmp_path / "foia"
    records.export_archive(
        ctx.session, mlist, out, since=T0, until=T0 + timedelta(days=1), now=ctx.now
    )
    rows = json.loads((out / "manifest.json").read_text())["messages"]
    files = {r["subject"]: r["recipients_file"] for r in rows}

    def addresses(name: str) -> list[str]:
        with (out / name).open() as handle:
            return [r["address"] for r in csv.DictReader(handle)]

    assert addresses(files["Post number 1"]) == ["b@army.mil", "jane@agency.gov"]
    assert addresses(files["Post number 2"]) == ["b@army.mil", "jane@navy.mil"]
    later = roster.members_at(ctx.session, mlist, T0 + timedelta(hours=3))
    assert [e.address for e in later] == ["b@army.mil", "jane@navy.mil"]
    assert roster.previous_keys(ctx.session, mlist, T0 + timedelta(hours=3)) == {
        "jane@navy.mil": "jane@agency.gov"
    }
