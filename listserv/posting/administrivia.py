# SPDX-License-Identifier: Apache-2.0
"""Administrivia: a command ("subscribe", "unsubscribe", a confirmation code) sent to the posting address.

As in Mailman, such a message is not shown to every member: it is discarded
as a post and handed to the -request address's stage, which answers it the
way it would answer the command sent there. The reading is strict: a line
counts only when it is exactly a command ("join sm-cop", "set digest"), so
"Join us on Friday" is a post, and a command-word subject over a body of
prose is held for a moderator to decide.
"""

from __future__ import annotations

from email.message import EmailMessage

from listserv.addresses import Destination
from listserv.message import normalise_phrase, normalised_subject, text_body_lines
from listserv.posting.post_context import Action, Hit, PostContext
from listserv.tokens import TOKEN_RE

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
