# SPDX-License-Identifier: Apache-2.0
"""SUBSCRIBE / SIGNOFF / CONFIRM: joining and leaving by email."""

from __future__ import annotations

import re
from collections.abc import Sequence

from listserv import subscriptions
from listserv.commands import CommandRequest
from listserv.lists import get_list
from listserv.models import MailingList
from listserv.outcomes import Outcome
from listserv.subscriptions import Requester
from listserv.tokens import find_token

_LABELLED = re.compile(r"^\s*(name|full name|title|job title|position)\s*:\s*(.+)$", re.I)


def identity_from_lines(lines: Sequence[str], fallback_name: str = "") -> tuple[str, str]:
    """Name and job title from a request body: "Jane Doe, Digital Media Specialist".

    Also understands "Name: …" / "Title: …" lines. Quoted text, signatures and
    anything after the first paragraph are ignored.
    """
    name, title = "", ""
    seen_text = False
    for raw in lines[:10]:
        line = raw.strip()
        if not line:
            if seen_text:
                break
            continue
        if line.startswith((">", "--")):
            break
        seen_text = True
        labelled = _LABELLED.match(line)
        if labelled:
            if labelled.group(1).lower() in ("name", "full name"):
                name = labelled.group(2).strip()
            else:
                title = labelled.group(2).strip()
            continue
        if not name:
            first, _, rest = line.partition(",")
            name, title = first.strip(), (title or rest.strip())
    name = name or fallback_name
    return _clean(name), _clean(title)


def _clean(text: str) -> str:
    return " ".join("".join(c for c in text if c.isprintable()).split())[:200]


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
        display = _display_name(request.from_header)
        name, title = identity_from_lines(_non_command_lines(request.body_lines), display)
    requester = Requester(from_header=request.from_header, name=name, title=title)
    return subscriptions.request_subscribe(request.ctx, mlist, requester)


def unsubscribe(request: CommandRequest, args: list[str]) -> Outcome:
    mlist, _ = resolve_list(request, args)
    if mlist is None:
        return unknown_list(request, args)
    if not request.sender:
        return Outcome.error("Your address could not be read from the message.")
    return subscriptions.request_unsubscribe(request.ctx, mlist, request.sender)


def confirm(request: CommandRequest, args: list[str]) -> Outcome:
    token = find_token(" ".join(args))
    if token is None:
        return Outcome.error("CONFIRM needs the code from the message you were sent.")
    return subscriptions.confirm(request.ctx, token, request.sender)


def _display_name(from_header: str) -> str:
    from email.utils import getaddresses

    pairs = getaddresses([from_header])
    return pairs[0][0] if len(pairs) == 1 else ""


def _non_command_lines(lines: Sequence[str]) -> list[str]:
    """Body lines after any leading command lines."""
    from listserv.commands import parse_line

    out = list(lines)
    while out and (not out[0].strip() or parse_line(out[0]) is not None):
        out.pop(0)
    return out
