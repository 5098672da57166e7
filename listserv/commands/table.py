# SPDX-License-Identifier: Apache-2.0
"""The table of every email command, in the order HELP lists them.

Commands are frozen dataclasses in one tuple; aliases are data. The
dispatcher hands this table to each request, so a command that parses
lines or lists commands (HELP) reads it from there instead of importing it.
"""

from __future__ import annotations

from listserv.commands import (
    decisions,
    info,
    membership,
    owner_lists,
    owner_members,
    preferences,
    review,
)
from listserv.commands.request import Command

COMMANDS: tuple[Command, ...] = (
    Command(
        "subscribe",
        ("join", "sub"),
        membership.subscribe,
        "SUBSCRIBE list [Your Name, Job Title]",
        "join the list (a confirmation is mailed to you)",
    ),
    Command(
        "unsubscribe",
        ("signoff", "leave", "unsub", "signoff-request"),
        membership.unsubscribe,
        "SIGNOFF list",
        "leave the list (a confirmation is mailed to you)",
    ),
    Command(
        "confirm",
        ("ok",),
        membership.confirm,
        "CONFIRM code",
        "confirm a pending request with the code you were sent",
        needs_list=False,
    ),
    Command(
        "set",
        (),
        owner_members.set_option,
        "SET list [address] option",
        "DIGEST, NOMAIL or MAIL for yourself; owners, for a member, also "
        "MODERATED, UNMODERATED or MODERATE [until DATE] [note]",
    ),
    Command(
        "query",
        (),
        preferences.query,
        "QUERY list",
        "show your membership settings",
    ),
    Command(
        "lists",
        ("list", "index"),
        info.lists,
        "LIST",
        "the lists served here",
        needs_list=False,
    ),
    Command("help", ("info",), info.help, "HELP", "this text", needs_list=False),
    # Owners and moderators: see commands/proof.py for how each is proved.
    Command("review", (), review.review, "REVIEW list", "the roster, if the list allows you"),
    Command(
        "approve",
        (),
        decisions.approve,
        "APPROVE list id",
        "moderators: send held post 12, or admit subscription request R7",
    ),
    Command(
        "reject",
        (),
        decisions.reject,
        "REJECT list id [reason]",
        "moderators: refuse post 12 or request R7 (the sender is told)",
    ),
    Command(
        "discard",
        (),
        decisions.discard,
        "DISCARD list id",
        "moderators: drop post 12 or request R7 (nobody is told)",
    ),
    Command(
        "add",
        (),
        owner_members.add,
        "ADD list address [Name, Title]",
        "owners: add a member at once (welcome sent)",
    ),
    Command(
        "delete", ("del",), owner_members.delete, "DELETE list address", "owners: remove a member"
    ),
    Command(
        "suspend",
        (),
        owner_members.suspend,
        "SUSPEND list address until DATE [note]",
        "owners: no mail to or posts from a member until DATE (2025-07-01 or 14d)",
    ),
    Command(
        "lift", (), owner_members.lift, "LIFT list address", "owners: end moderation/suspension"
    ),
    Command("hold", (), owner_lists.hold, "HOLD list", "owners: hold every post (emergency)"),
    Command("free", (), owner_lists.free, "FREE list", "owners: end HOLD"),
    Command(
        "ban",
        (),
        owner_lists.ban,
        "BAN list pattern [reason]",
        "owners: address, *@domain or ^regex",
    ),
    Command("unban", (), owner_lists.unban, "UNBAN list pattern", "owners: lift a ban"),
)
