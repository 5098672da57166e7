# SPDX-License-Identifier: Apache-2.0
"""The moderation queue: held posts newest first, one post shown safely, decisions.

Deciding calls `acts.held` (approve, reject with a reason, discard) and, for
"Ban sender", `acts.bans.ban` then `discard_post`. Several posts may be
decided at once from the queue; each is its own savepoint, so a post another
moderator handled meanwhile is reported and the others still go through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

from listserv.actors import Actor
from listserv.acts import bans, held
from listserv.acts.errors import ActError
from listserv.acts.held import Ruling
from listserv.context import Context
from listserv.models import MailingList, Post, PostStatus
from listserv.web.console.access import ListAccess, list_page
from listserv.web.console.message_view import view
from listserv.web.pages import Page
from listserv.web.signin.visitor import Visitor

PAGE_SIZE = 50


@dataclass(frozen=True)
class Paging:
    page: int
    pages: int
    total: int

    @property
    def previous(self) -> int | None:
        return self.page - 1 if self.page > 1 else None

    @property
    def next(self) -> int | None:
        return self.page + 1 if self.page < self.pages else None


def paging(total: int, page: int, size: int = PAGE_SIZE) -> Paging:
    pages = max(1, -(-total // size))
    return Paging(min(max(page, 1), pages), pages, total)


def page_asked(params: dict[str, str]) -> int:
    """The `page` of a filtered query, 1 when it is not a short number; `paging` clamps it."""
    page = params.get("page", "1")
    return int(page) if page.isdigit() and len(page) < 7 else 1


def filter_query(filters: dict[str, str]) -> str:
    """The filters that are set, as the query-string prefix every paging link carries."""
    pairs = {k: v for k, v in filters.items() if v}
    return urlencode(pairs) + "&" if pairs else ""


def queue_page(
    session: Session,
    visitor: Visitor,
    found: ListAccess,
    page: int,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Page:
    mlist = found.mlist
    where = (Post.list_id == mlist.id, Post.status == PostStatus.HELD)
    total = session.scalar(select(func.count()).where(*where)) or 0
    paged = paging(total, page)
    posts = session.scalars(
        select(Post)
        .options(defer(Post.raw))
        .where(*where)
        .order_by(Post.id.desc())
        .limit(PAGE_SIZE)
        .offset((paged.page - 1) * PAGE_SIZE)
    ).all()
    return list_page(
        "web/held.html",
        visitor,
        found,
        "Held posts",
        status=status,
        notice=notice,
        errors=errors,
        posts=posts,
        paging=paged,
        query="",
    )


def post_page(
    session: Session,
    visitor: Visitor,
    found: ListAccess,
    post: Post,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Page:
    return list_page(
        "web/held_post.html",
        visitor,
        found,
        f"Post {post.id}",
        status=status,
        notice=notice,
        errors=errors,
        post=post,
        view=view(post.raw),
    )


def find_post(session: Session, mlist: MailingList, post_id: int) -> Post | None:
    post = session.get(Post, post_id)
    return post if post is not None and post.list_id == mlist.id else None


ACTIONS = {"approve", "reject", "discard", "ban"}


def decide_one(
    ctx: Context, actor: Actor, mlist: MailingList, post_id: int, action: str, reason: str
) -> str:
    """One decision by the acts; the sentence that reports it."""
    if action == "ban":
        post = held.find_post(ctx, mlist, post_id)
        bans.ban(ctx, actor, mlist, post.sender, reason=reason or f"post {post_id}")
        decision = held.discard_post(ctx, actor, mlist, post_id)
        return f"{post.sender} is banned from {mlist.display_name}; {decision.text}"
    return held.decide_post(ctx, actor, mlist, post_id, Ruling(action), reason=reason).text


@dataclass(frozen=True)
class Decided:
    done: list[str]
    refused: list[ActError]


def decide(
    ctx: Context,
    actor: Actor,
    mlist: MailingList,
    post_ids: Sequence[int],
    action: str,
    reason: str,
) -> Decided:
    done, refused = [], []
    for post_id in post_ids:
        try:
            with ctx.session.begin_nested():
                done.append(decide_one(ctx, actor, mlist, post_id, action, reason))
        except ActError as error:
            refused.append(error)
    if refused and not done:
        raise refused[0]  # nothing was done: the page answers with the act's refusal
    return Decided(done, refused)
