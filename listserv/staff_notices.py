# SPDX-License-Identifier: Apache-2.0
"""Notices to owners and moderators about held posts and requests, coalesced per list.

A flood (300 posts from one non-member) must not become 300 mails to the
owner. The first thing held on a list in `limits.staff_notice_minutes` is
announced at once, in its own notice as before; whatever is held after it
within that window is marked due, and `send_due_notices` (a periodic job)
sends one summary per list when the window has passed, listing everything
that arrived since, each item with its own reply-to-decide address.

An item's token is mailed only once: a due item's token was never sent, so
the summary replaces it with a fresh one. Replacing it is a conditional
UPDATE on the old hash, which is also the claim: two hosts running the job
at once cannot both announce an item.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from listserv import notices, ratelimit, roster
from listserv.confirmations.pending import confirm_address
from listserv.context import Context
from listserv.models import (
    MailingList,
    PendingRequest,
    Post,
    PostStatus,
    RequestKind,
    RequestStatus,
    Role,
)
from listserv.tokens import hash_token, new_token

#: What staff are told about (a held post; a request outside the rule after confirmation).
STAFF_KINDS = (RequestKind.MODERATE_POST, RequestKind.MODERATE_REQUEST)
#: Who may decide each kind.
DECIDERS = {
    RequestKind.MODERATE_POST: (Role.OWNER, Role.MODERATOR),
    RequestKind.MODERATE_REQUEST: (Role.OWNER,),
}
#: Items listed in one summary; the rest wait for the next one.
SUMMARY_LIMIT = 200


def _key(mlist: MailingList) -> str:
    return f"staff-notice:{mlist.id}"


def _window(ctx: Context) -> timedelta:
    return timedelta(minutes=ctx.settings.limits.staff_notice_minutes)


def announce(
    ctx: Context, mlist: MailingList, request: PendingRequest, send: Callable[[], None]
) -> bool:
    """Call `send` (the item's own notice) if the list's window is open; else mark it due."""
    window = _window(ctx)
    if not window or ratelimit.allow(ctx.session, _key(mlist), 1, window, ctx.now):
        send()
        return True
    request.payload = {**(request.payload or {}), "notice": "due"}
    return False


def deciders(ctx: Context, mlist: MailingList, kind: str) -> list[str]:
    """The addresses told about an item of `kind`, once each; the postmaster if none."""
    seen: dict[str, str] = {}
    for role in DECIDERS.get(RequestKind(kind), (Role.OWNER,)):
        for member in roster.members(ctx.session, mlist, role):
            seen.setdefault(member.address_key, member.address)
    return list(seen.values()) or [ctx.settings.site.postmaster]


def _describe(ctx: Context, request: PendingRequest) -> dict[str, Any] | None:
    """What the summary says about one item, or None if it needs no decision any more."""
    payload = request.payload or {}
    if request.kind == RequestKind.MODERATE_POST:
        post = ctx.session.get(Post, payload.get("post_id", 0))
        if post is None or post.status != PostStatus.HELD:
            return None
        return {
            "kind": "post",
            "ref": post.id,
            "sender": post.sender,
            "subject": post.subject,
            "reasons": (post.reason or "").splitlines(),
        }
    asked = ctx.session.get(PendingRequest, payload.get("request_id", 0))
    if asked is None or asked.status != RequestStatus.AWAITING_APPROVAL:
        return None
    return {
        "kind": "request",
        "ref": asked.id,
        "sender": asked.address,
        "subject": "",
        "reasons": [],
    }


def _claim(ctx: Context, request: PendingRequest) -> str | None:
    """A fresh token for a due item, if this process is the one to announce it."""
    token = new_token()
    payload = {k: v for k, v in (request.payload or {}).items() if k != "notice"}
    result = ctx.session.execute(
        update(PendingRequest)
        .where(PendingRequest.id == request.id, PendingRequest.token_hash == request.token_hash)
        .values(token_hash=hash_token(token), payload=payload)
        .execution_options(synchronize_session=False)
    )
    return token if int(getattr(result, "rowcount", 0) or 0) == 1 else None


def send_due_notices(ctx: Context) -> int:
    """One summary per list whose window has passed, of the items held since; items sent."""
    open_items = ctx.session.scalars(
        select(PendingRequest)
        .where(
            PendingRequest.kind.in_(STAFF_KINDS),
            PendingRequest.status == RequestStatus.PENDING,
            PendingRequest.expires_at > ctx.now,
        )
        .order_by(PendingRequest.list_id, PendingRequest.id)
    ).all()
    due: dict[int, list[PendingRequest]] = {}
    for request in open_items:
        if (request.payload or {}).get("notice") == "due" and request.list_id is not None:
            due.setdefault(request.list_id, []).append(request)
    sent = 0
    for list_id, requests in due.items():
        mlist = ctx.session.get(MailingList, list_id)
        window = _window(ctx)
        if mlist is None or (window and ratelimit.count(ctx.session, _key(mlist), window, ctx.now)):
            continue
        items = []
        for request in requests[:SUMMARY_LIMIT]:
            described = _describe(ctx, request)
            token = _claim(ctx, request) if described is not None else None
            if described is not None and token is not None:
                address = confirm_address(mlist, token)
                items.append({**described, "address": address, "request_kind": request.kind})
        if not items:
            continue
        ratelimit.allow(ctx.session, _key(mlist), 1, window or timedelta(seconds=1), ctx.now)
        _mail_summary(ctx, mlist, items)
        sent += len(items)
    return sent


def _mail_summary(ctx: Context, mlist: MailingList, items: list[dict[str, Any]]) -> None:
    """One notice per decider, naming the items that decider may decide."""
    recipients: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        for address in deciders(ctx, mlist, item["request_kind"]):
            recipients.setdefault(address, []).append(item)
    for address, theirs in recipients.items():
        notices.send_notice(
            ctx,
            "staff_summary.txt.j2",
            address,
            mlist=mlist,
            items=theirs,
            posts=sum(1 for i in theirs if i["kind"] == "post"),
            requests=sum(1 for i in theirs if i["kind"] == "request"),
            minutes=ctx.settings.limits.staff_notice_minutes,
        )
