# SPDX-License-Identifier: Apache-2.0
"""Receiving bounces: one message at LIST-bounces@ becomes bounce events, or is set aside.

A VERP extension (`jane=agency.gov`) names the member without parsing; a
probe extension (`probe-TOKEN`) names one probe we sent. The DSN is parsed
anyway (listserv.dsn) to tell permanent from temporary from policy failures,
and delay notices are not bounces. Auto-replies, and mail that is neither a
recognisable bounce nor at a VERP address, are discarded: nothing here ever
becomes a post or a command. Bounce-shaped mail that cannot be read is kept
for the owners (and forwarded to them when the list's
`bounce_forward_unrecognised` is on).

Each event is scored as it is recorded, in the same transaction
(`scoring.score_events`), so a member's score moves within a second of the
bounce's 250; disabling follows the list's threshold at once, warnings and
removal the list's schedule (the periodic job).

What it trusts: nothing in a bounce. Anyone can mail the bounces address, so a
DSN's addresses only ever touch members of that list, VERP addresses only
their own member, and probe tokens are random and stored hashed.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr

from sqlalchemy import select

from listserv import roster
from listserv.addresses import verp_decode
from listserv.bounces.events import UNRECOGNISED, BounceSource, record_bounce
from listserv.bounces.probes import PROBE_PREFIX, settle_request
from listserv.bounces.scoring import score_events
from listserv.context import Context
from listserv.dsn import BouncedRecipient, BounceKind, BounceReport, parse_bounce
from listserv.message import ROBOT_LOCAL_PARTS
from listserv.models import MailingList, Member, PendingRequest, RequestKind, RequestStatus
from listserv.routing.delivery import Delivery
from listserv.routing.owners import forward_to_owners
from listserv.tokens import hash_token

#: Marks a copy forwarded to the owners, so its own bounce is never forwarded again.
FORWARD_HEADER = "X-Listserv-Bounce-Forward"

#: Which failure a report's several recipients come to for one member: the member's
#: benefit first, so a policy refusal anywhere in it is never counted against them.
_RANK = {BounceKind.POLICY: 0, BounceKind.PERMANENT: 1, BounceKind.TEMPORARY: 2}


def receive_bounce(ctx: Context, delivery: Delivery) -> str:
    """Record what one message at a bounces address says; the note is the inbound row's reason."""
    mlist = delivery.mlist
    if mlist is None:
        return "ignored: bounces address of no list"
    extension = delivery.recipient.extension
    report = parse_bounce(delivery.inbound.raw)
    if report.is_auto_reply:
        return "discarded: auto-reply to the bounces address"
    if _is_probe(extension):
        return _probe_returned(ctx, mlist, delivery, extension[len(PROBE_PREFIX) :], report)
    verp = verp_decode(extension) if extension else None
    if verp is not None:
        return _verp_bounce(ctx, mlist, delivery, verp, report)
    prefix = f"unknown extension {extension[:60]!r}; " if extension else ""
    if not report.recognised:
        return prefix + _unrecognised(ctx, mlist, delivery)
    return prefix + _dsn_bounce(ctx, mlist, delivery, report)


def _is_probe(extension: str) -> bool:
    """`probe-TOKEN`; a VERP address such as `probe-team=agency.gov` always holds a '='."""
    return extension.lower().startswith(PROBE_PREFIX) and "=" not in extension


@dataclass(frozen=True)
class _Verdict:
    kind: str
    status: str
    diagnostic: str


def _verdict_for(report: BounceReport, address_key: str) -> _Verdict | None:
    """What a bounce already tied to one member says about them; None: not a bounce.

    The recipient lines naming the member decide; failing that (forwarding renames
    addresses) all the report's failures do. A report we cannot read still came back
    to a return path only that member's copy carried, so it counts as permanent, as
    Mailman counts it; a report of deliveries or delays only is no bounce.
    """
    if not report.recognised:
        return _Verdict(BounceKind.PERMANENT, "", "bounce format not recognised")
    named = [r for r in report.recipients if roster.address_key(r.address) == address_key]
    failures = [r for r in (named or report.recipients) if r.kind is not BounceKind.DELAYED]
    if not failures:
        return None
    chosen = min(failures, key=lambda r: _RANK.get(r.kind, 3))
    return _Verdict(chosen.kind, chosen.status or "", chosen.diagnostic)


def _delay_note(report: BounceReport) -> str:
    if report.recipients:
        return "not counted: delivery delayed, not failed"
    return "ignored: a delivery report without failures"


def _verp_bounce(
    ctx: Context, mlist: MailingList, delivery: Delivery, address: str, report: BounceReport
) -> str:
    member = roster.find_member(ctx.session, mlist, address)
    if member is None:
        return f"ignored: VERP address {address} is not a member"
    verdict = _verdict_for(report, member.address_key)
    if verdict is None:
        return _delay_note(report)
    _record(ctx, mlist, member, verdict, BounceSource.VERP, delivery)
    return f"bounce recorded: {member.address} {verdict.kind} {verdict.status}".rstrip()


def _dsn_bounce(ctx: Context, mlist: MailingList, delivery: Delivery, report: BounceReport) -> str:
    """A bounce at the plain bounces address: its recipients, where they are members."""
    notes: list[str] = []
    seen: set[int] = set()
    for recipient in report.recipients:
        if recipient.kind is BounceKind.DELAYED:
            notes.append(f"{recipient.address}: delayed, not counted")
            continue
        member = roster.find_member(ctx.session, mlist, recipient.address)
        if member is None:
            notes.append(f"{recipient.address}: not a member, ignored")
            continue
        if member.id in seen:
            continue
        seen.add(member.id)
        _record(ctx, mlist, member, _from_recipient(recipient), BounceSource.DSN, delivery)
        notes.append(f"{member.address}: {recipient.kind} {recipient.status or ''}".rstrip())
    if not notes:
        return _delay_note(report)
    return "bounce: " + "; ".join(notes)


def _from_recipient(recipient: BouncedRecipient) -> _Verdict:
    return _Verdict(recipient.kind, recipient.status or "", recipient.diagnostic)


def _record(
    ctx: Context,
    mlist: MailingList,
    member: Member,
    verdict: _Verdict,
    source: BounceSource,
    delivery: Delivery,
) -> None:
    event = record_bounce(
        ctx.session,
        list_id=mlist.id,
        member_id=member.id,
        address=member.address,
        address_key=member.address_key,
        kind=verdict.kind,
        source=source,
        status=verdict.status,
        diagnostic=verdict.diagnostic,
        inbound_id=delivery.inbound.id,
        at=ctx.now,
    )
    score_events(ctx, [event])


def _looks_like_a_bounce(delivery: Delivery) -> bool:
    """Bounce-shaped: a null reverse path, a mailer-daemon sender or a report.

    Only such mail is kept for the owners when unreadable; anything else at the
    plain bounces address with nothing recognisable in it is spam.
    """
    envelope = delivery.envelope_from.strip().strip("<>").strip()
    if not envelope or envelope.partition("@")[0].lower() in ROBOT_LOCAL_PARTS:
        return True
    msg = delivery.message
    try:
        sender = parseaddr(str(msg.get("from", "")))[1]
        ctype = msg.get_content_type()
        failed = msg.get("x-failed-recipients") is not None
    except Exception:  # a header the email package cannot parse is not a reason to crash
        return False
    return (
        ctype == "multipart/report"
        or failed
        or sender.partition("@")[0].lower() in ROBOT_LOCAL_PARTS
    )


def _unrecognised(ctx: Context, mlist: MailingList, delivery: Delivery) -> str:
    if not _looks_like_a_bounce(delivery):
        return "discarded: not a bounce (no VERP address, nothing recognised)"
    envelope = delivery.envelope_from.strip().strip("<>") or "<>"
    try:
        from_address = parseaddr(str(delivery.message.get("from", "")))[1]
    except Exception:  # as in _looks_like_a_bounce
        from_address = ""
    address = (from_address or envelope)[:320]
    record_bounce(
        ctx.session,
        list_id=mlist.id,
        member_id=None,
        address=address,
        address_key=address.lower(),
        kind=UNRECOGNISED,
        source=BounceSource.DSN,
        diagnostic=f"kept for the owners: inbound message {delivery.inbound.id}",
        inbound_id=delivery.inbound.id,
        processed=True,
        at=ctx.now,
    )
    note = f"kept for the owners: unrecognised bounce (listserv inbound, id {delivery.inbound.id})"
    if not mlist.bounce_forward_unrecognised:
        return note
    if FORWARD_HEADER.lower().encode() in delivery.inbound.raw[:200_000].lower():
        return note + "; not forwarded: it is the bounce of a forwarded bounce"
    sent = forward_to_owners(ctx, mlist, delivery.inbound.raw, FORWARD_HEADER)
    if not sent:
        return note + "; the list has no owners to forward it to"
    return note + f"; forwarded to {sent} owner(s)"


def _probe_returned(
    ctx: Context, mlist: MailingList, delivery: Delivery, token: str, report: BounceReport
) -> str:
    """A message at a probe's return path: the probe bounced, unless it says otherwise."""
    request = ctx.session.scalar(
        select(PendingRequest).where(
            PendingRequest.token_hash == hash_token(token),
            PendingRequest.kind == RequestKind.BOUNCE_PROBE,
            PendingRequest.list_id == mlist.id,
        )
    )
    if request is None:
        return "ignored: unknown probe address"
    if request.status != RequestStatus.PENDING or request.resolved_by:
        return f"ignored: probe {request.id} was already settled"
    member = roster.find_member(ctx.session, mlist, request.address)
    if member is None:
        settle_request(ctx, request, RequestStatus.CANCELLED, "the member left")
        return f"ignored: probe {request.id} was for a former member"
    verdict = _verdict_for(report, member.address_key)
    if verdict is None:
        return _delay_note(report)
    _record(ctx, mlist, member, verdict, BounceSource.PROBE, delivery)
    if verdict.kind == BounceKind.POLICY:
        return f"probe {request.id} refused on policy grounds: not counted against the member"
    settle_request(
        ctx, request, RequestStatus.DONE, f"probe bounced: {verdict.kind} {verdict.status}"
    )
    return f"probe bounce recorded: {member.address} {verdict.kind} {verdict.status}".rstrip()
