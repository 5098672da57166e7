# SPDX-License-Identifier: Apache-2.0
"""HELP and LIST: answers that change nothing."""

from __future__ import annotations

from listserv.commands.request import CommandRequest
from listserv.lists import all_lists
from listserv.outcomes import Outcome


def help(request: CommandRequest, args: list[str]) -> Outcome:
    lines = [f"  {c.usage:<40} {c.summary}" for c in request.commands]
    intro = "Commands (one per line, in the body or the Subject):"
    return Outcome.info(intro + "\n" + "\n".join(lines))


def lists(request: CommandRequest, args: list[str]) -> Outcome:
    public = [m for m in all_lists(request.ctx.session) if m.public]
    if not public:
        return Outcome.info("No public lists are served here.")
    lines = [f"  {m.display_name:<16} {m.posting_address}  {m.description}" for m in public]
    return Outcome.info("Lists served here:\n" + "\n".join(lines))
