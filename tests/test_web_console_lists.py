# SPDX-License-Identifier: Apache-2.0
"""The console's list pages over HTTP: settings and holds, bans, bounces, the audit log."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from listserv.lists import get_list
from listserv.models import AuditEvent, Ban, DeliveryStatus, MailingList, Member
from tests.console_helpers import MEMBER, OWNER, Session, console_settings, sign_in
from tests.web_helpers import Site, add_member, main_text, open_site


@pytest.fixture
async def site(db_url: str, tmp_path: Path) -> AsyncIterator[Site]:
    async with open_site(console_settings(db_url, tmp_path / "var")) as site:
        add_member(site, MEMBER, "Jane Doe")
        yield site


@pytest.fixture
async def owner(site: Site) -> AsyncIterator[Session]:
    async with site.client_from("198.51.100.30") as browser:
        yield await sign_in(site, browser, OWNER)


def the_list(site: Site) -> MailingList:
    with site.factory() as session:
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        session.expunge(mlist)
        return mlist


async def test_settings_are_saved_and_refused_in_the_cli_s_words(
    site: Site, owner: Session
) -> None:
    page = await owner.client.get("/admin/lists/sm-cop/settings")
    assert page.status_code == 200
    assert 'value="Join the Social Media Community, Join #SocialGov' in page.text
    bad = await owner.client.post(
        "/admin/lists/sm-cop/settings",
        data={
            "csrf": owner.csrf,
            "retention_days": "forever",
            "non_member_action": "bounce",
            "subject_prefix": "[SM]",
        },
    )
    assert bad.status_code == 400
    text = main_text(bad.text)
    assert "retention_days must be a whole number, not 'forever'" in text
    assert 'value="forever"' in bad.text  # what was typed stays in the form
    assert the_list(site).subject_prefix == "[SM-COP]"  # nothing changed: all are checked first
    good = await owner.client.post(
        "/admin/lists/sm-cop/settings",
        data={
            "csrf": owner.csrf,
            "retention_days": "365",
            "moderated": "true",
            "eligible_domains": "gov, mil, fed.us",
        },
    )
    assert good.status_code == 200, good.text
    assert "Saved: eligible domains, moderated, retention days." in main_text(good.text)
    mlist = the_list(site)
    assert (mlist.retention_days, mlist.moderated) == (365, True)
    assert mlist.eligible_domains == ["gov", "mil", "fed.us"]
    with site.factory() as session:
        change = session.scalars(select(AuditEvent).where(AuditEvent.action == "list-change")).one()
    assert (change.actor, change.channel, change.auth) == (OWNER, "web", "link+totp")
    assert change.detail["after"]["retention_days"] == 365


async def test_legal_hold_asks_to_confirm_first(site: Site, owner: Session) -> None:
    asked = await owner.client.post(
        "/admin/lists/sm-cop/settings/hold",
        data={"csrf": owner.csrf, "hold": "legal_hold", "on": "true"},
    )
    assert "Put SM-COP under legal hold?" in main_text(asked.text)
    assert the_list(site).legal_hold is False
    done = await owner.client.post(
        "/admin/lists/sm-cop/settings/hold",
        data={"csrf": owner.csrf, "hold": "legal_hold", "on": "true", "confirmed": "yes"},
    )
    assert "The legal hold of SM-COP is now on." in main_text(done.text)
    assert the_list(site).legal_hold is True
    await owner.client.post(
        "/admin/lists/sm-cop/settings/hold",
        data={"csrf": owner.csrf, "hold": "emergency_hold", "on": "true", "confirmed": "yes"},
    )
    assert the_list(site).emergency_hold is True


async def test_bans_are_added_refused_and_lifted(site: Site, owner: Session) -> None:
    added = await owner.client.post(
        "/admin/lists/sm-cop/bans",
        data={"csrf": owner.csrf, "action": "ban", "pattern": "*@spam.example", "reason": "spam"},
    )
    assert "*@spam.example is banned from SM-COP." in main_text(added.text)
    twice = await owner.client.post(
        "/admin/lists/sm-cop/bans",
        data={"csrf": owner.csrf, "action": "ban", "pattern": "*@spam.example"},
    )
    assert twice.status_code == 409 and "already banned" in main_text(twice.text)
    lifted = await owner.client.post(
        "/admin/lists/sm-cop/bans",
        data={"csrf": owner.csrf, "action": "unban", "pattern": "*@spam.example"},
    )
    assert "is lifted" in main_text(lifted.text)
    with site.factory() as session:
        assert session.scalars(select(Ban)).all() == []


async def test_a_bouncing_member_is_turned_back_on(site: Site, owner: Session) -> None:
    with site.factory() as session, session.begin():
        member = session.scalars(select(Member).where(Member.address_key == MEMBER)).one()
        member.bounce_score = 5.0
        member.delivery_status = DeliveryStatus.DISABLED_BOUNCING
    page = await owner.client.get("/admin/lists/sm-cop/bounces")
    assert MEMBER in main_text(page.text)
    done = await owner.client.post(
        "/admin/lists/sm-cop/bounces", data={"csrf": owner.csrf, "address": MEMBER}
    )
    assert "Delivery to jane.doe@agency.gov is on again" in main_text(done.text)
    with site.factory() as session:
        member = session.scalars(select(Member).where(Member.address_key == MEMBER)).one()
        assert (member.delivery_status, member.bounce_score) == (DeliveryStatus.ENABLED, 0.0)


async def test_the_audit_log_is_filtered_and_exported(site: Site, owner: Session) -> None:
    await owner.client.post(
        "/admin/lists/sm-cop/bans", data={"csrf": owner.csrf, "action": "ban", "pattern": "x@y.gov"}
    )
    page = await owner.client.get("/admin/lists/sm-cop/audit", params={"action": "ban-add"})
    text = main_text(page.text)
    assert "1 record(s)" in text and "x@y.gov" in text and "web (link+totp)" in text
    bad = await owner.client.get("/admin/lists/sm-cop/audit", params={"since": "yesterday"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in main_text(bad.text)
    exported = await owner.client.get(
        "/admin/lists/sm-cop/audit.csv", params={"actor": OWNER, "action": "ban-add"}
    )
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["actor"], r["action"], r["target"], r["auth"]) for r in rows] == [
        (OWNER, "ban-add", "x@y.gov", "link+totp")
    ]
