# SPDX-License-Identifier: Apache-2.0
"""What domain logic is handed: a session, the settings, templates and the time.

Who acts, and through which channel, is not here: it is the `Actor` each act
takes (actors.py), so one context serves every channel.

Passing these explicitly (rather than a global config, as Mailman does) keeps
domain functions testable with a real database and a clock the test sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from listserv.config import Settings
from listserv.models import utcnow
from listserv.templates import Templates


@dataclass
class Context:
    session: Session
    settings: Settings
    templates: Templates
    now: datetime = field(default_factory=utcnow)
    source: str = ""  # the peer or Message-ID the action came from, for the audit log
