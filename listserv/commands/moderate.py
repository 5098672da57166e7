# SPDX-License-Identifier: Apache-2.0
"""Moderating by reply: answering a held-post or subscription-approval notice.

Those notices go only to the list's moderators and owners, with Reply-To
`LIST-confirm+TOKEN@`; holding the token is the proof (auth
`confirmed-reply`, actor the reply's From). The reply says what to do in its
first line, or failing that its Subject: `approve`, `reject <reason>` or
`discard` (a few synonyms too). A bare reply or "confirm" decides nothing —
approving by accident is worse than asking again — so it is answered with
the words to use, and the token stays good for the real decision.

The first decision wins: the post or request is decided by its act
(`acts/held.py`, `acts/requests.py`), and a moderator who replies later is
told who handled it. Input is the request a token names and the reply's
first line and Subject; output is the act's result as a reply line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.message import EmailMessage

from listserv.actors import Actor, Auth, Scope
from listserv.acts import held, requests
from listserv.acts.errors import ActError
from listserv.confirmations.pending import settle
from listserv.context import Context
from listserv.message import header_text
from listserv.models import (
    Channel,
    MailingList,
    PendingRequest,
    Post,
    PostStatus,
    RequestKind,
    RequestStatus,
    Role,
)
from listserv.outcomes import Outcome
from listserv.tokens import TOKEN_RE

#: First word of the reply → the decision.
ACTIONS: dict[str, str] = {
    "approve": "approve",
    "approved": "approve",
    "accept": "approve",
    "reject": "reject",
    "rejected": "reject",
    "deny": "reject",
    "discard": "discard",
    "discarded": "discard",
}

REPLY_PREFIX = re.compile(r"^(?:\s*(?:re|fwd?|aw|sv|wg|tr)\s*(?:\[\d*\])?\s*:\s*)+", re.I)


def decision_texts(msg: EmailMessage, body_lines: Sequence[str]) -> list[str]:
    """Where a decision may be written: the first line of the reply, then its Subject.

    The body comes first because a reply's Subject is usually the notice's own
    with "Re:" in front; a quoted line (">") or signature is never read.
    """
    texts: list[str] = []
    for raw in body_lines:
        line = raw.strip()
        if not line:
            continue
        if not line.startswith((">", "--")):
            texts.append(line)
        break
    subject = REPLY_PREFIX.sub("", header_text(msg, "Subject")).strip()
    if subject:
        texts.append(subject)
    return texts


def parse_decision(texts: Sequence[str]) -> tuple[str, str] | None:
    """(approve|reject|discard, reason) from the first text that starts with one, else None."""
    for text in texts:
        cleaned = TOKEN_RE.sub(" ", text.lower()).split()
        if not cleaned:
            continue
        action = ACTIONS.get(cleaned[0].strip(".,!:;-"))
        if action is None:
            continue
        # The reason keeps the writer's case; tokens and leading punctuation go.
        words = TOKEN_RE.sub(" ", text).split()[1:]
        reason = " ".join(words).lstrip(":;,.- ").strip() if action == "reject" else ""
        return action, reason[:500]
    return None


def _ask_again(what: str) -> Outcome:
    return Outcome.error(
        f"Your reply did not say what to do with {what}, so nothing was done. Reply to the "
        "notice again with one of these as the first line: APPROVE, REJECT followed by the "
        "reason (the sender is told), or DISCARD (nobody is told)."
    )


def _unusable(ctx: Context, request: PendingRequest, what: str, command: str) -> Outcome | None:
    """Why a notice's token can no longer decide (expired, or answered), else None."""
    if request.status == RequestStatus.PENDING and request.expires_at > ctx.now:
        return None
    if request.status in (RequestStatus.PENDING, RequestStatus.EXPIRED):
        if request.status == RequestStatus.PENDING:
            request.status = RequestStatus.EXPIRED
            request.resolved_at = ctx.now
        return Outcome.refused(
            f"The notice about {what} has expired. Decide it with {command} (see HELP), "
            "or on the list host."
        )
    by = f" by {request.resolved_by}" if request.resolved_by else ""
    return Outcome.refused(f"The notice about {what} was already answered{by}.")


def _moderator(mlist: MailingList, confirmer: str, channel: Channel) -> Actor:
    """Whoever replied to the notice: the token, mailed only to the list's moderators and
    owners, is their authority on this list (a moderator's, whatever the From says)."""
    return Actor(
        confirmer or "token holder",
        channel,
        Auth.CONFIRMED_REPLY,
        scope=Scope(Role.MODERATOR, frozenset({mlist.name})),
    )


def decide_by_reply(
    ctx: Context, actor: Actor, request: PendingRequest, texts: Sequence[str]
) -> Outcome:
    """The decision a reply to a notice asks for, on the post or request its token names."""
    mlist = ctx.session.get(MailingList, request.list_id) if request.list_id else None
    if request.kind == RequestKind.MODERATE_POST:
        return _decide_post(ctx, actor, mlist, request, texts)
    return _decide_request(ctx, actor, mlist, request, texts)


def _decide_post(
    ctx: Context,
    actor: Actor,
    mlist: MailingList | None,
    request: PendingRequest,
    texts: Sequence[str],
) -> Outcome:
    post_id = (request.payload or {}).get("post_id")
    post = ctx.session.get(Post, post_id) if isinstance(post_id, int) else None
    if post is None or mlist is None:
        return Outcome.refused("That held post is no longer on record.")
    if post.status != PostStatus.HELD:
        by = post.decided_by or request.resolved_by or "another moderator"
        return Outcome.refused(f"Post {post.id} was already handled by {by}.")
    unusable = _unusable(ctx, request, f"post {post.id}", f"APPROVE {mlist.name.upper()} {post.id}")
    if unusable is not None:
        return unusable
    decision = parse_decision(texts)
    if decision is None:
        return _ask_again(f"post {post.id}")
    action, reason = decision
    moderator = _moderator(mlist, actor.address, actor.channel)
    try:
        decided = held.decide_post(
            ctx, moderator, mlist, post.id, held.Ruling(action), reason=reason
        )
        return Outcome.done(decided.text)
    except ActError as exc:
        return Outcome.refused(exc.message)


def _decide_request(
    ctx: Context,
    actor: Actor,
    mlist: MailingList | None,
    request: PendingRequest,
    texts: Sequence[str],
) -> Outcome:
    request_id = (request.payload or {}).get("request_id")
    pending = ctx.session.get(PendingRequest, request_id) if isinstance(request_id, int) else None
    if pending is None or mlist is None or pending.kind != RequestKind.SUBSCRIBE:
        return Outcome.refused("That subscription request is no longer on record.")
    if pending.status != RequestStatus.AWAITING_APPROVAL:
        settle(request, RequestStatus.DONE, pending.resolved_by or actor.address, ctx.now)
        by = pending.resolved_by or "another owner"
        return Outcome.refused(f"Request R{pending.id} was already handled by {by}.")
    unusable = _unusable(
        ctx, request, f"request R{pending.id}", f"APPROVE {mlist.name.upper()} R{pending.id}"
    )
    if unusable is not None:
        return unusable
    decision = parse_decision(texts)
    if decision is None:
        return _ask_again(f"the request from {pending.address}")
    action, reason = decision
    moderator = _moderator(mlist, actor.address, actor.channel)
    # The welcome or refusal went to the requester; the owner who replied hears too.
    try:
        ruling = held.Ruling(action)
        decided = requests.decide_request(ctx, moderator, mlist, pending.id, ruling, reason=reason)
        return Outcome.done(decided.text)
    except ActError as exc:
        return Outcome.refused(exc.message)
