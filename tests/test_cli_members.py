# SPDX-License-Identifier: Apache-2.0
"""`listserv members` and `listserv requests` on the host, as an owner uses them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from listserv.db import make_engine, make_sessionmaker
from listserv.models import AuditEvent, MailingList, PendingRequest, RequestStatus
from tests.admin_helpers import run_cli, write_config


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    return write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")


def test_add_list_remove_with_json(config: Path) -> None:
    added = run_cli(
        config,
        "members",
        "add",
        "SM-COP",
        "Jane.Doe@Agency.gov",
        "--name",
        "Jane Doe",
        "--title",
        "Digital Media Specialist",
    )
    assert added.code == 0, added.stderr
    listing = run_cli(config, "members", "list", "sm-cop", "--json")
    assert listing.code == 0
    rows = listing.json()
    jane = next(r for r in rows if r["address"] == "Jane.Doe@agency.gov")  # domain folded
    assert jane["name"] == "Jane Doe" and jane["role"] == "member"
    assert jane["delivery"] == "mail"
    assert {"address", "name", "role", "delivery"} <= set(jane)
    assert any(r["role"] == "owner" for r in rows)
    table = run_cli(config, "members", "list", "SM-COP")
    assert "Jane.Doe@agency.gov" in table.stdout
    removed = run_cli(config, "members", "remove", "sm-cop", "jane.doe@agency.gov")
    assert removed.code == 0, removed.stderr
    rows = run_cli(config, "members", "list", "sm-cop", "--json", "--role", "member").json()
    assert rows == []


def test_add_checks_eligibility_unless_forced(config: Path) -> None:
    refused = run_cli(config, "members", "add", "sm-cop", "bob@gmail.com")
    assert refused.code != 0
    assert len(refused.stderr.strip().splitlines()) == 1 and ".gov" in refused.stderr
    forced = run_cli(config, "members", "add", "sm-cop", "bob@gmail.com", "--force")
    assert forced.code == 0, forced.stderr
    # --force never lets through an address that is not an address.
    bad = run_cli(config, "members", "add", "sm-cop", "eve@[192.0.2.1]", "--force")
    assert bad.code != 0


def test_bad_input_exits_non_zero_with_one_line(config: Path) -> None:
    for args in (
        ["members", "list", "no-such-list"],
        ["members", "add", "sm-cop", "not an address"],
        ["members", "remove", "sm-cop", "nobody@agency.gov"],
        ["members", "list", "sm-cop", "--role", "king"],
        ["requests", "approve", "sm-cop", "999"],
    ):
        result = run_cli(config, *args)
        assert result.code != 0, args
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)


def test_requests_approve_and_reject(config: Path, db_url: str) -> None:
    engine = make_engine(db_url)
    assert run_cli(config, "lists", "list").code == 0  # migrates and seeds
    factory = make_sessionmaker(engine)
    with factory() as session, session.begin():
        mlist = session.scalar(select(MailingList))
        assert mlist is not None
        for i, address in enumerate(("pat@contractor.com", "sam@contractor.com")):
            from datetime import timedelta

            from listserv.models import utcnow

            session.add(
                PendingRequest(
                    list_id=mlist.id,
                    kind="subscribe",
                    status=RequestStatus.AWAITING_APPROVAL,
                    address=address,
                    address_key=address,
                    payload={"name": f"N{i}"},
                    expires_at=utcnow() + timedelta(days=3),
                )
            )
    rows = run_cli(config, "requests", "list", "sm-cop", "--json").json()
    assert [r["address"] for r in rows] == ["pat@contractor.com", "sam@contractor.com"]
    first, second = rows[0]["id"], rows[1]["id"]
    assert run_cli(config, "requests", "approve", "sm-cop", str(first)).code == 0
    rejected = run_cli(config, "requests", "reject", "sm-cop", str(second), "--reason", "no")
    assert rejected.code == 0, rejected.stderr
    again = run_cli(config, "requests", "approve", "sm-cop", str(first))
    assert again.code != 0 and "already handled" in again.stderr
    members = run_cli(config, "members", "list", "sm-cop", "--json", "--role", "member").json()
    assert [m["address"] for m in members] == ["pat@contractor.com"]
    with factory() as session:
        actions = set(session.scalars(select(AuditEvent.action)))
        assert {"member-add", "subscribe-rejected"} <= actions
        channels = set(session.scalars(select(AuditEvent.channel)))
        assert "cli" in channels
    engine.dispose()
