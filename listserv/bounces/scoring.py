# SPDX-License-Identifier: Apache-2.0
"""Scoring: bounce events become member scores, and scores disable delivery.

An event is scored as it is recorded (`score_events`): a DSN in the transaction
that processes it, within a second of its 250, and a relay's refusal in the one
that settles the delivery, as Mailman and Sympa do. The periodic job keeps the
steps that depend on time passing — probes that never bounced, stale scores,
warnings and removal — and scores any event still unprocessed (one written by a
worker that does not score).

A permanent bounce adds 1, a temporary one `bounce_temporary_score`, at most
once a calendar day (UTC); a score with no bounce for
`bounce_stale_after_days` goes back to 0. At `bounce_score_threshold` delivery
is disabled (never removal first) and the member and the owners are told;
with `bounce_probe` a probe must bounce first. Policy rejections (DMARC, spam,
5.7.x) never score: they are our mail's fault, so many of them alert the
owners instead (`policy.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from listserv import roster
from listserv.bounces.policy import policy_alert
from listserv.bounces.probes import (
    BOUNCE_PROCESSOR,
    list_by_id,
    pending_probe,
    send_probe,
    settle_probes,
)
from listserv.bounces.warnings import bounce_context, send_warnings, tell_member, tell_owners
from listserv.context import Context
from listserv.dsn import BounceKind
from listserv.models import BounceEvent, DeliveryStatus, MailingList, Member, Role

#: Events scored per transaction-sized batch (one flush each).
_BATCH = 500


def housekeeping(ctx: Context) -> int:
    """The periodic job: the time-based steps of scoring, then warn or remove disabled members."""
    ctx = bounce_context(ctx)
    return score_bounces(ctx) + send_warnings(ctx)


def score_events(ctx: Context, events: Sequence[BounceEvent]) -> int:
    """Score events just recorded in this session, in its transaction; how many were scored."""
    ctx = bounce_context(ctx)
    lists: dict[int, MailingList | None] = {}
    policy_lists: set[int] = set()
    waiting = [e for e in events if not e.processed]
    ctx.session.flush()
    _process(ctx, waiting, lists, policy_lists)
    _alert(ctx, lists, policy_lists)
    return len(waiting)


def score_bounces(ctx: Context, now: datetime | None = None) -> int:
    """Settle expired probes, score any event still unprocessed, reset stale scores.

    Returns how many events were scored here (events scored on arrival are not).
    """
    ctx = bounce_context(ctx, now)
    lists: dict[int, MailingList | None] = {}
    settle_probes(ctx, lists)
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
        _process(ctx, events, lists, policy_lists)
        processed += len(events)
    _alert(ctx, lists, policy_lists)
    _reset_stale(ctx)
    return processed


def _process(
    ctx: Context,
    events: Sequence[BounceEvent],
    lists: dict[int, MailingList | None],
    policy_lists: set[int],
) -> None:
    """Mark `events` processed and score each against its member; one flush for all."""
    if not events:
        return
    members = _members_of(ctx, events)
    with ctx.session.no_autoflush:  # one flush per batch, not one per event
        for event in events:
            event.processed = True
            mlist = list_by_id(ctx, lists, event.list_id)
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


def _alert(ctx: Context, lists: dict[int, MailingList | None], policy_lists: set[int]) -> None:
    for list_id in sorted(policy_lists):
        mlist = lists.get(list_id)
        if mlist is not None:
            policy_alert(ctx, mlist)


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
        elif pending_probe(ctx, mlist, member) is None:
            send_probe(ctx, mlist, member)


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
        actor=BOUNCE_PROCESSOR,
        source=ctx.source,
        now=ctx.now,
    )
    tell_member(ctx, mlist, member)
    tell_owners(
        ctx,
        mlist,
        "disabled",
        member.address,
        score=member.bounce_score,
        status=event.status_code,
        diagnostic=event.diagnostic,
    )
