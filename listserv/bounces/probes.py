# SPDX-License-Identifier: Apache-2.0
"""Bounce probes: before disabling, one message whose return path only it carries.

With a list's `bounce_probe` on, a member reaching the threshold is sent a
probe from `LIST-bounces+probe-TOKEN@`; only that probe's bounce (or the
relay refusing it) disables delivery, and a probe that never bounces within
one warning interval resets the score. The bounce processor's own actor and
the request-closing helper live here because every bounce module uses them.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from listserv import audit, notices, outbox, roster
from listserv.actors import system_actor
from listserv.bounces.events import BounceSource, record_bounce
from listserv.confirmations.pending import settle
from listserv.context import Context
from listserv.dsn import BounceKind, classify_smtp_reply
from listserv.models import (
    DeliveryStatus,
    MailingList,
    Member,
    OutboxRecipient,
    OutboxState,
    PendingRequest,
    RequestKind,
    RequestStatus,
)
from listserv.tokens import hash_token, new_token

#: Who the audit log and membership history name for what the bounce stage does.
ACTOR = "bounce-processor"
BOUNCE_PROCESSOR = system_actor(ACTOR)
#: `LIST-bounces+probe-TOKEN@`: the return path of one probe message.
PROBE_PREFIX = "probe-"


def settle_request(
    ctx: Context, request: PendingRequest, status: RequestStatus, reason: str
) -> None:
    """Close a probe or re-enable request in the bounce processor's name."""
    settle(request, status, ACTOR, ctx.now, reason)


def list_by_id(
    ctx: Context, cache: dict[int, MailingList | None], list_id: int | None
) -> MailingList | None:
    """The list of an event or request, looked up once per run."""
    if list_id is None:
        return None
    if list_id not in cache:
        cache[list_id] = ctx.session.get(MailingList, list_id)
    return cache[list_id]


def pending_probe(ctx: Context, mlist: MailingList, member: Member) -> PendingRequest | None:
    return ctx.session.scalar(
        select(PendingRequest).where(
            PendingRequest.list_id == mlist.id,
            PendingRequest.kind == RequestKind.BOUNCE_PROBE,
            PendingRequest.address_key == member.address_key,
            PendingRequest.status == RequestStatus.PENDING,
        )
    )


def send_probe(ctx: Context, mlist: MailingList, member: Member) -> PendingRequest:
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
    audit.record_act(
        ctx.session,
        BOUNCE_PROCESSOR,
        "bounce-probe",
        list_name=mlist.name,
        target=member.address,
        source=ctx.source,
        outcome="pending",
        detail={"score": member.bounce_score, "request": request.id},
        at=ctx.now,
    )
    return request


def settle_probes(ctx: Context, lists: dict[int, MailingList | None]) -> None:
    """Probes the relay refused become probe bounces; probes that never bounced reset the score."""
    unsettled = ctx.session.scalars(
        select(PendingRequest).where(
            PendingRequest.kind == RequestKind.BOUNCE_PROBE,
            PendingRequest.status.in_((RequestStatus.PENDING, RequestStatus.EXPIRED)),
            PendingRequest.resolved_by == "",
        )
    ).all()
    for request in unsettled:
        mlist = list_by_id(ctx, lists, request.list_id)
        member = roster.find_member(ctx.session, mlist, request.address) if mlist else None
        if mlist is None or member is None:
            settle_request(ctx, request, RequestStatus.CANCELLED, "the member left")
            continue
        refusal = _probe_refused(ctx, request)
        if refusal is not None:
            code, reply = refusal
            kind = classify_smtp_reply(code, reply) or BounceKind.TEMPORARY
            if kind == BounceKind.POLICY:
                settle_request(
                    ctx, request, RequestStatus.EXPIRED, f"probe refused by policy: {reply}"
                )
                continue
            record_bounce(
                ctx.session,
                list_id=mlist.id,
                member_id=member.id,
                address=member.address,
                address_key=member.address_key,
                kind=kind,
                source=BounceSource.PROBE,
                status=str(code),
                diagnostic=reply,
                at=ctx.now,
            )
            settle_request(ctx, request, RequestStatus.DONE, f"probe refused by the relay: {code}")
        elif request.expires_at <= ctx.now:
            settle_request(ctx, request, RequestStatus.EXPIRED, "probe did not bounce: score reset")
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
