# SPDX-License-Identifier: Apache-2.0
"""Everything the service holds about one person, as one JSON-ready document.

Input is the address key a sign-in proved; output is a plain dict: the
person's roster rows on every list (any role), their membership history
under every address they have had (followed back through changes of
address), their requests, the audit records by or about them, bounces, the
posts they sent (ids, subjects, dates; not the bodies, which the archive
shows), and their web sessions. Secrets are left out on purpose: token and
session hashes, TOTP secrets, passwords and unsubscribe nonces are things a
stolen download must not carry. Reading only; the account page offers it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from listserv.models import (
    AuditEvent,
    BounceEvent,
    MailingList,
    Member,
    MembershipChange,
    MembershipEvent,
    PendingRequest,
    Post,
    RecoveryCode,
    SignInLink,
    TotpSecret,
    WebSession,
)


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


#: Each address key of the person, and until when it was theirs (None: it still is).
Spans = dict[str, datetime | None]


def all_keys(session: Session, key: str) -> Spans:
    """The person's key and every key they changed from, each until the moment they left it.

    An old address may later belong to someone else (a mailbox reassigned),
    so what was held under it afterwards is not this person's.
    """
    spans: Spans = {key: None}
    todo = [key]
    while todo:
        current = todo.pop()
        moves = session.execute(
            select(MembershipEvent.previous_address_key, func.max(MembershipEvent.at))
            .where(
                MembershipEvent.event == MembershipChange.ADDRESS,
                MembershipEvent.address_key == current,
                MembershipEvent.previous_address_key != "",
            )
            .group_by(MembershipEvent.previous_address_key)
        ).all()
        for older, until in moves:
            if older not in spans:
                spans[older] = until
                todo.append(older)
    return spans


def _whose(key_column: Any, at_column: Any, spans: Spans) -> ColumnElement[bool]:
    """Rows under one of the keys, dated while that key was the person's."""
    return or_(
        *(
            key_column == key if until is None else and_(key_column == key, at_column <= until)
            for key, until in spans.items()
        )
    )


def _list_names(session: Session) -> dict[int, str]:
    return {
        list_id: name for list_id, name in session.execute(select(MailingList.id, MailingList.name))
    }


def _memberships(session: Session, key: str, names: dict[int, str]) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Member).where(Member.address_key == key).order_by(Member.list_id, Member.role)
    )
    return [
        {
            "list": names.get(m.list_id, ""),
            "address": m.address,
            "role": m.role.value,
            "name": m.display_name,
            "title": m.job_title,
            "delivery": m.delivery_mode.value,
            "digest_format": m.digest_format,
            "delivery_status": m.delivery_status.value,
            "moderated": m.moderated,
            "moderated_until": _when(m.moderated_until),
            "suspended_until": _when(m.suspended_until),
            "conduct_note": m.conduct_note,
            "bounce_score": m.bounce_score,
            "last_bounce_at": _when(m.last_bounce_at),
            "joined_at": _when(m.joined_at),
        }
        for m in rows
    ]


def _history(session: Session, spans: Spans, names: dict[int, str]) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(MembershipEvent)
        .where(_whose(MembershipEvent.address_key, MembershipEvent.at, spans))
        .order_by(MembershipEvent.at, MembershipEvent.id)
    )
    return [
        {
            "at": _when(e.at),
            "list": names.get(e.list_id, ""),
            "event": e.event.value,
            "address": e.address,
            "previous_address": e.previous_address_key,
            "role": e.role.value,
            "delivery": e.delivery_mode.value,
            "delivery_status": e.delivery_status.value,
            "actor": e.actor,
            "channel": e.channel,
        }
        for e in rows
    ]


def _requests(session: Session, spans: Spans, names: dict[int, str]) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(PendingRequest)
        .where(_whose(PendingRequest.address_key, PendingRequest.created_at, spans))
        .order_by(PendingRequest.created_at, PendingRequest.id)
    )
    return [
        {
            "id": r.id,
            "list": names.get(r.list_id, "") if r.list_id else "",
            "kind": r.kind.value,
            "status": r.status.value,
            "address": r.address,
            "created_at": _when(r.created_at),
            "expires_at": _when(r.expires_at),
            "resolved_at": _when(r.resolved_at),
            "resolved_by": r.resolved_by,
            "reason": r.reason,
        }
        for r in rows
    ]


def _audit(session: Session, spans: Spans) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(AuditEvent)
        .where(
            or_(
                _whose(func.lower(AuditEvent.target), AuditEvent.at, spans),
                _whose(func.lower(AuditEvent.actor), AuditEvent.at, spans),
            )
        )
        .order_by(AuditEvent.at, AuditEvent.id)
    )
    return [
        {
            "at": _when(a.at),
            "list": a.list_name,
            "action": a.action,
            "actor": a.actor,
            "target": a.target,
            "channel": a.channel.value,
            "auth": a.auth,
            "outcome": a.outcome,
            "detail": a.detail or {},
        }
        for a in rows
    ]


def _bounces(session: Session, spans: Spans, names: dict[int, str]) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(BounceEvent)
        .where(_whose(BounceEvent.address_key, BounceEvent.at, spans))
        .order_by(BounceEvent.at, BounceEvent.id)
    )
    return [
        {
            "at": _when(b.at),
            "list": names.get(b.list_id, "") if b.list_id else "",
            "address": b.address,
            "kind": b.kind,
            "source": b.source,
            "status_code": b.status_code,
            "diagnostic": b.diagnostic,
        }
        for b in rows
    ]


def _posts(session: Session, spans: Spans, names: dict[int, str]) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Post.id, Post.list_id, Post.subject, Post.date, Post.received_at, Post.status)
        .where(_whose(func.lower(Post.sender), Post.received_at, spans))
        .order_by(Post.received_at, Post.id)
    ).all()
    return [
        {
            "id": post_id,
            "list": names.get(list_id, ""),
            "subject": subject,
            "date": _when(date),
            "received_at": _when(received),
            "status": str(status),
        }
        for post_id, list_id, subject, date, received, status in rows
    ]


def _sign_in(session: Session, spans: Spans, key: str) -> dict[str, Any]:
    sessions = session.scalars(
        select(WebSession)
        .where(_whose(WebSession.address_key, WebSession.created_at, spans))
        .order_by(WebSession.created_at)
    )
    links = session.scalars(
        select(SignInLink)
        .where(_whose(SignInLink.address_key, SignInLink.created_at, spans))
        .order_by(SignInLink.created_at)
    )
    # The second factor belongs to the address signing in now.
    totp = session.scalar(select(TotpSecret).where(TotpSecret.address_key == key))
    unused_codes = session.scalar(
        select(func.count()).where(RecoveryCode.address_key == key, RecoveryCode.used_at.is_(None))
    )
    return {
        "sessions": [
            {
                "address": s.address,
                "auth": s.auth,
                "created_at": _when(s.created_at),
                "last_seen_at": _when(s.last_seen_at),
                "expires_at": _when(s.expires_at),
                "ended_at": _when(s.ended_at),
            }
            for s in sessions
        ],
        "links": [
            {
                "created_at": _when(link.created_at),
                "expires_at": _when(link.expires_at),
                "used_at": _when(link.used_at),
            }
            for link in links
        ],
        "second_factor": {
            "totp_enrolled": totp is not None and totp.confirmed_at is not None,
            "recovery_codes_left": int(unused_codes or 0),
        },
    }


def personal_data(session: Session, key: str, now: datetime) -> dict[str, Any]:
    """The whole document for the person whose address key is `key`."""
    spans = all_keys(session, key)
    names = _list_names(session)
    return {
        "address": key,
        "previous_addresses": [
            {"address": old, "until": _when(until)} for old, until in spans.items() if old != key
        ],
        "generated_at": _when(now),
        "memberships": _memberships(session, key, names),
        "history": _history(session, spans, names),
        "requests": _requests(session, spans, names),
        "audit": _audit(session, spans),
        "bounces": _bounces(session, spans, names),
        "posts": _posts(session, spans, names),
        "sign_in": _sign_in(session, spans, key),
    }
