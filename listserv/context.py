# SPDX-License-Identifier: Apache-2.0
"""What domain logic is handed: a session, the settings, templates and the time.

Who acts, and through which channel, is not here: it is the `Actor` each act
takes (actors.py), so one context serves every channel.

Passing these explicitly (rather than a global config, as Mailman does) keeps
domain functions testable with a real database and a clock the test sets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from listserv.config import Settings
from listserv.models import utcnow
from listserv.sender_auth import SenderProof
from listserv.templates import Templates


@dataclass
class Memo:
    """What a run of work looks up once and reuses: one processing batch, one request.

    A join burst asks "is this address banned?" hundreds of times a second of
    the same few patterns; reading them once a batch saves a query a message.
    Acts that change what is memoized (a ban, an unban) clear it.
    """

    #: Each scope's ban tests (a list id, or None for the site's bans alone).
    bans: dict[int | None, list[Callable[[str], bool]]] = field(default_factory=dict)


@dataclass
class Context:
    session: Session
    settings: Settings
    templates: Templates
    now: datetime = field(default_factory=utcnow)
    source: str = ""  # the peer or Message-ID the action came from, for the audit log
    #: Set while answering a message whose Authentication-Results are trusted: replies
    #: to its sender, if unknown to us, go out only when the sender's domain passed.
    sender_proof: SenderProof | None = None
    memo: Memo = field(default_factory=Memo)
