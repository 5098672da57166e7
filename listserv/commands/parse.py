# SPDX-License-Identifier: Apache-2.0
"""Reading command lines: which lines are commands, and running them in order.

`find_commands()` reads leading lines and stops at the first line that is
not a command, so signatures and quoted text are never executed. The table
is passed in (`commands/table.py` holds it), so a command can parse lines
without importing the table that imports it.
"""

from __future__ import annotations

from collections.abc import Sequence

from listserv.commands.request import Command, CommandRequest, Invocation
from listserv.outcomes import Outcome

#: Words that end the command lines at once (LISTSERV's END, signatures).
STOP_WORDS = frozenset({"end", "stop", "exit", "quit", "thanks", "thank"})
MAX_COMMANDS = 20


def lookup(table: Sequence[Command], word: str) -> Command | None:
    word = word.strip().lower().rstrip(":")
    for command in table:
        if word in command.words:
            return command
    return None


def must(table: Sequence[Command], name: str) -> Command:
    """A command the service itself names (e.g. `subscribe` for a join phrase)."""
    command = lookup(table, name)
    if command is None:
        raise LookupError(f"no command {name!r} in the table")
    return command


def parse_line(table: Sequence[Command], line: str) -> Invocation | None:
    words = line.split()
    if not words:
        return None
    command = lookup(table, words[0])
    if command is None:
        return None
    return Invocation(command, words[1:], line.strip())


def find_commands(table: Sequence[Command], lines: Sequence[str]) -> list[Invocation]:
    """Leading command lines, skipping blank ones, up to the first other line."""
    found: list[Invocation] = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line.startswith(("--", ">")) or line.split()[0].lower().strip(".,!:") in STOP_WORDS:
            break
        invocation = parse_line(table, line)
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
