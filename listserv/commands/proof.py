# SPDX-License-Identifier: Apache-2.0
"""Proof of ownership for owner and moderator commands sent by email.

The From line proves nothing: anyone can write an owner's address there. A
command from an owner's or moderator's address therefore runs only

- after the owner confirms it: the commands are stored in an
  `owner-commands` request and a confirmation goes to the owner's address
  on the roster (LISTSERV's "OK" round trip); holding its token is the proof
  (audited with auth `confirmed-reply`); or
- when the message carries that owner's `Approved: password` (a header, or
  the first line of the body), checked against the Argon2 hash on the
  owner's roster row of that list (auth `password`).

Failed password attempts are audited (`bad-password`) and limited per list
and per sender's proof: the From address *and* the envelope sender it came
with. Past the limit (`limits.approved_failures_per_hour`) a password from
that pair is not checked for an hour, so a guesser gets a handful of tries;
a forged owner From sent with another envelope sender counts against the
forger's pair, never the owner's. Even when locked, an owner's mail is
answered with the OK round trip, so nobody is locked out of acting by
proving they read their own mail. The password itself is removed from
everything kept by `approved.py`.

Input is the processed message and a command's list; output is a `Grant`
(who acts, and how that was proved) or the `Outcome` to answer with. The act
the command then calls checks the granted role once more, as every channel's
acts do.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from listserv import audit, notices, ratelimit, roster
from listserv.actors import Auth, email_actor
from listserv.commands.request import CommandRequest, Grant
from listserv.confirmations.pending import confirm_address, new_request
from listserv.models import MailingList, Member, PendingRequest, RequestKind, Role
from listserv.outcomes import Outcome
from listserv.passwords import verify_password

#: Wrong passwords are counted over this window (the count is `limits.approved_failures_per_hour`).
PASSWORD_WINDOW = timedelta(hours=1)

#: What a moderator may do; owners may do everything.
MODERATOR_COMMANDS = frozenset({"approve", "reject", "discard", "review"})


def staff_row(session: Session, mlist: MailingList, address: str) -> Member | None:
    """The owner row for `address` on the list, else its moderator row, else None."""
    for role in (Role.OWNER, Role.MODERATOR):
        member = roster.find_member(session, mlist, address, role)
        if member is not None:
            return member
    return None


def may(role: Role | None, word: str) -> bool:
    """Whether a role may run a command word (owners: all; moderators: the moderation ones)."""
    if role == Role.OWNER:
        return True
    return role == Role.MODERATOR and word in MODERATOR_COMMANDS


def hidden(request: CommandRequest, mlist: MailingList | None) -> bool:
    """Whether the sender must be answered as if the list did not exist.

    A non-public list is invisible to anyone not on its roster in some role,
    so a refusal about it reads exactly like one about a list that is not there.
    """
    if mlist is None:
        return True
    if mlist.public:
        return False
    return not roster.roles_of(request.ctx.session, mlist, request.sender)


def no_such_list(word: str, name: str) -> Outcome:
    """The one refusal for a list that does not exist or may not be seen."""
    return Outcome.refused(
        f"{word.upper()} {name.upper()}: there is no such list here, or you may not use "
        f"{word.upper()} on it."
    )


def _password_key(request: CommandRequest, mlist: MailingList) -> str:
    """The sender's proof a failure counts against: From and envelope sender together."""
    envelope = request.credentials.envelope_from.strip().strip("<>")
    envelope_key = roster.address_key(envelope) if envelope else "<>"
    return f"approved-fail:{mlist.name}:{roster.address_key(request.sender)}:{envelope_key}"


def password_locked(request: CommandRequest, mlist: MailingList) -> bool:
    """Whether this sender's proof has had too many wrong passwords on the list lately."""
    ctx = request.ctx
    failures = ratelimit.count(ctx.session, _password_key(request, mlist), PASSWORD_WINDOW, ctx.now)
    return failures >= ctx.settings.limits.approved_failures_per_hour


def check_password(request: CommandRequest, mlist: MailingList) -> Grant | Outcome:
    """The message's password against the sender's owner (or moderator) hash on this list.

    Checked once per list per message; every failure is audited and counted.
    """
    creds = request.credentials
    if mlist.id in creds.verdicts:
        return creds.verdicts[mlist.id]
    ctx = request.ctx
    key = _password_key(request, mlist)
    limit = ctx.settings.limits.approved_failures_per_hour
    verdict: Grant | Outcome
    rows = [
        m
        for m in (
            roster.find_member(ctx.session, mlist, request.sender, role)
            for role in (Role.OWNER, Role.MODERATOR)
        )
        if m is not None
    ]
    matched = next(
        (m for m in rows if verify_password(m.password_hash, creds.password or "")), None
    )
    if matched is not None:
        verdict = Grant(matched.address, Auth.PASSWORD, matched.role)
    else:
        ratelimit.allow(ctx.session, key, limit, PASSWORD_WINDOW, ctx.now)
        why = (
            "sender is not an owner or moderator"
            if not rows
            else "wrong password"
            if any(m.password_hash for m in rows)
            else "no password is set"
        )
        _audit_password(request, mlist, "bad-password", why)
        verdict = Outcome.refused(
            f"The Approved: password was not accepted for {mlist.display_name}; nothing was done."
        )
    creds.verdicts[mlist.id] = verdict
    return verdict


def _audit_password(request: CommandRequest, mlist: MailingList, outcome: str, why: str) -> None:
    audit.record_act(
        request.ctx.session,
        email_actor(request.sender, Auth.PASSWORD),
        "owner-password",
        list_name=mlist.name,
        source=request.ctx.source,
        outcome=outcome,
        detail={"reason": why},
        at=request.ctx.now,
    )


def authorize(request: CommandRequest, mlist: MailingList, word: str, line: str) -> Grant | Outcome:
    """May this message run `line` (an owner command, in site syntax) on this list now?

    Returns a Grant, or the Outcome to answer: refused, or pending when a
    confirmation will go to the owner's roster address (`send_confirmations`).
    """
    creds = request.credentials
    session = request.ctx.session
    if creds.confirmed is not None:
        list_id, address = creds.confirmed
        if list_id != mlist.id:
            return Outcome.refused("That command was not part of the request you confirmed.")
        row = staff_row(session, mlist, address)
        if row is None or not may(row.role, word):
            return Outcome.refused(
                f"{address} may no longer use {word.upper()} on {mlist.display_name}."
            )
        return Grant(row.address, Auth.CONFIRMED_REPLY, row.role)
    if creds.password is not None and not _locked_out(request, mlist):
        verdict = check_password(request, mlist)
        if isinstance(verdict, Grant) and not may(verdict.role, word):
            return _moderator_refusal(mlist, word)
        return verdict
    row = staff_row(session, mlist, request.sender)
    if row is None:
        return not_staff(request, mlist, word)
    if not may(row.role, word):
        return _moderator_refusal(mlist, word)
    creds.deferred.setdefault(mlist.id, []).append(line)
    creds.deferred_to[mlist.id] = row.address
    return Outcome.pending(
        f"Confirmation sent to {row.address}; reply to it to carry this out.", notified=True
    )


def _locked_out(request: CommandRequest, mlist: MailingList) -> bool:
    """Past the failure limit: the password is not checked, and the OK round trip is used.

    Audited once per list per message; the owner's roster address is then
    asked to confirm, so a real owner still gets the command done.
    """
    creds = request.credentials
    if mlist.id in creds.verdicts or not password_locked(request, mlist):
        return False
    if mlist.id not in creds.locks_audited:
        creds.locks_audited.add(mlist.id)
        _audit_password(request, mlist, "password-locked", "too many wrong passwords")
    return True


def _moderator_refusal(mlist: MailingList, word: str) -> Outcome:
    return Outcome.refused(
        f"Only the owners of {mlist.display_name} may use {word.upper()}; moderators may "
        "APPROVE, REJECT, DISCARD and REVIEW."
    )


def not_staff(request: CommandRequest, mlist: MailingList, word: str) -> Outcome:
    """The refusal for a sender who is neither owner nor moderator (audited once per list)."""
    creds = request.credentials
    if mlist.id not in creds.refusals_audited:
        creds.refusals_audited.add(mlist.id)
        audit.record_act(
            request.ctx.session,
            request.actor,
            "owner-command-refused",
            list_name=mlist.name,
            source=request.ctx.source,
            outcome="not-authorized",
            detail={"command": word.upper()},
            at=request.ctx.now,
        )
    if not mlist.public:
        return no_such_list(word, mlist.name)
    return Outcome.refused(
        f"Only the owners of {mlist.display_name} may use {word.upper()}"
        + (" (and its moderators)." if word in MODERATOR_COMMANDS else ".")
    )


def send_confirmations(request: CommandRequest) -> list[PendingRequest]:
    """One `owner-commands` request per list whose commands wait, each mailed to its owner."""
    creds = request.credentials
    ctx = request.ctx
    made: list[PendingRequest] = []
    for list_id, lines in creds.deferred.items():
        mlist = ctx.session.get(MailingList, list_id)
        if mlist is None:
            continue
        owner = creds.deferred_to[list_id]
        pending_id, token = new_request(
            ctx,
            mlist,
            RequestKind.OWNER_COMMANDS,
            owner,
            {"commands": list(lines), "list": mlist.name},
        )
        reply_address = confirm_address(mlist, token)
        notices.send_notice(
            ctx,
            "owner_confirm.txt.j2",
            owner,
            mlist=mlist,
            reply_to=reply_address,
            commands=list(lines),
            token=token,
            confirm_address=reply_address,
            expiry_hours=mlist.confirm_expiry_hours,
            asked_at=request.mlist.address("-request")
            if request.mlist is not None and not request.site
            else ctx.settings.site.site_address,
        )
        audit.record_act(
            ctx.session,
            request.actor,
            "owner-commands-requested",
            list_name=mlist.name,
            target=owner,
            source=ctx.source,
            outcome="pending",
            detail={"request": pending_id, "commands": list(lines)},
            at=ctx.now,
        )
        pending = ctx.session.get(PendingRequest, pending_id)
        assert pending is not None  # inserted above, in this transaction
        made.append(pending)
    creds.deferred.clear()
    creds.deferred_to.clear()
    return made
