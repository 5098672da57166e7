# SPDX-License-Identifier: Apache-2.0
"""Owner commands by email, end to end over SMTP into the real service.

Every command is tried five ways: by an owner who then confirms, by an owner
who never confirms, under a forged owner From (and by a plain non-owner), with
the owner's `Approved:` password, and with a wrong one. Each run checks the
database (the change, or its absence), the audit log (channel email, the way
the owner was proved) and the Maildir (who was told what).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from listserv import bans, roster
from listserv.acts import bans as ban_acts
from listserv.approved import scrub_raw, strip_password
from listserv.context import Context
from listserv.models import (
    Ban,
    DeliveryStatus,
    MailingList,
    Member,
    PendingRequest,
    Post,
    PostStatus,
    RequestKind,
    RequestStatus,
    utcnow,
)
from listserv.posting import moderation
from tests.actors import as_actor
from tests.admin_mail import (
    ATTACKER,
    MODERATOR,
    OWNER,
    PASSWORD,
    REQUEST,
    SITE,
    Mailbox,
    add_members,
    audit_rows,
    body_of,
    command,
    delivered_anywhere,
    member,
    reply,
    running,
    set_password,
    stored_anywhere,
    with_list,
)
from tests.conftest import make_message, send, settle

pytestmark = pytest.mark.slow

STRANGER = "stranger@agency.gov"
READER = "reader@agency.gov"  # on the roster; no refusal may name it


# --------------------------------------------------------------------------- the cases


def _member(ctx: Context, mlist: MailingList, address: str) -> Member:
    found = roster.find_member(ctx.session, mlist, address)
    return found or roster.add_member(ctx.session, mlist, address, actor=as_actor("test", "system"))


def _held_post(ctx: Context, mlist: MailingList, address: str) -> str:
    raw = make_message(sender=address, subject=f"Post by {address}").as_bytes()
    post = Post(list_id=mlist.id, status=PostStatus.HELD, sender=address, subject="held", raw=raw)
    ctx.session.add(post)
    ctx.session.flush()
    moderation.hold_post(ctx, mlist, post, ["test hold"], tell_poster=False)
    return str(post.id)


def _awaiting(ctx: Context, mlist: MailingList, address: str) -> str:
    request = PendingRequest(
        list_id=mlist.id,
        kind=RequestKind.SUBSCRIBE,
        status=RequestStatus.AWAITING_APPROVAL,
        address=address,
        address_key=address,
        payload={"name": "Pat", "title": ""},
        expires_at=utcnow() + timedelta(days=3),
    )
    ctx.session.add(request)
    ctx.session.flush()
    return f"R{request.id}"


def _post_status(ctx: Context, mlist: MailingList, ref: str) -> str:
    post = ctx.session.get(Post, int(ref))
    assert post is not None
    return post.status


def _request_status(ctx: Context, mlist: MailingList, ref: str) -> str:
    request = ctx.session.get(PendingRequest, int(ref[1:]))
    assert request is not None
    return request.status


def _find(ctx: Context, mlist: MailingList, address: str) -> Member | None:
    return roster.find_member(ctx.session, mlist, address)


@dataclass(frozen=True)
class Case:
    """One owner command: how to set it up, how to write it, how to see it done."""

    name: str
    line: str  # site syntax; {ref} is what `prepare` returned (the address by default)
    action: str  # the audit action the change writes
    done: Callable[[Context, MailingList, str], bool]
    prepare: Callable[[Context, MailingList, str], str | None] = lambda ctx, mlist, a: None


def _suspended(ctx: Context, mlist: MailingList, address: str) -> None:
    m = _member(ctx, mlist, address)
    m.delivery_status = DeliveryStatus.SUSPENDED
    m.suspended_until = utcnow() + timedelta(days=30)


def _moderated(ctx: Context, mlist: MailingList, address: str) -> None:
    _member(ctx, mlist, address).moderated = True


def _banned(ctx: Context, mlist: MailingList, address: str) -> None:
    ban_acts.ban(ctx, as_actor("test", "cli", "host"), mlist, address)


def _hold(on: bool) -> Callable[[Context, MailingList, str], None]:
    def prepare(ctx: Context, mlist: MailingList, address: str) -> None:
        mlist.emergency_hold = on

    return prepare


CASES = [
    Case(
        "add",
        "ADD SM-COP {ref} Pat Doe, Analyst",
        "member-add",
        lambda ctx, mlist, a: (
            (m := _find(ctx, mlist, a)) is not None and m.display_name == "Pat Doe"
        ),
    ),
    Case(
        "delete",
        "DELETE SM-COP {ref}",
        "member-remove",
        lambda ctx, mlist, a: _find(ctx, mlist, a) is None,
        lambda ctx, mlist, a: _member(ctx, mlist, a) and None,
    ),
    Case(
        "set-digest",
        "SET SM-COP {ref} DIGEST",
        "member-change",
        lambda ctx, mlist, a: _member(ctx, mlist, a).delivery_mode == "digest",
        lambda ctx, mlist, a: _member(ctx, mlist, a) and None,
    ),
    Case(
        "set-nomail",
        "SET SM-COP {ref} NOMAIL",
        "member-change",
        lambda ctx, mlist, a: _member(ctx, mlist, a).delivery_mode == "nomail",
        lambda ctx, mlist, a: _member(ctx, mlist, a) and None,
    ),
    Case(
        "set-moderate-until",
        "SET SM-COP {ref} MODERATE until 14d second notice about tone",
        "member-moderate",
        lambda ctx, mlist, a: (
            (m := _member(ctx, mlist, a)).moderated
            and m.moderated_until is not None
            and m.conduct_note == "second notice about tone"
        ),
        lambda ctx, mlist, a: _member(ctx, mlist, a) and None,
    ),
    Case(
        "set-unmoderated",
        "SET SM-COP {ref} UNMODERATED",
        "member-change",
        lambda ctx, mlist, a: not _member(ctx, mlist, a).moderated,
        _moderated,
    ),
    Case(
        "suspend",
        "SUSPEND SM-COP {ref} until 2099-01-01 repeated personal attacks",
        "member-suspend",
        lambda ctx, mlist, a: _member(ctx, mlist, a).delivery_status == DeliveryStatus.SUSPENDED,
        lambda ctx, mlist, a: _member(ctx, mlist, a) and None,
    ),
    Case(
        "lift",
        "LIFT SM-COP {ref}",
        "member-conduct-lift",
        lambda ctx, mlist, a: _member(ctx, mlist, a).delivery_status == DeliveryStatus.ENABLED,
        _suspended,
    ),
    Case("hold", "HOLD SM-COP", "list-change", lambda ctx, m, a: m.emergency_hold, _hold(False)),
    Case("free", "FREE SM-COP", "list-change", lambda ctx, m, a: not m.emergency_hold, _hold(True)),
    Case(
        "ban",
        "BAN SM-COP {ref} spam",
        "ban-add",
        lambda ctx, mlist, a: bans.find_ban(ctx.session, mlist, a) is not None,
    ),
    Case(
        "unban",
        "UNBAN SM-COP {ref}",
        "ban-remove",
        lambda ctx, mlist, a: bans.find_ban(ctx.session, mlist, a) is None,
        _banned,
    ),
    Case(
        "approve-post",
        "APPROVE SM-COP {ref}",
        "post-approved",
        lambda ctx, mlist, ref: _post_status(ctx, mlist, ref) == PostStatus.ACCEPTED,
        _held_post,
    ),
    Case(
        "reject-post",
        "REJECT SM-COP {ref} off topic for this list",
        "post-rejected",
        lambda ctx, mlist, ref: _post_status(ctx, mlist, ref) == PostStatus.REJECTED,
        _held_post,
    ),
    Case(
        "discard-post",
        "DISCARD SM-COP {ref}",
        "post-discarded",
        lambda ctx, mlist, ref: _post_status(ctx, mlist, ref) == PostStatus.DISCARDED,
        _held_post,
    ),
    Case(
        "approve-request",
        "APPROVE SM-COP {ref}",
        "member-add",
        lambda ctx, mlist, ref: _request_status(ctx, mlist, ref) == RequestStatus.DONE,
        _awaiting,
    ),
    Case(
        "reject-request",
        "REJECT SM-COP {ref} not a government address",
        "subscribe-rejected",
        lambda ctx, mlist, ref: _request_status(ctx, mlist, ref) == RequestStatus.REJECTED,
        _awaiting,
    ),
    Case(
        "discard-request",
        "DISCARD SM-COP {ref}",
        "subscribe-discarded",
        lambda ctx, mlist, ref: _request_status(ctx, mlist, ref) == RequestStatus.REJECTED,
        _awaiting,
    ),
]


def _prepare(service, case: Case, address: str) -> str:  # type: ignore[no-untyped-def]
    ref = with_list(service, lambda ctx, mlist: case.prepare(ctx, mlist, address))
    return ref or address


def _is_done(service, case: Case, ref: str) -> bool:  # type: ignore[no-untyped-def]
    return bool(with_list(service, lambda ctx, mlist: case.done(ctx, mlist, ref)))


def _as_request_line(line: str) -> str:
    """The same command at sm-cop-request@, where the list is implied."""
    word, _, rest = line.partition(" SM-COP")
    return (word + rest).strip()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_owner_command_needs_confirmation_or_password(db_url, tmp_path, case: Case) -> None:
    async with running(db_url, tmp_path) as service:
        set_password(service)
        add_members(service, READER)
        mail = Mailbox(service)

        # 1. An owner who confirms: nothing happens until the reply to the confirmation.
        ref = _prepare(service, case, f"{case.name}-confirmed@agency.gov")
        mail.skip_all()
        await command(service, case.line.format(ref=ref))
        confirmation = await mail.next(OWNER, "confirm 1 owner command")
        answer = await mail.next(OWNER, "Re: admin")
        assert f"Confirmation sent to {OWNER}" in body_of(answer)
        assert case.line.format(ref=ref) in body_of(confirmation)
        assert str(confirmation["Reply-To"]).startswith("sm-cop-confirm+")
        await settle(service)
        assert not _is_done(service, case, ref)
        await reply(service, confirmation, "ok", sender=OWNER)
        results = await mail.next(OWNER, "results of the owner commands you confirmed")
        assert "already handled" not in body_of(results)
        assert _is_done(service, case, ref)
        [entry] = [a for a in audit_rows(service, case.action) if a.auth == "confirmed-reply"] or [
            None
        ]
        assert entry is not None and entry.channel == "email" and entry.actor == OWNER

        # 2. An owner who never confirms: nothing happens.
        ref = _prepare(service, case, f"{case.name}-unconfirmed@agency.gov")
        await command(service, case.line.format(ref=ref), to=REQUEST)
        await mail.next(OWNER, "confirm 1 owner command")
        await settle(service)
        assert not _is_done(service, case, ref)

        # 3. A forged owner From: the confirmation goes to the real owner, the forger
        #    gets nothing, nothing is done; a plain non-owner is refused.
        ref = _prepare(service, case, f"{case.name}-forged@agency.gov")
        await command(service, case.line.format(ref=ref), envelope_from=ATTACKER)
        await mail.next(OWNER, "confirm 1 owner command")
        assert f"Confirmation sent to {OWNER}" in body_of(await mail.next(OWNER, "Re: admin"))
        await command(service, case.line.format(ref=ref), sender=STRANGER)
        refusal = body_of(await mail.next(STRANGER))
        assert "Only the owners of SM-COP" in refusal or "you may not decide it" in refusal
        assert READER not in refusal
        await mail.nothing_more(ATTACKER)
        assert not _is_done(service, case, ref)
        assert audit_rows(service, "owner-command-refused")

        # 4. The owner's Approved: password: done at once, and the password is kept nowhere.
        ref = _prepare(service, case, f"{case.name}-password@agency.gov")
        line = _as_request_line(case.line.format(ref=ref))
        if case.name.startswith(("a", "d", "h")):  # half in the header, half as the first line
            await command(service, line, to=REQUEST, Approved=PASSWORD)
        else:
            await command(service, f"Approved: {PASSWORD}\n{line}", to=REQUEST)
        answer = await mail.next(OWNER, "Re: admin")
        await settle(service)
        assert _is_done(service, case, ref), body_of(answer)
        assert any(a.auth == "password" for a in audit_rows(service, case.action))
        assert stored_anywhere(service, PASSWORD) == []
        assert delivered_anywhere(service, PASSWORD) == []

        # 5. A wrong password: refused, audited, nothing done.
        ref = _prepare(service, case, f"{case.name}-wrong@agency.gov")
        await command(
            service, case.line.format(ref=ref), to=SITE, Approved="not the password at all"
        )
        answer = await mail.next(OWNER, "Re: admin")
        assert "password was not accepted" in body_of(answer)
        await settle(service)
        assert not _is_done(service, case, ref)
        [bad] = audit_rows(service, "owner-password")
        assert bad.outcome == "bad-password" and bad.channel == "email"
        assert stored_anywhere(service, "not the password at all") == []


# --------------------------------------------------------------------------- authentication


async def test_moderator_may_moderate_but_not_run_the_list(db_url, tmp_path) -> None:
    async with running(db_url, tmp_path) as service:
        set_password(service, MODERATOR, role="moderator")
        [discard_post] = [c for c in CASES if c.name == "discard-post"]
        ref = _prepare(service, discard_post, "poster@agency.gov")
        mail = Mailbox(service)
        mail.skip_all()
        await command(
            service,
            f"Approved: {PASSWORD}\nDISCARD SM-COP {ref}\nADD SM-COP new@agency.gov\n",
            sender=MODERATOR,
        )
        answer = body_of(await mail.next(MODERATOR, "Re: admin"))
        assert f"Post {ref} discarded" in answer
        assert "Only the owners of SM-COP may use ADD" in answer
        assert member(service, "new@agency.gov") is None
        [entry] = audit_rows(service, "post-discarded")
        assert (entry.actor, entry.auth) == (MODERATOR, "password")


async def test_several_commands_share_one_confirmation_and_one_results_mail(
    db_url, tmp_path
) -> None:
    async with running(db_url, tmp_path) as service:
        add_members(service, "old@agency.gov")
        mail = Mailbox(service)
        mail.skip_all()
        await command(
            service,
            "ADD SM-COP one@agency.gov\nADD SM-COP two@army.mil\nDELETE SM-COP old@agency.gov\n"
            "HELP\n",
            to=REQUEST,
        )
        confirmation = await mail.next(OWNER, "confirm 3 owner commands")
        text = body_of(confirmation)
        assert "ADD SM-COP one@agency.gov" in text and "DELETE SM-COP old@agency.gov" in text
        await reply(service, confirmation, "", sender=OWNER)
        results = body_of(await mail.next(OWNER, "results"))
        assert results.count("was added to SM-COP") == 2
        assert "old@agency.gov was removed" in results
        await mail.next("one@agency.gov", "Welcome")
        assert member(service, "old@agency.gov") is None
        # The token was used: replying again does nothing more.
        await reply(service, confirmation, "", sender=OWNER)
        answer = await mail.next(OWNER, "SM-COP: the result of your reply")
        again = body_of(answer)
        assert "already been used" in again
        assert "Re:" not in str(answer["Subject"])
        # It names the address replied to and what the owner wrote, not "confirm <code>".
        assert str(confirmation["Reply-To"]) in again and "> (your reply)" in again
        assert "sm-cop-request@" not in again and "> confirm " not in again


async def test_ok_with_the_code_in_the_subject_confirms_at_the_site_address(
    db_url, tmp_path
) -> None:
    async with running(db_url, tmp_path) as service:
        mail = Mailbox(service)
        mail.skip_all()
        await command(service, "HOLD SM-COP\n")
        confirmation = await mail.next(OWNER, "confirm 1 owner command")
        await command(service, "OK\n", to=SITE, subject=f"Re: {confirmation['Subject']}")
        await mail.next(OWNER, "results")
        assert with_list(service, lambda ctx, mlist: mlist.emergency_hold)


async def test_wrong_passwords_lock_out_even_the_right_one(db_url, tmp_path) -> None:
    async with running(db_url, tmp_path) as service:
        set_password(service)
        for attempt in range(5):
            await command(service, "HOLD SM-COP\n", Approved=f"guess number {attempt}")
        await settle(service)
        await command(service, "HOLD SM-COP\n", Approved=PASSWORD)
        await settle(service)
        assert not with_list(service, lambda ctx, mlist: mlist.emergency_hold)
        outcomes = [a.outcome for a in audit_rows(service, "owner-password")]
        assert outcomes == ["bad-password"] * 5 + ["password-locked"]
        assert all("guess" not in str(a.detail) for a in audit_rows(service))


async def test_password_in_an_encoded_body_is_removed_before_storing(db_url, tmp_path) -> None:
    async with running(db_url, tmp_path) as service:
        set_password(service)
        msg = make_message(sender=OWNER, to=SITE, subject="admin", body="")
        msg.set_content(f"Approved: {PASSWORD}\nHOLD SM-COP\n", cte="base64")
        assert PASSWORD.encode() not in msg.as_bytes()  # only the encoded form travels
        await send(service, msg)
        await settle(service)
        assert with_list(service, lambda ctx, mlist: mlist.emergency_hold)
        assert stored_anywhere(service, PASSWORD) == []
        with service.factory() as session:
            from listserv.message import parse_message, text_body_lines
            from listserv.models import InboundMessage

            [row] = session.scalars(select(InboundMessage)).all()
            lines = text_body_lines(parse_message(row.raw))
            assert "HOLD SM-COP" in lines and not any("Approved" in x for x in lines)


def test_strip_password_keeps_everything_else_byte_for_byte() -> None:
    raw = (
        b"From: owner@digital.gov\r\nApproved: sekrit-password\r\nSubject: x\r\n"
        b"X-Other: keep\r\n\r\nApproved: sekrit-password\r\nHOLD SM-COP\r\n-- \r\nsig\r\n"
    )
    clean = strip_password(raw, ["sekrit-password"])
    assert clean == (
        b"From: owner@digital.gov\r\nSubject: x\r\nX-Other: keep\r\n\r\nHOLD SM-COP\r\n-- \r\nsig\r\n"
    )


def test_scrub_raw_finds_the_password_itself_and_leaves_other_mail_alone() -> None:
    plain = b"From: a@agency.gov\r\nSubject: hi\r\n\r\nApproved by the director.\r\n"
    assert scrub_raw(plain) == plain
    carrying = b"From: a@agency.gov\r\nSubject: hi\r\n\r\nApproved: hunter2-hunter2\r\nHi all\r\n"
    assert scrub_raw(carrying) == b"From: a@agency.gov\r\nSubject: hi\r\n\r\nHi all\r\n"


def test_strip_password_rewrites_quoted_printable_parts() -> None:
    raw = (
        b"From: owner@digital.gov\nSubject: x\nMIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
        b"Approved: a=3Db=3Dc=3Dd-secret\nHOLD SM-COP\n"
    )
    clean = strip_password(raw, ["a=b=c=d-secret"])
    assert b"secret" not in clean and b"HOLD SM-COP" in clean


async def test_ineligible_add_is_refused_before_any_confirmation(db_url, tmp_path) -> None:
    async with running(db_url, tmp_path) as service:
        mail = Mailbox(service)
        await command(service, "ADD SM-COP someone@gmail.com\n")
        answer = body_of(await mail.next(OWNER, "Re: admin"))
        assert "Only" in answer and "gmail.com" in answer
        await mail.nothing_more(OWNER)
        with service.factory() as session:
            assert session.scalar(select(PendingRequest)) is None


async def test_owner_add_sends_the_welcome_and_skips_the_members_confirmation(
    db_url, tmp_path
) -> None:
    async with running(db_url, tmp_path) as service:
        set_password(service)
        mail = Mailbox(service)
        await command(
            service, "ADD new.member@agency.gov Jo Smith, Analyst\n", to=REQUEST, Approved=PASSWORD
        )
        welcome = await mail.next("new.member@agency.gov")
        assert "Welcome" in str(welcome["Subject"])
        found = member(service, "new.member@agency.gov")
        assert found is not None and (found.display_name, found.job_title) == (
            "Jo Smith",
            "Analyst",
        )
        [entry] = audit_rows(service, "member-add")[-1:]
        assert (entry.actor, entry.channel, entry.auth) == (OWNER, "email", "password")


async def test_banned_address_cannot_be_added_until_unbanned(db_url, tmp_path) -> None:
    async with running(db_url, tmp_path) as service:
        set_password(service)
        mail = Mailbox(service)
        await command(service, "BAN SM-COP *@spam.gov\nADD SM-COP x@spam.gov\n", Approved=PASSWORD)
        answer = body_of(await mail.next(OWNER, "Re: admin"))
        assert "is banned from SM-COP; UNBAN it first" in answer
        assert member(service, "x@spam.gov") is None
        with service.factory() as session:
            assert session.scalars(select(Ban.pattern)).all() == ["*@spam.gov"]


# --------------------------------------------------------------------------- member self-service


@pytest.mark.parametrize("to", [SITE, REQUEST], ids=["site", "request"])
async def test_member_sets_own_delivery_by_confirmed_reply_and_queries_it(
    db_url, tmp_path, to: str
) -> None:
    async with running(db_url, tmp_path) as service:
        add_members(service, "jane.doe@agency.gov")
        mail = Mailbox(service)
        mail.skip_all()
        prefix = "SM-COP " if to == SITE else ""
        await command(service, f"SET {prefix}DIGEST\n", sender="jane.doe@agency.gov", to=to)
        confirmation = await mail.next("jane.doe@agency.gov", "Confirm setting DIGEST")
        assert member(service, "jane.doe@agency.gov").delivery_mode == "regular"  # type: ignore[union-attr]
        await reply(service, confirmation, "", sender="jane.doe@agency.gov")
        await settle(service)
        assert member(service, "jane.doe@agency.gov").delivery_mode == "digest"  # type: ignore[union-attr]
        [change] = audit_rows(service, "member-change")
        assert (change.actor, change.channel, change.auth) == (
            "jane.doe@agency.gov",
            "email",
            "confirmed-reply",
        )
        mail.skip_all()
        await command(
            service, f"QUERY {prefix}".strip() + "\n", sender="jane.doe@agency.gov", to=to
        )
        answer = body_of(await mail.next("jane.doe@agency.gov", "Re:"))
        assert "delivery DIGEST" in answer
        # A forged From cannot change someone's settings: the confirmation goes to them.
        await command(
            service,
            f"SET {prefix}NOMAIL\n",
            sender="jane.doe@agency.gov",
            to=to,
            envelope_from=ATTACKER,
        )
        await mail.next("jane.doe@agency.gov", "Confirm setting NOMAIL")
        await mail.nothing_more(ATTACKER)
        assert member(service, "jane.doe@agency.gov").delivery_mode == "digest"  # type: ignore[union-attr]


async def test_query_from_a_non_member_reveals_nothing_about_others(db_url, tmp_path) -> None:
    async with running(db_url, tmp_path) as service:
        add_members(service, "jane.doe@agency.gov")
        mail = Mailbox(service)
        await command(service, "QUERY SM-COP\n", sender=STRANGER)
        answer = body_of(await mail.next(STRANGER, "Re:"))
        assert f"{STRANGER} is not a member" in answer and "jane" not in answer
