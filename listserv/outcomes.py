# SPDX-License-Identifier: Apache-2.0
"""What a command or request came to, for the one reply that lists them all."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.StrEnum):
    DONE = "done"
    PENDING = "pending"  # a confirmation or an owner's decision is awaited
    REFUSED = "refused"
    INFO = "info"  # an answer (help, list, query, review)
    ERROR = "error"  # could not be understood


@dataclass(frozen=True)
class Outcome:
    status: Status
    text: str
    #: True when no results reply is owed: this outcome already mailed the person
    #: concerned, or must not mail them again (a rate limit was reached).
    notified: bool = False

    @classmethod
    def done(cls, text: str, notified: bool = False) -> Outcome:
        return cls(Status.DONE, text, notified)

    @classmethod
    def pending(cls, text: str, notified: bool = False) -> Outcome:
        return cls(Status.PENDING, text, notified)

    @classmethod
    def refused(cls, text: str, notified: bool = False) -> Outcome:
        return cls(Status.REFUSED, text, notified)

    @classmethod
    def info(cls, text: str, notified: bool = False) -> Outcome:
        return cls(Status.INFO, text, notified)

    @classmethod
    def error(cls, text: str) -> Outcome:
        return cls(Status.ERROR, text)
