# SPDX-License-Identifier: Apache-2.0
"""APPROVE, REJECT, DISCARD by email: a held post (`12`) or a subscription request (`R7`).

Ids are numbered as the notices that announce them print them. An id that
does not exist and one the sender may not decide get the same answer, so
the commands reveal nothing about other lists' queues.
"""

from __future__ import annotations

import re

from listserv.acts import held, requests
from listserv.acts.errors import ActError
from listserv.commands.proof import authorize, hidden, not_staff, staff_row
from listserv.commands.request import CommandRequest
from listserv.commands.targets import site_line, target, usage_error
from listserv.models import MailingList, PendingRequest, Post, RequestKind
from listserv.outcomes import Outcome

_POST_ID = re.compile(r"^#?(\d{1,12})$")
_REQUEST_ID = re.compile(r"^r#?(\d{1,12})$", re.IGNORECASE)


def _item(request: CommandRequest, ident: str) -> Post | PendingRequest | None:
    session = request.ctx.session
    post_id = _POST_ID.match(ident)
    if post_id:
        return session.get(Post, int(post_id.group(1)))
    request_id = _REQUEST_ID.match(ident)
    if request_id:
        found = session.get(PendingRequest, int(request_id.group(1)))
        if found is not None and found.kind == RequestKind.SUBSCRIBE:
            return found
    return None


def _is_id(word: str) -> bool:
    return bool(_POST_ID.match(word) or _REQUEST_ID.match(word))


def _nothing_to_decide(word: str, ident: str) -> Outcome:
    """One answer for an id that does not exist and one the sender may not see."""
    return Outcome.refused(
        f"{word.upper()} {ident}: there is no such held post or request here, "
        "or you may not decide it."
    )


def _decision(request: CommandRequest, args: list[str], word: str) -> Outcome:
    """APPROVE|REJECT|DISCARD [list] id [reason]: a held post (12) or a request (R7)."""
    usage = f"{word.upper()} list id [reason]   (post 12, subscription request R7)"
    mlist: MailingList | None = None
    rest = args
    if request.site and args and not _is_id(args[0]):
        found = target(request, args, word, usage)
        if isinstance(found, Outcome):
            return found
        mlist, rest = found
    elif not request.site:
        mlist = request.mlist
    if not rest or not _is_id(rest[0]):
        return usage_error(usage)
    ident, reason = rest[0].upper(), " ".join(rest[1:])
    item = _item(request, ident)
    if item is None or item.list_id is None or (mlist is not None and item.list_id != mlist.id):
        return _nothing_to_decide(word, ident)
    session = request.ctx.session
    mlist = session.get(MailingList, item.list_id)
    if mlist is None or hidden(request, mlist):
        return _nothing_to_decide(word, ident)
    creds = request.credentials
    if (
        creds.password is None
        and creds.confirmed is None
        and staff_row(session, mlist, request.sender) is None
    ):
        not_staff(request, mlist, word)  # audited; the answer stays the neutral one
        return _nothing_to_decide(word, ident)
    grant = authorize(request, mlist, word, site_line(word, mlist, rest))
    if isinstance(grant, Outcome):
        return grant
    ctx, actor = request.ctx, grant.actor
    try:
        if isinstance(item, Post):
            ruling = held.Ruling(word)
            return Outcome.done(
                held.decide_post(ctx, actor, mlist, item.id, ruling, reason=reason).text
            )
        # The welcome or refusal went to the requester; the owner is still owed the result.
        decided = requests.decide_request(
            ctx, actor, mlist, item.id, held.Ruling(word), reason=reason
        )
        return Outcome.done(decided.text)
    except ActError as exc:
        return Outcome.refused(exc.message)


def approve(request: CommandRequest, args: list[str]) -> Outcome:
    return _decision(request, args, "approve")


def reject(request: CommandRequest, args: list[str]) -> Outcome:
    return _decision(request, args, "reject")


def discard(request: CommandRequest, args: list[str]) -> Outcome:
    return _decision(request, args, "discard")
