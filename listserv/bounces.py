# SPDX-License-Identifier: Apache-2.0
"""Bounces: mail back at LIST-bounces becomes bounce events, and events become scores.

Two halves around the `bounce_events` table, as in Mailman's bounce runner:

`receive_bounce` (the router's BOUNCES stage) reads one message sent to
`LIST-bounces@` or `LIST-bounces+EXT@`. A VERP extension (`jane=agency.gov`)
names the member without parsing; a probe extension (`probe-TOKEN`) names one
probe we sent. The DSN is parsed anyway (listserv.dsn) to tell permanent from
temporary from policy failures, and delay notices are not bounces.
Auto-replies, and mail that is neither a recognisable bounce nor at a VERP
address, are discarded: nothing here ever becomes a post or a command.
Bounce-shaped mail that cannot be read is kept for the owners (and forwarded
to them when the list's `bounce_forward_unrecognised` is on).

`score_bounces` (periodic) turns unprocessed events (from DSNs and from the
relay's 5xx during delivery) into member scores: a permanent bounce adds 1, a
temporary one `bounce_temporary_score`, at most once a calendar day (UTC); a
score with no bounce for `bounce_stale_after_days` goes back to 0. At
`bounce_score_threshold` delivery is disabled (never removal first) and the
member and the owners are told; with `bounce_probe` a probe with a one-off
return path must bounce first. `send_warnings` repeats the notice every
`bounce_warning_interval_days`; after `bounce_warnings` of them the member is
removed. Policy rejections (DMARC, spam, 5.7.x) never score: they are our mail's
fault, so many of them alert the owners instead.

What it trusts: nothing in a bounce. Anyone can mail the bounces address, so
a DSN's addresses only ever touch members of that list, VERP addresses only
their own member, and probe tokens are random and stored hashed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from listserv import audit, notices, outbox, roster
from listserv.addresses import verp_decode
from listserv.context import Context
from listserv.dsn import (
    BouncedRecipient,
    BounceKind,
    BounceReport,
    classify_smtp_reply,
    parse_bounce,
)
from listserv.models import (
    AuditEvent,
    BounceEvent,
    DeliveryStatus,
    MailingList,
    Member,
    OutboxRecipient,
    OutboxState,
    PendingRequest,
    RequestKind,
    RequestStatus,
    Role,
)
from listserv.outcomes import Outcome
from listserv.tokens import hash_token, new_token

if TYPE_CHECKING:
    from listserv.routing.delivery import Delivery

#: Who the audit log and membership history name for what this module does.
ACTOR = "bounce-processor"
#: `LIST-bounces+probe-TOKEN@`: the return path of one probe message.
PROBE_PREFIX = "probe-"
#: Marks a copy forwarded to the owners, so its own bounce is never forwarded again.
FORWARD_HEADER = "X-Listserv-Bounce-Forward"

#: Policy alert: this many distinct members refusing our mail on policy grounds in
#: POLICY_WINDOW (or POLICY_SHARE of the receiving members, if that is fewer, but at
#: least POLICY_MIN_MEMBERS) alerts the owners, at most once per POLICY_WINDOW.
POLICY_WINDOW = timedelta(hours=24)
POLICY_MEMBERS = 5
POLICY_SHARE = 0.10
POLICY_MIN_MEMBERS = 2

_BATCH = 500
_BOUNCE_SENDERS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"})
#: Which failure a report's several recipients come to for one member: the member's
#: benefit first, so a policy refusal anywhere in it is never counted against them.
_RANK = {BounceKind.POLICY: 0, BounceKind.PERMANENT: 1, BounceKind.TEMPORARY: 2}


# --- receiving ----------------------------------------------------------------------------------


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
    _record(ctx, mlist, member, verdict, "verp", delivery)
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
        _record(ctx, mlist, member, _from_recipient(recipient), "dsn", delivery)
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
    source: str,
    delivery: Delivery,
) -> BounceEvent:
    event = BounceEvent(
        list_id=mlist.id,
        member_id=member.id,
        address=member.address,
        address_key=member.address_key,
        kind=str(verdict.kind),
        source=source,
        status_code=verdict.status[:16],
        diagnostic=verdict.diagnostic[:2000],
        inbound_id=delivery.inbound.id,
        processed=False,
        at=ctx.now,
    )
    ctx.session.add(event)
    return event


def _looks_like_a_bounce(delivery: Delivery) -> bool:
    """Bounce-shaped: a null reverse path, a mailer-daemon sender or a report.

    Only such mail is kept for the owners when unreadable; anything else at the
    plain bounces address with nothing recognisable in it is spam.
    """
    envelope = delivery.envelope_from.strip().strip("<>").strip()
    if not envelope or envelope.partition("@")[0].lower() in _BOUNCE_SENDERS:
        return True
    msg = delivery.message
    try:
        sender = parseaddr(str(msg.get("from", "")))[1]
        ctype = msg.get_content_type()
        failed = msg.get("x-failed-recipients") is not None
    except Exception:  # a header the email package cannot parse is not a reason to crash
        return False
    return (
        ctype == "multipart/report" or failed or sender.partition("@")[0].lower() in _BOUNCE_SENDERS
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
    ctx.session.add(
        BounceEvent(
            list_id=mlist.id,
            member_id=None,
            address=address,
            address_key=address.lower(),
            kind="unrecognised",
            source="dsn",
            diagnostic=f"kept for the owners: inbound message {delivery.inbound.id}",
            inbound_id=delivery.inbound.id,
            processed=True,
            at=ctx.now,
        )
    )
    note = f"kept for the owners: unrecognised bounce (listserv inbound, id {delivery.inbound.id})"
    if not mlist.bounce_forward_unrecognised:
        return note
    if FORWARD_HEADER.lower().encode() in delivery.inbound.raw[:200_000].lower():
        return note + "; not forwarded: it is the bounce of a forwarded bounce"
    owners = [m.address for m in roster.members(ctx.session, mlist, Role.OWNER)]
    if not owners:
        return note + "; the list has no owners to forward it to"
    header = f"{FORWARD_HEADER}: {mlist.posting_address}\r\n".encode()
    outbox.enqueue(
        ctx.session,
        mail_from=mlist.address("-bounces"),
        recipients=owners,
        raw=header + delivery.inbound.raw,
        retry_for=timedelta(hours=ctx.settings.delivery.retry_for_hours),
        kind="service",
        list_id=mlist.id,
        now=ctx.now,
    )
    return note + f"; forwarded to {len(owners)} owner(s)"


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
        _settle(ctx, request, RequestStatus.CANCELLED, "the member left")
        return f"ignored: probe {request.id} was for a former member"
    verdict = _verdict_for(report, member.address_key)
    if verdict is None:
        return _delay_note(report)
    _record(ctx, mlist, member, verdict, "probe", delivery)
    if verdict.kind == BounceKind.POLICY:
        return f"probe {request.id} refused on policy grounds: not counted against the member"
    _settle(ctx, request, RequestStatus.DONE, f"probe bounced: {verdict.kind} {verdict.status}")
    return f"probe bounce recorded: {member.address} {verdict.kind} {verdict.status}".rstrip()


def _settle(ctx: Context, request: PendingRequest, status: str, reason: str) -> None:
    request.status = status
    request.resolved_at = ctx.now
    request.resolved_by = ACTOR
    request.reason = reason


# --- scoring ------------------------------------------------------------------------------------


def system_context(target: Session | Context, now: datetime) -> Context:
    """The context scoring runs in: channel system, actor the bounce processor.

    The periodic runner hands a bare session; it carries the service's settings
    and templates in `session.info` (see periodic._once).
    """
    if isinstance(target, Context):
        return Context(
            session=target.session,
            settings=target.settings,
            templates=target.templates,
            now=now,
            channel="system",
            source=ACTOR,
        )
    settings = target.info.get("settings")
    templates = target.info.get("templates")
    if settings is None or templates is None:
        raise RuntimeError("bounce processing needs settings and templates in session.info")
    return Context(
        session=target,
        settings=settings,
        templates=templates,
        now=now,
        channel="system",
        source=ACTOR,
    )


def housekeeping(session: Session, now: datetime) -> int:
    """The periodic job: score new bounce events, then warn or remove disabled members."""
    ctx = system_context(session, now)
    return score_bounces(ctx, now) + send_warnings(ctx, now)


def score_bounces(target: Session | Context, now: datetime) -> int:
    """Process every unprocessed bounce event; returns how many were processed."""
    ctx = system_context(target, now)
    lists: dict[int, MailingList | None] = {}
    _settle_probes(ctx, lists)
    processed = 0
    policy_lists: set[int] = set()
    while True:
        events = ctx.session.scalars(
            select(BounceEvent)
            .where(BounceEvent.processed.is_(False))
            .order_by(BounceEvent.at, BounceEvent.id)
            .limit(_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        if not events:
            break
        members = _members_of(ctx, events)
        with ctx.session.no_autoflush:  # one flush per batch, not one per event
            for event in events:
                event.processed = True
                processed += 1
                mlist = _list(ctx, lists, event.list_id)
                if mlist is None:
                    continue
                if event.kind == BounceKind.POLICY:
                    policy_lists.add(mlist.id)
                    continue
                member = members.get(event.member_id or (mlist.id, event.address_key))
                if member is None or member.list_id != mlist.id:
                    continue  # they left, or never were a member
                event.member_id = member.id
                _score(ctx, mlist, member, event)
        ctx.session.flush()
    for list_id in sorted(policy_lists):
        mlist = lists.get(list_id)
        if mlist is not None:
            _policy_alert(ctx, mlist)
    _reset_stale(ctx)
    return processed


def _list(
    ctx: Context, cache: dict[int, MailingList | None], list_id: int | None
) -> MailingList | None:
    if list_id is None:
        return None
    if list_id not in cache:
        cache[list_id] = ctx.session.get(MailingList, list_id)
    return cache[list_id]


def _members_of(ctx: Context, events: Sequence[BounceEvent]) -> dict[int | tuple[int, str], Member]:
    """The members a batch of events is about, locked, by id and by (list, address key).

    Events from DSNs and the relay carry the member's id; a member who has left since
    is simply missing. One query for the batch instead of one per event.
    """
    ids = {e.member_id for e in events if e.member_id is not None}
    keys = {e.address_key for e in events if e.member_id is None and e.list_id is not None}
    found: dict[int | tuple[int, str], Member] = {}
    clauses = []
    if ids:
        clauses.append(Member.id.in_(ids))
    if keys:
        clauses.append(Member.address_key.in_(keys))
    if not clauses:
        return found
    for member in ctx.session.scalars(
        select(Member)
        .where(Member.role == Role.MEMBER, or_(*clauses))
        .order_by(Member.id)
        .with_for_update()
    ):
        found[member.id] = member
        found[(member.list_id, member.address_key)] = member
    return found


def _score(ctx: Context, mlist: MailingList, member: Member, event: BounceEvent) -> None:
    at = event.at
    if event.source == "probe":
        if event.kind in (BounceKind.PERMANENT, BounceKind.TEMPORARY):
            _note_bounce(member, at)
            if member.delivery_status == DeliveryStatus.ENABLED:
                _disable(ctx, mlist, member, event)
        return
    if member.delivery_status != DeliveryStatus.ENABLED:
        _note_bounce(member, at)  # already disabled (or suspended): nothing more to count
        return
    weight = _weight(mlist, event.kind)
    if weight <= 0:
        return
    last = member.last_bounce_at
    if last is not None and at - last > timedelta(days=mlist.bounce_stale_after_days):
        member.bounce_score = 0.0
    elif last is not None and member.bounce_score > 0 and at.date() <= last.date():
        _note_bounce(member, at)  # at most one score a day, but the bounce keeps it fresh
        return
    member.bounce_score = round(member.bounce_score + weight, 3)
    _note_bounce(member, at)
    if member.bounce_score >= mlist.bounce_score_threshold:
        if not mlist.bounce_probe:
            _disable(ctx, mlist, member, event)
        elif _pending_probe(ctx, mlist, member) is None:
            _send_probe(ctx, mlist, member)


def _weight(mlist: MailingList, kind: str) -> float:
    if kind == BounceKind.PERMANENT:
        return 1.0
    if kind == BounceKind.TEMPORARY:
        return float(mlist.bounce_temporary_score)
    return 0.0


def _note_bounce(member: Member, at: datetime) -> None:
    if member.last_bounce_at is None or at > member.last_bounce_at:
        member.last_bounce_at = at


def _reset_stale(ctx: Context) -> None:
    """Scores of enabled members with no bounce for the stale period go back to 0."""
    for mlist in ctx.session.scalars(select(MailingList)):
        cutoff = ctx.now - timedelta(days=mlist.bounce_stale_after_days)
        ctx.session.execute(
            update(Member)
            .where(
                Member.list_id == mlist.id,
                Member.delivery_status == DeliveryStatus.ENABLED,
                Member.bounce_score > 0,
                Member.last_bounce_at < cutoff,
            )
            .values(bounce_score=0.0)
            .execution_options(synchronize_session="fetch")
        )


# --- disabling, warning, removing ---------------------------------------------------------------


def _disable(ctx: Context, mlist: MailingList, member: Member, event: BounceEvent) -> None:
    roster.change_member(
        ctx.session,
        mlist,
        member,
        {
            "delivery_status": DeliveryStatus.DISABLED_BOUNCING,
            "bounce_warnings_sent": 0,
            "last_warning_at": ctx.now,
        },
        actor=ACTOR,
        channel="system",
        source=ctx.source,
        now=ctx.now,
    )
    _tell_member(ctx, mlist, member)
    _tell_owners(
        ctx,
        mlist,
        "disabled",
        member.address,
        score=member.bounce_score,
        status=event.status_code,
        diagnostic=event.diagnostic,
    )


def _tell_member(ctx: Context, mlist: MailingList, member: Member) -> None:
    """The disabled notice (warning 0) or a later warning, with a fresh re-enable token."""
    interval = timedelta(days=mlist.bounce_warning_interval_days)
    remaining = max(0, mlist.bounce_warnings - member.bounce_warnings_sent)
    removal_at = ctx.now + interval * (remaining + 1)
    token = new_token()
    ctx.session.add(
        PendingRequest(
            list_id=mlist.id,
            kind=RequestKind.BOUNCE_REENABLE,
            status=RequestStatus.PENDING,
            address=member.address,
            address_key=member.address_key,
            payload={"member_id": member.id, "warning": member.bounce_warnings_sent},
            token_hash=hash_token(token),
            created_at=ctx.now,
            expires_at=removal_at,
        )
    )
    confirm_address = mlist.address(f"-confirm+{token}")
    notices.send_notice(
        ctx,
        "bounce_disabled.txt.j2",
        member.address,
        mlist=mlist,
        reply_to=confirm_address,
        warning=member.bounce_warnings_sent,
        warnings=mlist.bounce_warnings,
        removal_date=f"{removal_at:%Y-%m-%d}",
        token=token,
        confirm_address=confirm_address,
        confirm_url=f"{ctx.settings.web.base_url}/confirm/{token}",
    )


def _tell_owners(ctx: Context, mlist: MailingList, event: str, address: str, **details: Any) -> int:
    owners = roster.members(ctx.session, mlist, Role.OWNER)
    for owner in owners:
        notices.send_notice(
            ctx,
            "bounce_owner_notice.txt.j2",
            owner.address,
            mlist=mlist,
            event=event,
            address=address,
            threshold=mlist.bounce_score_threshold,
            warnings=mlist.bounce_warnings,
            interval_days=mlist.bounce_warning_interval_days,
            **details,
        )
    return len(owners)


def send_warnings(target: Session | Context, now: datetime) -> int:
    """Warn members whose delivery bounces are disabled; remove them after the last warning.

    Returns how many members were warned or removed.
    """
    ctx = system_context(target, now)
    acted = 0
    lists: dict[int, MailingList | None] = {}
    disabled = ctx.session.scalars(
        select(Member)
        .where(
            Member.role == Role.MEMBER,
            Member.delivery_status == DeliveryStatus.DISABLED_BOUNCING,
        )
        .order_by(Member.id)
        .with_for_update(skip_locked=True)
    ).all()
    for member in disabled:
        mlist = _list(ctx, lists, member.list_id)
        if mlist is None:
            continue
        interval = timedelta(days=mlist.bounce_warning_interval_days)
        if member.last_warning_at is not None and now < member.last_warning_at + interval:
            continue
        acted += 1
        if member.bounce_warnings_sent >= mlist.bounce_warnings:
            _remove(ctx, mlist, member)
            continue
        member.bounce_warnings_sent += 1
        member.last_warning_at = now
        _tell_member(ctx, mlist, member)
    return acted


def _remove(ctx: Context, mlist: MailingList, member: Member) -> None:
    address, score, warned = member.address, member.bounce_score, member.bounce_warnings_sent
    last = member.last_bounce_at
    _cancel_requests(ctx, mlist, member.address_key, "the member was removed for bouncing")
    roster.remove_member(
        ctx.session,
        mlist,
        member,
        actor=ACTOR,
        channel="system",
        source=ctx.source,
        reason=(
            f"delivery disabled for bouncing (score {score:g}, last bounce "
            f"{last:%Y-%m-%d} UTC); {warned} warning(s) unanswered"
            if last is not None
            else f"delivery disabled for bouncing; {warned} warning(s) unanswered"
        ),
        now=ctx.now,
    )
    notices.send_notice(ctx, "bounce_removed.txt.j2", address, mlist=mlist)
    _tell_owners(ctx, mlist, "removed", address, score=score, status="", diagnostic="")


def _cancel_requests(ctx: Context, mlist: MailingList, address_key: str, reason: str) -> None:
    for request in ctx.session.scalars(
        select(PendingRequest).where(
            PendingRequest.list_id == mlist.id,
            PendingRequest.address_key == address_key,
            PendingRequest.kind.in_((RequestKind.BOUNCE_REENABLE, RequestKind.BOUNCE_PROBE)),
            PendingRequest.status == RequestStatus.PENDING,
        )
    ):
        _settle(ctx, request, RequestStatus.CANCELLED, reason)


def enable_delivery(
    ctx: Context, mlist: MailingList, member: Member, *, actor: str, auth: str = ""
) -> bool:
    """Turn delivery back on and forget the bounces; False if there was nothing to undo."""
    changed = roster.change_member(
        ctx.session,
        mlist,
        member,
        {
            "delivery_status": DeliveryStatus.ENABLED,
            "bounce_score": 0.0,
            "bounce_warnings_sent": 0,
            "last_warning_at": None,
        },
        actor=actor,
        channel=ctx.channel,
        auth=auth,
        source=ctx.source,
        now=ctx.now,
    )
    _cancel_requests(ctx, mlist, member.address_key, f"delivery re-enabled by {actor}")
    return bool(changed)


#: Statuses `enable_delivery` may lift: an owner's or a conduct measure is not the bounce stage's.
ENABLEABLE = frozenset({DeliveryStatus.ENABLED, DeliveryStatus.DISABLED_BOUNCING})


def confirm_reenable(
    ctx: Context, mlist: MailingList, request: PendingRequest, confirmer: str
) -> Outcome:
    """The member answered a disabled notice: delivery is on again (subscriptions.CONFIRMATIONS)."""
    member = roster.find_member(ctx.session, mlist, request.address)
    if member is None:
        return Outcome.refused(f"{request.address} is no longer a member of {mlist.display_name}.")
    if member.delivery_status not in ENABLEABLE:
        return Outcome.refused(
            f"Delivery to {member.address} was turned off by the list owners; "
            f"write to {mlist.address('-owner')}."
        )
    if member.delivery_status == DeliveryStatus.ENABLED:
        return Outcome.info(f"Delivery to {member.address} is already on.")
    # Settled first: enable_delivery cancels the member's other pending re-enable tokens.
    _settle(ctx, request, RequestStatus.DONE, "confirmed")
    request.resolved_by = confirmer or request.address
    enable_delivery(ctx, mlist, member, actor=request.address, auth="confirmed-reply")
    return Outcome.done(
        f"Delivery of {mlist.display_name} to {member.address} is on again.", notified=False
    )


# --- probes -------------------------------------------------------------------------------------


def _pending_probe(ctx: Context, mlist: MailingList, member: Member) -> PendingRequest | None:
    return ctx.session.scalar(
        select(PendingRequest).where(
            PendingRequest.list_id == mlist.id,
            PendingRequest.kind == RequestKind.BOUNCE_PROBE,
            PendingRequest.address_key == member.address_key,
            PendingRequest.status == RequestStatus.PENDING,
        )
    )


def _send_probe(ctx: Context, mlist: MailingList, member: Member) -> PendingRequest:
    """A message whose return path only this probe carries; only its bounce disables.

    It waits one warning interval for a bounce; if none comes the score is reset.
    """
    token = new_token()
    request = PendingRequest(
        list_id=mlist.id,
        kind=RequestKind.BOUNCE_PROBE,
        status=RequestStatus.PENDING,
        address=member.address,
        address_key=member.address_key,
        payload={"member_id": member.id, "score": member.bounce_score},
        token_hash=hash_token(token),
        created_at=ctx.now,
        expires_at=ctx.now + timedelta(days=mlist.bounce_warning_interval_days),
    )
    ctx.session.add(request)
    raw = notices.compose(ctx, "bounce_probe.txt.j2", member.address, mlist=mlist)
    job = outbox.enqueue(
        ctx.session,
        mail_from=mlist.address(f"-bounces+{PROBE_PREFIX}{token}"),
        recipients=[member.address],
        raw=raw,
        retry_for=timedelta(hours=ctx.settings.delivery.retry_for_hours),
        kind="probe",
        list_id=mlist.id,
        now=ctx.now,
    )
    request.payload = {**request.payload, "job_id": job.id}
    audit.record(
        ctx.session,
        "bounce-probe",
        channel="system",
        list_name=mlist.name,
        actor=ACTOR,
        target=member.address,
        source=ctx.source,
        outcome="pending",
        detail={"score": member.bounce_score, "request": request.id},
        at=ctx.now,
    )
    return request


def _settle_probes(ctx: Context, lists: dict[int, MailingList | None]) -> None:
    """Probes the relay refused become probe bounces; probes that never bounced reset the score."""
    unsettled = ctx.session.scalars(
        select(PendingRequest).where(
            PendingRequest.kind == RequestKind.BOUNCE_PROBE,
            PendingRequest.status.in_((RequestStatus.PENDING, RequestStatus.EXPIRED)),
            PendingRequest.resolved_by == "",
        )
    ).all()
    for request in unsettled:
        mlist = _list(ctx, lists, request.list_id)
        member = roster.find_member(ctx.session, mlist, request.address) if mlist else None
        if mlist is None or member is None:
            _settle(ctx, request, RequestStatus.CANCELLED, "the member left")
            continue
        refusal = _probe_refused(ctx, request)
        if refusal is not None:
            code, reply = refusal
            kind = classify_smtp_reply(code, reply) or BounceKind.TEMPORARY
            if kind == BounceKind.POLICY:
                _settle(ctx, request, RequestStatus.EXPIRED, f"probe refused by policy: {reply}")
                continue
            ctx.session.add(
                BounceEvent(
                    list_id=mlist.id,
                    member_id=member.id,
                    address=member.address,
                    address_key=member.address_key,
                    kind=str(kind),
                    source="probe",
                    status_code=str(code),
                    diagnostic=reply[:2000],
                    processed=False,
                    at=ctx.now,
                )
            )
            _settle(ctx, request, RequestStatus.DONE, f"probe refused by the relay: {code}")
        elif request.expires_at <= ctx.now:
            _settle(ctx, request, RequestStatus.EXPIRED, "probe did not bounce: score reset")
            if member.delivery_status == DeliveryStatus.ENABLED:
                member.bounce_score = 0.0


def _probe_refused(ctx: Context, request: PendingRequest) -> tuple[int, str] | None:
    """The relay's final refusal of the probe (5xx, or 4xx until it gave up), if any."""
    job_id = (request.payload or {}).get("job_id")
    if not isinstance(job_id, int):
        return None
    row = ctx.session.execute(
        select(OutboxRecipient.last_code, OutboxRecipient.last_reply).where(
            OutboxRecipient.job_id == job_id, OutboxRecipient.state == OutboxState.FAILED
        )
    ).first()
    if row is None or row[0] is None or row[0] < 400:
        return None
    return int(row[0]), str(row[1] or "")


# --- policy alerts ------------------------------------------------------------------------------


def policy_alert_threshold(receiving_members: int) -> int:
    """Distinct members whose policy refusals within a day make an alert."""
    share = math.ceil(POLICY_SHARE * receiving_members)
    return max(POLICY_MIN_MEMBERS, min(POLICY_MEMBERS, share))


def _policy_alert(ctx: Context, mlist: MailingList) -> bool:
    """One alert to the owners when many members refuse our mail on policy grounds."""
    since = ctx.now - POLICY_WINDOW
    rows = ctx.session.execute(
        select(BounceEvent.address_key, BounceEvent.status_code, BounceEvent.diagnostic)
        .where(
            BounceEvent.list_id == mlist.id,
            BounceEvent.kind == BounceKind.POLICY,
            BounceEvent.at > since,
        )
        .order_by(BounceEvent.at.desc(), BounceEvent.id.desc())
    ).all()
    refusing = {row[0] for row in rows}
    receiving = (
        ctx.session.scalar(
            select(func.count())
            .select_from(Member)
            .where(
                Member.list_id == mlist.id,
                Member.role == Role.MEMBER,
                Member.delivery_status == DeliveryStatus.ENABLED,
            )
        )
        or 0
    )
    needed = policy_alert_threshold(int(receiving))
    if len(refusing) < needed:
        return False
    already = ctx.session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.list_name == mlist.name,
            AuditEvent.action == "bounce-policy-alert",
            AuditEvent.at > since,
        )
    )
    if already:
        return False
    samples = _samples(rows)
    owners = roster.members(ctx.session, mlist, Role.OWNER)
    for owner in owners:
        notices.send_notice(
            ctx,
            "bounce_policy_alert.txt.j2",
            owner.address,
            mlist=mlist,
            members=len(refusing),
            window_hours=int(POLICY_WINDOW.total_seconds() // 3600),
            samples=samples,
        )
    audit.record(
        ctx.session,
        "bounce-policy-alert",
        channel="system",
        list_name=mlist.name,
        actor=ACTOR,
        target=mlist.posting_address,
        source=ctx.source,
        outcome="alerted",
        detail={"members": len(refusing), "needed": needed, "owners": len(owners)},
        at=ctx.now,
    )
    return True


def _samples(rows: Iterable[Any], limit: int = 5) -> list[dict[str, str]]:
    """A few distinct refusals, newest first, for the owners to see what went wrong."""
    seen: set[str] = set()
    samples: list[dict[str, str]] = []
    for key, status, diagnostic in rows:
        if key in seen:
            continue
        seen.add(key)
        samples.append({"address": key, "status": status or "", "diagnostic": diagnostic or ""})
        if len(samples) >= limit:
            break
    return samples
