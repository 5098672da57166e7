# SPDX-License-Identifier: Apache-2.0
"""What a bounce says: which recipients failed, and how badly.

These are the values the bounce-processing stage and our own delivery act on;
every reader in this package produces them and nothing else.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class BounceKind(enum.StrEnum):
    """How a recipient failed; decides what a bounce does to a member's score."""

    PERMANENT = "permanent"  # 5.x.x: the address is dead
    TEMPORARY = "temporary"  # 4.x.x reported as a final failure (e.g. mailbox full, expired)
    DELAYED = "delayed"  # a "still trying" notice: not a bounce at all
    POLICY = "policy"  # our mail was refused (DMARC, reputation, content): never the member's fault


@dataclass(frozen=True)
class BouncedRecipient:
    """One recipient a bounce reports on, as the bounce reports it."""

    address: str
    kind: BounceKind
    status: str | None
    diagnostic: str


@dataclass(frozen=True)
class BounceReport:
    """What one message at the bounces address turned out to be."""

    recipients: tuple[BouncedRecipient, ...]
    is_auto_reply: bool
    recognised: bool

    def permanent(self) -> tuple[BouncedRecipient, ...]:
        """The recipients whose address is dead: the only ones a hard bounce counts against."""
        return tuple(r for r in self.recipients if r.kind is BounceKind.PERMANENT)
