# SPDX-License-Identifier: Apache-2.0
"""SUBSCRIBE / SIGNOFF / CONFIRM: joining and leaving by email."""

from __future__ import annotations

from collections.abc import Sequence

from listserv.acts import subscriptions
from listserv.acts.subscriptions import Requester
from listserv.commands.identity import display_name_of, identity_from_lines
from listserv.commands.parse import parse_line
from listserv.commands.request import Command, CommandRequest
from listserv.lists import get_list
from listserv.models import MailingList
from listserv.outcomes import Outcome
from listserv.tokens import find_token


def resolve_list(request: CommandRequest, args: list[str]) -> tuple[MailingList | None, list[str]]:
    """The list a command acts on: named first at the site address, implied elsewhere."""
    if request.site:
        if not args:
            return None, args
        return get_list(request.ctx.session, args[0]), args[1:]
    return request.mlist, args


def unknown_list(request: CommandRequest, args: list[str]) -> Outcome:
    if not args:
        return Outcome.error("Name the list, for example: SUBSCRIBE SM-COP Jane Doe")
    return Outcome.error(f"There is no list called {args[0].upper()} here. Send LIST to see them.")


def subscribe(request: CommandRequest, args: list[str]) -> Outcome:
    mlist, rest = resolve_list(request, args)
    if mlist is None:
        return unknown_list(request, args)
    if rest:
        name, title = identity_from_lines([" ".join(rest)])
    else:
        display = display_name_of(request.from_header)
        lines = _non_command_lines(request.commands, request.body_lines)
        name, title = identity_from_lines(lines, display)
    requester = Requester(from_header=request.from_header, name=name, title=title)
    return subscriptions.request_join(request.ctx, request.actor, mlist, requester)


def unsubscribe(request: CommandRequest, args: list[str]) -> Outcome:
    mlist, _ = resolve_list(request, args)
    if mlist is None:
        return unknown_list(request, args)
    if not request.sender:
        return Outcome.error("Your address could not be read from the message.")
    return subscriptions.request_leave(request.ctx, request.actor, mlist, request.sender)


def confirm(request: CommandRequest, args: list[str]) -> Outcome:
    token = find_token(" ".join(args))
    if token is None:
        return Outcome.error("CONFIRM needs the code from the message you were sent.")
    return request.confirm(token)


def _non_command_lines(table: Sequence[Command], lines: Sequence[str]) -> list[str]:
    """Body lines after any leading command lines."""
    out = list(lines)
    while out and (not out[0].strip() or parse_line(table, out[0]) is not None):
        out.pop(0)
    return out
