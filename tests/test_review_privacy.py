# SPDX-License-Identifier: Apache-2.0
"""REVIEW and roster privacy, end to end: who gets the roster under each
`review_policy`, that the answer only ever goes to the From address, and that a
hidden list cannot be told apart from one that does not exist."""

from __future__ import annotations

import re

import pytest

from tests.admin_mail import (
    ATTACKER,
    MODERATOR,
    OWNER,
    PASSWORD,
    REQUEST,
    Mailbox,
    add_members,
    audit_rows,
    body_of,
    command,
    running,
    set_password,
)

pytestmark = pytest.mark.slow

JANE = "jane.doe@agency.gov"
OMAR = "omar@army.mil"
STRANGER = "stranger@agency.gov"


async def review(service, mail: Mailbox, sender: str, line: str = "REVIEW SM-COP", **kw) -> str:  # type: ignore[no-untyped-def]
    await command(service, line + "\n", sender=sender, **kw)
    return body_of(await mail.next(sender, "Re: admin"))


def shows_roster(text: str) -> bool:
    return JANE in text and OMAR in text


async def test_owners_policy_answers_owners_and_moderators_only(db_url, tmp_path) -> None:
    async with running(db_url, tmp_path, review_policy="owners") as service:
        add_members(service, JANE, OMAR)
        mail = Mailbox(service)
        text = await review(service, mail, OWNER)
        assert shows_roster(text) and f"Owners: {OWNER}" in text and "2 member(s)" in text
        assert shows_roster(await review(service, mail, MODERATOR))
        for outsider in (JANE, STRANGER):
            refusal = await review(service, mail, outsider)
            assert "open only to its owners and moderators" in refusal
            assert OMAR not in refusal and OWNER not in refusal
        entries = audit_rows(service, "roster-review")
        assert [(e.actor, e.outcome, e.auth) for e in entries] == [
            (OWNER, "ok", "from-address"),
            (MODERATOR, "ok", "from-address"),
            (JANE, "refused", ""),
            (STRANGER, "refused", ""),
        ]
        assert all(e.channel == "email" for e in entries)


async def test_a_forged_owner_from_sends_the_roster_only_to_the_real_owner(
    db_url, tmp_path
) -> None:
    async with running(db_url, tmp_path) as service:
        add_members(service, JANE, OMAR)
        mail = Mailbox(service)
        await command(service, "REVIEW SM-COP\n", sender=OWNER, envelope_from=ATTACKER)
        assert shows_roster(body_of(await mail.next(OWNER, "Re: admin")))
        await mail.nothing_more(ATTACKER)


async def test_password_proves_the_owner_and_a_wrong_one_gets_nothing(db_url, tmp_path) -> None:
    async with running(db_url, tmp_path) as service:
        add_members(service, JANE, OMAR)
        set_password(service)
        mail = Mailbox(service)
        assert shows_roster(
            await review(service, mail, OWNER, "REVIEW", to=REQUEST, Approved=PASSWORD)
        )
        refusal = await review(service, mail, OWNER, Approved="wrong password here")
        assert "password was not accepted" in refusal and not shows_roster(refusal)
        assert [e.auth for e in audit_rows(service, "roster-review")] == ["password"]
        [bad] = audit_rows(service, "owner-password")
        assert bad.outcome == "bad-password"


async def test_members_policy_answers_members_at_their_own_address(db_url, tmp_path) -> None:
    async with running(db_url, tmp_path, review_policy="members") as service:
        add_members(service, JANE, OMAR)
        mail = Mailbox(service)
        text = await review(service, mail, JANE)
        assert shows_roster(text)
        assert "Owners:" not in text  # staff and settings are for owners only
        refusal = await review(service, mail, STRANGER)
        assert "open only to its members" in refusal and not shows_roster(refusal)
        # A stranger writing a member's address gets nothing: the roster goes to the member.
        await command(service, "REVIEW SM-COP\n", sender=JANE, envelope_from=ATTACKER)
        assert shows_roster(body_of(await mail.next(JANE, "Re: admin")))
        await mail.nothing_more(ATTACKER)


async def test_public_policy_answers_anyone(db_url, tmp_path) -> None:
    async with running(db_url, tmp_path, review_policy="public") as service:
        add_members(service, JANE, OMAR)
        mail = Mailbox(service)
        text = await review(service, mail, STRANGER)
        assert shows_roster(text) and "Owners:" not in text


def _same_words(text: str, name: str) -> str:
    """A refusal with the list name written out replaced, so two can be compared."""
    return re.sub(re.escape(name), "LIST", text, flags=re.IGNORECASE)


@pytest.mark.parametrize("policy", ["owners", "members"])
async def test_a_hidden_list_refuses_like_a_list_that_does_not_exist(
    db_url, tmp_path, policy: str
) -> None:
    async with running(db_url, tmp_path, review_policy=policy, public=False) as service:
        add_members(service, JANE, OMAR)
        mail = Mailbox(service)
        hidden = await review(service, mail, STRANGER, "REVIEW SM-COP")
        missing = await review(service, mail, STRANGER, "REVIEW NO-SUCH")
        assert _same_words(hidden, "SM-COP") == _same_words(missing, "NO-SUCH")
        assert not shows_roster(hidden)
        hidden_add = await review(service, mail, STRANGER, "ADD SM-COP x@agency.gov")
        missing_add = await review(service, mail, STRANGER, "ADD NO-SUCH x@agency.gov")
        assert _same_words(hidden_add, "SM-COP") == _same_words(missing_add, "NO-SUCH")
        # Those on the roster still see it as the policy allows.
        assert shows_roster(await review(service, mail, OWNER))
