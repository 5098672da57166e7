# SPDX-License-Identifier: Apache-2.0
"""`listserv held …` against a running service that reads the same config file."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from listserv.app import Service, build_service
from listserv.cli import app
from listserv.config import load_settings
from listserv.models import PendingRequest, PostStatus, RequestStatus
from tests.conftest import TEST_SECRET, make_message, send, settle, shipped_config
from tests.posting_helpers import (
    BOB,
    CAROL,
    JANE,
    OWNER,
    add_member,
    copies_of,
    notices_to,
    post_for,
)

STRANGER = "stranger@agency.gov"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(data: dict[str, Any]) -> str:
    """Enough TOML for our configuration: tables and arrays of tables of plain values."""
    lines: list[str] = []
    for name, table in data.items():
        rows = table if isinstance(table, list) else [table]
        for row in rows:
            lines.append(f"[[{name}]]" if isinstance(table, list) else f"[{name}]")
            lines.extend(f"{key} = {_toml_value(value)}" for key, value in row.items())
            lines.append("")
    return "\n".join(lines)


@pytest.fixture
async def configured(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Service]:
    """The service started from a config file that LISTSERV_CONFIG names for the CLI."""
    data = shipped_config()
    var = tmp_path / "var"
    data["site"].update(secret=TEST_SECRET, var_dir=str(var))
    data["smtp"]["port"] = 0
    data["web"]["port"] = 0
    data["database"]["url"] = db_url
    data["delivery"]["maildir"] = str(var / "mail")
    path = tmp_path / "listserv.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    monkeypatch.setenv("LISTSERV_CONFIG", str(path))
    monkeypatch.delenv("LISTSERV_DATABASE_URL", raising=False)
    service = build_service(load_settings(path, environ={"LISTSERV_CONFIG": str(path)}))
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def cli(*args: str) -> Any:
    """Run `listserv ARGS` in a thread, so the service keeps serving meanwhile."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app, list(args), catch_exceptions=True)


async def hold_one(service: Service) -> int:
    for address in (JANE, BOB, CAROL):
        add_member(service, address)
    msg = make_message(
        sender=f"Stan Ger <{STRANGER}>", subject="Records schedule", body="Line one.\nLine two.\n"
    )
    msg.add_attachment(
        b"%PDF-1.4 " * 100, maintype="application", subtype="pdf", filename="schedule.pdf"
    )
    assert await send(service, msg) == {}
    await settle(service)
    post = post_for(service, msg["Message-ID"])
    assert post.status == PostStatus.HELD
    return post.id


async def test_held_post_approved_on_the_host_is_delivered(configured: Service) -> None:
    post_id = await hold_one(configured)

    listing = await cli("held", "list", "sm-cop", "--json")
    assert listing.exit_code == 0, listing.output
    [row] = json.loads(listing.stdout)
    assert (row["id"], row["sender"], row["subject"]) == (post_id, STRANGER, "Records schedule")
    assert "not a member" in row["reason"]

    table = await cli("held", "list", "sm-cop")
    assert table.exit_code == 0 and "Records schedule" in table.stdout

    shown = await cli("held", "show", "sm-cop", str(post_id))
    assert shown.exit_code == 0, shown.output
    for text in (
        "held",
        "not a member",
        "Subject: Records schedule",
        STRANGER,
        "Line two.",
        "schedule.pdf (application/pdf, 900 bytes)",
    ):
        assert text in shown.stdout

    approved = await cli("held", "approve", "sm-cop", str(post_id))
    assert approved.exit_code == 0, approved.output
    assert f"Post {post_id} approved" in approved.stdout
    configured.outbox_ready.set()
    await settle(configured)
    message_id = post_id_message_id(configured, post_id)
    copies = copies_of(configured, message_id)
    assert sorted(copies) == sorted([JANE, BOB, CAROL])
    assert all(len(c) == 1 for c in copies.values())
    copy = copies[JANE][0]
    assert copy.get_content_type() == "multipart/mixed"
    text = copy.get_body(("plain",))
    assert text is not None and "Line two." in text.get_content()
    assert "Freedom of Information Act" in copy.as_string()
    assert any(p.get_filename() == "schedule.pdf" for p in copy.iter_attachments())

    again = await cli("held", "approve", "sm-cop", str(post_id))
    assert again.exit_code == 1
    assert "already handled by" in str(again.exception)
    assert json.loads((await cli("held", "list", "sm-cop", "--json")).stdout) == []
    with configured.factory() as session:
        request = session.query(PendingRequest).one()
        assert request.status == RequestStatus.DONE and request.resolved_by.endswith("@host")


def post_id_message_id(service: Service, post_id: int) -> str:
    from listserv.models import Post

    with service.factory() as session:
        post = session.get(Post, post_id)
        assert post is not None
        return post.message_id


async def test_reject_on_the_host_tells_the_poster_why(configured: Service) -> None:
    post_id = await hold_one(configured)
    result = await cli("held", "reject", "sm-cop", str(post_id), "--reason", "Members only")
    assert result.exit_code == 0, result.output
    configured.outbox_ready.set()
    await settle(configured)
    held_notice, rejection = notices_to(configured, STRANGER)
    assert "awaits approval" in str(held_notice["Subject"])
    assert "was not posted" in str(rejection["Subject"])
    assert "Members only" in rejection.get_content()
    assert copies_of(configured, post_id_message_id(configured, post_id)) == {}


async def test_discard_then_a_late_decision_gets_one_clear_line(configured: Service) -> None:
    post_id = await hold_one(configured)
    result = await cli("held", "discard", "sm-cop", str(post_id))
    assert result.exit_code == 0 and "discarded" in result.stdout
    # The real command, as an operator runs it: one line on stderr, non-zero exit.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "listserv",
        "held",
        "reject",
        "sm-cop",
        str(post_id),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    out, err = await proc.communicate()
    assert proc.returncode == 1, (out, err)
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "was already handled by" in lines[0], lines
    await settle(configured)
    assert len(notices_to(configured, OWNER)) == 1  # the hold notice, nothing since


async def test_unknown_post_and_list_are_clear_errors(configured: Service) -> None:
    missing = await cli("held", "show", "sm-cop", "999")
    assert missing.exit_code == 1 and "no post 999" in str(missing.exception)
    no_list = await cli("held", "list", "nope")
    assert no_list.exit_code == 1 and "no list named" in str(no_list.exception)
