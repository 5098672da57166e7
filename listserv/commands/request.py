# SPDX-License-Identifier: Apache-2.0
"""The types every email command shares: the request, a command, and what a message proves.

Only types live here, so the command modules, the table that lists them and
the proof of ownership can all name them without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage

from listserv.actors import Actor, Auth, email_actor
from listserv.context import Context
from listserv.models import MailingList, Role
from listserv.outcomes import Outcome


@dataclass(frozen=True)
class Grant:
    """Permission to run one command: who acts, and how that was proved (for the audit)."""

    address: str
    auth: Auth
    role: Role

    @property
    def actor(self) -> Actor:
        return email_actor(self.address, self.auth)


@dataclass
class Credentials:
    """What one message proves, gathered as its commands run.

    `confirmed` is set only while replaying a confirmed `owner-commands`
    request: (list id, the owner address the confirmation went to).
    """

    password: str | None = None
    envelope_from: str = ""  # the reverse path: part of what a password failure is keyed to
    confirmed: tuple[int, str] | None = None
    verdicts: dict[int, Grant | Outcome] = field(default_factory=dict)
    deferred: dict[int, list[str]] = field(default_factory=dict)
    deferred_to: dict[int, str] = field(default_factory=dict)
    refusals_audited: set[int] = field(default_factory=set)
    locks_audited: set[int] = field(default_factory=set)


#: Carries out a confirmation token for the message's sender (see `confirmations`).
Confirmer = Callable[[str], Outcome]


def _no_confirmations(token: str) -> Outcome:
    return Outcome.error("Confirmations cannot be carried out here.")


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
    credentials: Credentials = field(default_factory=Credentials)
    #: The command table in force (HELP lists it; parsing reads it).
    commands: Sequence[Command] = ()
    #: How a CONFIRM line is carried out (given by the dispatcher).
    confirm: Confirmer = _no_confirmations

    @property
    def actor(self) -> Actor:
        """The sender, proving nothing beyond the address the message came from."""
        return email_actor(self.sender)


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
