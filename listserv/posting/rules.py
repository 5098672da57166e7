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

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage

from sqlalchemy import select

from listserv import roster
from listserv.addresses import Destination, split_address
from listserv.bans import is_banned
from listserv.context import Context
from listserv.message import (
    auto_reply_reason,
    from_addresses,
    header_text,
    message_id,
    normalise_phrase,
    normalised_subject,
    text_body_lines,
)
from listserv.models import MailingList, Member, Post, PostStatus, Role
from listserv.tokens import TOKEN_RE


class Action(enum.IntEnum):
    """What happens to a post, in increasing severity; the most severe hit wins."""

    ACCEPT = 0  # archived and sent to every member
    HOLD = 1  # kept for a moderator's decision; the poster is told
    REJECT = 2  # refused; the poster is told why
    DISCARD = 3  # dropped without a word to the sender (kept and audited)


@dataclass(frozen=True)
class Hit:
    """One rule's finding. ``route_to`` hands the message to another address's stage."""

    action: Action
    reason: str
    route_to: Destination | None = None


@dataclass(frozen=True)
class PostContext:
    """Everything a rule may look at, read once per post."""

    ctx: Context
    mlist: MailingList
    message: EmailMessage
    size: int
    envelope_from: str
    sender: str  # the one From addr-spec; '' when there is none or several
    roles: frozenset[str]  # the sender's roles on this list
    member: Member | None  # the sender's row with role member
    message_id: str
    post_id: int | None = None  # this post's own row, left out of the duplicate check

    @property
    def is_member(self) -> bool:
        return Role.MEMBER in self.roles

    @property
    def is_privileged(self) -> bool:
        """Owners and moderators may post to announce-only and moderated lists."""
        return bool(self.roles & {Role.OWNER, Role.MODERATOR})


def post_context(
    ctx: Context,
    mlist: MailingList,
    message: EmailMessage,
    *,
    size: int,
    envelope_from: str,
    post_id: int | None = None,
) -> PostContext:
    """Read who the sender is: the From addr-spec, matched like every roster lookup."""
    senders = {roster.address_key(a): a for _, a in from_addresses(message)}
    sender = next(iter(senders.values())) if len(senders) == 1 else ""
    roles: frozenset[str] = frozenset()
    member = None
    if sender:
        roles = frozenset(roster.roles_of(ctx.session, mlist, sender))
        if Role.MEMBER in roles:
            member = roster.find_member(ctx.session, mlist, sender)
    return PostContext(
        ctx=ctx,
        mlist=mlist,
        message=message,
        size=size,
        envelope_from=envelope_from,
        sender=sender,
        roles=roles,
        member=member,
        message_id=message_id(message) or "",
        post_id=post_id,
    )


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
_MEMBERSHIP_WORDS = frozenset(
    {"subscribe", "sub", "join", "unsubscribe", "unsub", "signoff", "leave"}
)
_INFO_WORDS = frozenset({"help", "info"})
_SET_OPTIONS = frozenset({"digest", "nomail", "mail"})
_BODY_LINES = 5
#: A request's body is a name and title or "please remove me, thanks": a few lines.
_SHORT_BODY = 3


def _command_line(line: str, list_name: str) -> str | None:
    """The command word if ``line`` is exactly a request, as people write them.

    Strict on purpose: "help", "join sm-cop", "SUBSCRIBE SM-COP Jane Doe",
    "unsubscribe me", "set digest" and "confirm <code>" are requests; "Help!",
    "Join us on Friday" and "Help with Facebook verification" are posts.
    """
    words = line.strip().lower().split()
    if not words:
        return None
    word, args = words[0].rstrip(":"), words[1:]
    if word in _INFO_WORDS:
        return word if not args or args == [list_name] else None
    if word == "confirm":
        return word if len(args) == 1 and TOKEN_RE.fullmatch(args[0]) else None
    if word == "set":
        if args and args[0] == list_name:
            args = args[1:]
        return word if len(args) == 1 and args[0] in _SET_OPTIONS else None
    if word in _MEMBERSHIP_WORDS:
        if not args:
            return word
        if args[0] == list_name:
            return word if len(args) <= 7 else None  # LISTSERV: SUBSCRIBE list Full Name
        if args[0] == "me" and len(args) == 1:
            return word
    return None


def _body_lines(message: EmailMessage) -> list[str]:
    """The leading non-blank lines of the text, up to quoted text or a signature."""
    lines: list[str] = []
    for raw in text_body_lines(message, limit=40):
        line = raw.strip()
        if not line:
            continue
        if line.startswith((">", "--", "__")):
            break
        lines.append(line)
    return lines


def administrivia(post: PostContext) -> Hit | None:
    """A request (subscribe, leave, help …) sent to everyone's address by mistake.

    Routed to the -request address's handling, so the sender gets the answer that
    address would give (a confirmation, the help text) and the members get nothing;
    joining and leaving stay double opt-in, so a misreading changes no membership.
    A command word as the subject over a body of ordinary prose is ambiguous ("Help"
    or "Leave" are fine subjects for a post), so that is held for a moderator when
    the word is help/info or the body is longer than a request's few lines.
    """
    mlist = post.mlist
    request = mlist.address("-request")
    subject = normalised_subject(post.message)
    phrases = [*(mlist.join_phrases or []), *(mlist.leave_phrases or [])]
    if subject and any(subject == normalise_phrase(p) for p in phrases if p.strip()):
        return Hit(
            Action.DISCARD,
            f'The subject "{subject}" asks to join or leave; handled as a request to {request}.',
            route_to=Destination.REQUEST,
        )
    body = _body_lines(post.message)
    word = _command_line(subject, mlist.name) if subject else None
    if word is not None:
        prose = body and not any(_command_line(b, mlist.name) for b in body)
        if prose and (word in _INFO_WORDS or len(body) > _SHORT_BODY):
            return Hit(
                Action.HOLD,
                f'The subject "{subject}" looks like a command to {request}; '
                "held so a moderator decides whether it is a post.",
            )
        return Hit(
            Action.DISCARD,
            f'The subject "{subject}" is a command; handled as a request to {request}.',
            route_to=Destination.REQUEST,
        )
    for line in body[:_BODY_LINES]:
        if _command_line(line, mlist.name) is not None:
            return Hit(
                Action.DISCARD,
                f'The line "{line[:80]}" is a command; handled as a request to {request}.',
                route_to=Destination.REQUEST,
            )
    return None


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
    from listserv.conduct import posting_restriction

    member, now = post.member, post.ctx.now
    if member is None:
        return None
    restriction = posting_restriction(member, now)
    # A date in the future restricts on its own, whatever set it.
    if member.suspended_until is not None and member.suspended_until > now:
        restriction = "suspended"
    elif restriction is None and member.moderated_until is not None and (
        member.moderated_until > now
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
