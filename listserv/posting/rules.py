# SPDX-License-Identifier: Apache-2.0
"""Posting rules: what becomes of a message sent to a list's posting address.

Job: judge one post against the list's policy, before anything is sent.
Input: a :class:`PostContext` (the parsed message, its size, the envelope sender, the
list, and who the sender is on the list, read once from the database).
Output: a :class:`Verdict` — the action to take and every rule that hit, each with
a reason written for the poster and the moderators.
Trusts: the list's settings and the roster; nothing in the message (a From header
is only an identity claim, which is why non-members are held, not trusted).

Rules are plain functions ``(post) -> Hit | None`` in ONE ordered list, ``RULES``,
so the whole posting policy reads top to bottom in one place. Every rule runs;
:func:`evaluate` takes the most severe action (``Action`` is ordered ACCEPT < HOLD
< REJECT < DISCARD). Among hits with that action the first in ``RULES`` order is the
decisive one: only its ``route_to`` (administrivia) is followed. Loop and auto-reply
come first, so a robot's message is discarded and never answered, not even by the
command path; a command sent to the posting address (administrivia) outranks the
non-member and moderation holds, so "subscribe" from a stranger gets the answer the
-request address would give rather than waiting for a moderator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select

from listserv.addresses import split_address
from listserv.bans import is_banned
from listserv.conduct import posting_restriction
from listserv.context import Context
from listserv.message import (
    auto_reply_reason,
    header_text,
)
from listserv.models import MailingList, Post, PostStatus
from listserv.posting.administrivia import administrivia
from listserv.posting.post_context import Action, Hit, PostContext, post_context

__all__ = ["RULES", "Action", "Hit", "PostContext", "Rule", "Verdict", "evaluate", "post_context"]


Rule = Callable[[PostContext], Hit | None]


# ------------------------------------------------------------------------- the rules


def loop(post: PostContext) -> Hit | None:
    """Our own mail coming back: our List-Id, our X-Loop, or a Message-ID we made."""
    mlist = post.mlist
    list_id = f"<{mlist.name}.{mlist.domain}>".lower()
    if list_id in header_text(post.message, "List-Id").lower():
        return Hit(Action.DISCARD, f"Mail loop: the message already carries {list_id}.")
    posting = mlist.posting_address.lower()
    try:
        x_loops = post.message.get_all("X-Loop") or []
    except Exception:
        x_loops = []
    for value in x_loops:
        try:
            text = str(value)
        except Exception:
            continue
        if posting in text.lower():
            return Hit(Action.DISCARD, f"Mail loop: the message carries X-Loop: {posting}.")
    _, domain = split_address(post.message_id.strip("<>"))
    if domain and domain in post.ctx.settings.site.domains:
        return Hit(
            Action.DISCARD, f"Mail loop: the Message-ID {post.message_id} was made by this server."
        )
    return None


def auto_reply(post: PostContext) -> Hit | None:
    """RFC 3834: vacation messages, bounces and bulk mail are never posted or answered."""
    reason = auto_reply_reason(post.message, post.envelope_from)
    if reason is None:
        return None
    return Hit(Action.DISCARD, f"Automatic message ({reason}): not posted and not answered.")


#: Command words that, alone or with the list's name, make a line a request.
def size_limit(ctx: Context, mlist: MailingList) -> int:
    """The list's own limit, else the site's (which intake already enforces)."""
    return mlist.max_message_size or ctx.settings.smtp.max_message_size


def oversize(post: PostContext) -> Hit | None:
    limit = size_limit(post.ctx, post.mlist)
    if post.size <= limit:
        return None
    return Hit(
        Action.REJECT,
        f"The message is {post.size:,} bytes; {post.mlist.display_name} accepts at most "
        f"{limit:,} bytes. Please send a shorter message, or a link instead of attachments.",
    )


def banned(post: PostContext) -> Hit | None:
    if not post.sender or not is_banned(post.ctx, post.mlist, post.sender):
        return None
    return Hit(Action.DISCARD, f"{post.sender} is banned from {post.mlist.display_name}.")


def emergency(post: PostContext) -> Hit | None:
    if not post.mlist.emergency_hold:
        return None
    return Hit(
        Action.HOLD,
        f"{post.mlist.display_name} is under emergency moderation: every post is held.",
    )


def member_moderated(post: PostContext) -> Hit | None:
    """A member under moderation, or suspended (who may not post until the date).

    `conduct.posting_restriction` compares the end dates with the time itself,
    so a measure past its date no longer holds posts even before the
    periodic job lifts it, and a suspension without an end date still does.
    """
    member, now = post.member, post.ctx.now
    if member is None:
        return None
    restriction = posting_restriction(member, now)
    # A date in the future restricts on its own, whatever set it.
    if member.suspended_until is not None and member.suspended_until > now:
        restriction = "suspended"
    elif (
        restriction is None
        and member.moderated_until is not None
        and (member.moderated_until > now)
    ):
        restriction = "moderated"
    if restriction == "suspended":
        until = member.suspended_until
        when = f" until {until:%Y-%m-%d}" if until is not None else ""
        return Hit(Action.HOLD, f"{member.address} is suspended from posting{when}.")
    if restriction == "moderated":
        until = member.moderated_until
        when = f" until {until:%Y-%m-%d}" if until is not None else ""
        return Hit(Action.HOLD, f"Posts from {member.address} are moderated{when}.")
    return None


_NON_MEMBER_ACTIONS = {
    "hold": Action.HOLD,
    "reject": Action.REJECT,
    "discard": Action.DISCARD,
}


def non_member(post: PostContext) -> Hit | None:
    """Per the list's non_member_action; owners and moderators count as allowed posters."""
    if post.is_member or post.is_privileged:
        return None
    action = _NON_MEMBER_ACTIONS.get(post.mlist.non_member_action)
    if action is None:  # "accept"
        return None
    name = post.mlist.display_name
    if not post.sender:
        return Hit(
            action,
            f"The message does not have exactly one From address; {name} "
            "takes posts from its members only.",
        )
    return Hit(action, f"{post.sender} is not a member of {name}; only members may post.")


def moderated_list(post: PostContext) -> Hit | None:
    """Every member's post is reviewed; owners' and moderators' go out (LISTSERV Send=Editor)."""
    if not post.mlist.moderated or post.is_privileged:
        return None
    return Hit(Action.HOLD, f"{post.mlist.display_name} is moderated: every post is reviewed.")


def announce_only(post: PostContext) -> Hit | None:
    """Only owners and moderators post; a member's post is held for them.

    Non-members are left to the non-member rule, unless the list would accept
    them, which an announcement list never does.
    """
    mlist = post.mlist
    if not mlist.announce_only or post.is_privileged:
        return None
    if not post.is_member and mlist.non_member_action in _NON_MEMBER_ACTIONS:
        return None
    return Hit(
        Action.HOLD,
        f"{mlist.display_name} is an announcement list: only its owners and moderators post.",
    )


def duplicate(post: PostContext) -> Hit | None:
    """The same Message-ID already accepted (or awaiting a moderator) on this list.

    An MTA retry or a poster's double send must not reach 1,500 people twice.
    """
    if not post.message_id:
        return None
    query = select(Post.id).where(
        Post.list_id == post.mlist.id,
        Post.message_id == post.message_id[:998],
        Post.status.in_((PostStatus.ACCEPTED, PostStatus.HELD)),
    )
    if post.post_id is not None:
        query = query.where(Post.id != post.post_id)
    earlier = post.ctx.session.scalar(query.limit(1))
    if earlier is None:
        return None
    return Hit(
        Action.DISCARD,
        f"Duplicate: post {earlier} with Message-ID {post.message_id} was already received.",
    )


#: The posting policy, in the order the issue gives it (see the module docstring).
RULES: list[Rule] = [
    loop,
    auto_reply,
    administrivia,
    oversize,
    banned,
    emergency,
    member_moderated,
    non_member,
    moderated_list,
    announce_only,
    duplicate,
]


@dataclass(frozen=True)
class Verdict:
    action: Action
    hits: tuple[Hit, ...] = field(default=())

    @property
    def decisive(self) -> Hit | None:
        """The first hit (in RULES order) with the winning action."""
        return next((h for h in self.hits if h.action == self.action), None)

    @property
    def reasons(self) -> list[str]:
        """Reasons of the hits that decided, for the poster."""
        return [h.reason for h in self.hits if h.action == self.action]

    @property
    def all_reasons(self) -> list[str]:
        """Every hit's reason, for the record."""
        return [h.reason for h in self.hits]


def evaluate(post: PostContext, rules: Sequence[Rule] | None = None) -> Verdict:
    """Run every rule; the most severe action wins (ties: first in RULES order decides).

    No hit means ACCEPT. All hits are kept so the stored reason shows everything
    that was wrong with a post, not only what decided it.
    """
    hits = tuple(hit for rule in (RULES if rules is None else rules) if (hit := rule(post)))
    action = max((h.action for h in hits), default=Action.ACCEPT)
    return Verdict(action, hits)
