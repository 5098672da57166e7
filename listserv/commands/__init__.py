# SPDX-License-Identifier: Apache-2.0
"""Email commands: the table of every command, and how a message's lines become calls.

Commands are frozen dataclasses in one list, `COMMANDS`; aliases are data.
`find_commands()` reads leading lines and stops at the first line that is not
a command, so signatures and quoted text are never executed. Each command
returns an `Outcome`; `dispatch.py` turns the outcomes into one reply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING

from listserv.context import Context
from listserv.models import MailingList
from listserv.outcomes import Outcome

if TYPE_CHECKING:
    from listserv.owner_auth import Credentials


@dataclass
class CommandRequest:
    """Everything a command may look at; built once per message."""

    ctx: Context
    mlist: MailingList | None  # the list the address names (None at the site address)
    sender: str  # the From addr-spec (replies go here)
    from_header: str  # the raw From value, for eligibility checks
    message: EmailMessage
    body_lines: list[str] = field(default_factory=list)
    site: bool = False  # LISTSERV syntax: list commands name the list first
    message_id: str = ""
    credentials: Credentials | None = None  # what the message proves (owner_auth.py)


Runner = Callable[[CommandRequest, list[str]], Outcome]


@dataclass(frozen=True)
class Command:
    name: str
    aliases: tuple[str, ...]
    run: Runner
    usage: str
    summary: str
    needs_list: bool = True

    @property
    def words(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Invocation:
    command: Command
    args: list[str]
    line: str


#: Words that end the command lines at once (LISTSERV's END, signatures).
STOP_WORDS = frozenset({"end", "stop", "exit", "quit", "thanks", "thank"})
MAX_COMMANDS = 20


def _table() -> list[Command]:
    from listserv.commands import info, membership, owner, preferences

    return [
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
            owner.set_option,
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
        # Owners and moderators: see commands/owner.py for how each is proved.
        Command("review", (), owner.review, "REVIEW list", "the roster, if the list allows you"),
        Command(
            "approve",
            (),
            owner.approve,
            "APPROVE list id",
            "moderators: send held post 12, or admit subscription request R7",
        ),
        Command(
            "reject",
            (),
            owner.reject,
            "REJECT list id [reason]",
            "moderators: refuse post 12 or request R7 (the sender is told)",
        ),
        Command(
            "discard",
            (),
            owner.discard,
            "DISCARD list id",
            "moderators: drop post 12 or request R7 (nobody is told)",
        ),
        Command(
            "add",
            (),
            owner.add,
            "ADD list address [Name, Title]",
            "owners: add a member at once (welcome sent)",
        ),
        Command("delete", ("del",), owner.delete, "DELETE list address", "owners: remove a member"),
        Command(
            "suspend",
            (),
            owner.suspend,
            "SUSPEND list address until DATE [note]",
            "owners: no mail to or posts from a member until DATE (2025-07-01 or 14d)",
        ),
        Command("lift", (), owner.lift, "LIFT list address", "owners: end moderation/suspension"),
        Command("hold", (), owner.hold, "HOLD list", "owners: hold every post (emergency)"),
        Command("free", (), owner.free, "FREE list", "owners: end HOLD"),
        Command(
            "ban", (), owner.ban, "BAN list pattern [reason]", "owners: address, *@domain or ^regex"
        ),
        Command("unban", (), owner.unban, "UNBAN list pattern", "owners: lift a ban"),
    ]


COMMANDS: list[Command] = []


def commands() -> list[Command]:
    if not COMMANDS:
        COMMANDS.extend(_table())
    return COMMANDS


def lookup(word: str) -> Command | None:
    word = word.strip().lower().rstrip(":")
    for command in commands():
        if word in command.words:
            return command
    return None


def parse_line(line: str) -> Invocation | None:
    words = line.split()
    if not words:
        return None
    command = lookup(words[0])
    if command is None:
        return None
    return Invocation(command, words[1:], line.strip())


def find_commands(lines: Sequence[str]) -> list[Invocation]:
    """Leading command lines, skipping blank ones, up to the first other line."""
    found: list[Invocation] = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line.startswith(("--", ">")) or line.split()[0].lower().strip(".,!:") in STOP_WORDS:
            break
        invocation = parse_line(line)
        if invocation is None:
            break
        found.append(invocation)
        if len(found) >= MAX_COMMANDS:
            break
    return found


def run(request: CommandRequest, invocations: Sequence[Invocation]) -> list[tuple[str, Outcome]]:
    results: list[tuple[str, Outcome]] = []
    for invocation in invocations:
        args = list(invocation.args)
        if invocation.command.needs_list and not request.site and request.mlist is not None:
            # "subscribe sm-cop" at sm-cop-request@ names the list redundantly.
            if args and args[0].lower() == request.mlist.name:
                args = args[1:]
        outcome = invocation.command.run(request, args)
        results.append((invocation.line, outcome))
    return results
