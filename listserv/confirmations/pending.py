# SPDX-License-Identifier: Apache-2.0
"""Pending requests: a random token mailed out, its hash kept, until it comes back.

Every confirmation the service sends — joining, leaving, a delivery option,
an owner's commands, a held post's notice, an approval request, a bounce
re-enable — is one `PendingRequest` made here, so tokens are made, hashed,
given an expiry and turned into the confirm address and link one way.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from listserv import roster
from listserv.context import Context
from listserv.models import MailingList, PendingRequest, RequestKind, RequestStatus
from listserv.tokens import hash_token, new_token

#: How long a confirmation about no one list (a change of address) works.
SITE_EXPIRY = timedelta(hours=72)


def new_request(
    ctx: Context,
    mlist: MailingList | None,
    kind: RequestKind,
    address: str,
    payload: dict[str, Any],
    *,
    expires_at: datetime | None = None,
) -> tuple[int, str]:
    """A pending request's id and its token (the token itself is never stored).

    `mlist` is None for a request about the person on every list (a change
    of address); it then expires after `SITE_EXPIRY`. One Core insert: every
    join request makes one, and an ORM object flushed for it cost the join a
    fifth of its processing. A caller that goes on to change the request
    loads it (`session.get`).
    """
    token = new_token()
    expiry = timedelta(hours=mlist.confirm_expiry_hours) if mlist is not None else SITE_EXPIRY
    values = {
        "list_id": mlist.id if mlist is not None else None,
        "kind": kind,
        "status": RequestStatus.PENDING,
        "address": address,
        "address_key": roster.address_key(address) if address else "",
        "payload": payload,
        "token_hash": hash_token(token),
        "created_at": ctx.now,
        "expires_at": expires_at or ctx.now + expiry,
        "resolved_at": None,
        "resolved_by": "",
        "reason": "",
    }
    request_id: int = ctx.session.connection().execute(_INSERT, values).scalar_one()
    return request_id, token


_REQUESTS = cast(Table, PendingRequest.__table__)
_INSERT = insert(_REQUESTS).returning(_REQUESTS.c.id)


def find_request(session: Session, token: str) -> PendingRequest | None:
    return session.scalar(
        select(PendingRequest).where(PendingRequest.token_hash == hash_token(token))
    )


def confirm_address(mlist: MailingList, token: str) -> str:
    """`LIST-confirm+TOKEN@domain`: where a reply confirms."""
    return mlist.address(f"-confirm+{token}")


def confirm_links(ctx: Context, mlist: MailingList, token: str) -> dict[str, str]:
    """What a confirmation mail's template says about its token."""
    return {
        "token": token,
        "confirm_address": confirm_address(mlist, token),
        "confirm_url": f"{ctx.settings.web.base_url}/confirm/{token}",
        "expiry_hours": str(mlist.confirm_expiry_hours),
    }


def settle(
    request: PendingRequest, status: RequestStatus, by: str, at: datetime, reason: str = ""
) -> None:
    """Close a request: its token never works again."""
    request.status = status
    request.resolved_at = at
    request.resolved_by = by[:320]
    if reason:
        request.reason = reason
