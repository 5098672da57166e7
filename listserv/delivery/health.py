# SPDX-License-Identifier: Apache-2.0
"""The relay's health as the operator should hear it: a change of state, not every message.

The delivery worker shows this every relay answer. When the relay starts
refusing connections, deferring whole transactions (4xx for every
recipient) or refusing them (the same 5xx for every recipient, copy after
copy: a relay that will not take our mail at all), one WARNING says so,
with the reason and when the mail will be tried again; when a copy gets
through, one INFO says the relay recovered and how much waited meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from listserv.delivery.relays import SendResult

log = logging.getLogger("listserv.delivery")

#: Copies refused whole, each with the same reply, before the relay counts as refusing.
REFUSALS_IN_A_ROW = 5


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class RelayHealth:
    """Watches relay answers; logs WARNING on trouble and INFO on recovery, once each."""

    def __init__(
        self,
        name: str,
        retry_after: timedelta,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.retry_after = retry_after
        self.clock = clock
        self.trouble = ""  # "" while mail goes through
        self.since = 0.0
        self.waiting = 0  # copies deferred or refused since the trouble began
        self._refusal = ""
        self._refusals = 0

    def observe(self, answers: SendResult) -> None:
        replies = list(answers.values())
        if not replies:
            return
        codes = [code for code, _ in replies]
        if any(200 <= code < 300 for code in codes):
            self._recovered()
            return
        reason = " ".join(f"{codes[0] or ''} {replies[0][1]}".split())[:300]
        if all(code == 0 for code in codes):
            self._troubled("refusing connections", reason, deferred=True)
        elif all(code == 0 or 400 <= code < 500 for code in codes):
            self._troubled("deferring mail", reason, deferred=True)
        elif all(code >= 500 for code in codes) and len(set(replies)) == 1:
            self._refusals = self._refusals + 1 if reason == self._refusal else 1
            self._refusal = reason
            if self._refusals >= REFUSALS_IN_A_ROW:
                self._troubled("refusing mail", reason, deferred=False)
        else:
            self._refusals = 0

    def _troubled(self, kind: str, reason: str, *, deferred: bool) -> None:
        self.waiting += 1
        if self.trouble == kind:
            return
        retry = (
            f"next retry in {_duration(self.retry_after.total_seconds())}, doubling after that"
            if deferred
            else "the recipients are recorded as failed"
        )
        log.warning("relay %s is %s: %s; %s", self.name, kind, reason, retry)
        if not self.trouble:
            self.since = self.clock()
        self.trouble = kind

    def _recovered(self) -> None:
        self._refusals = 0
        if not self.trouble:
            return
        log.info(
            "relay %s recovered after %s: delivering again (%d copies waited meanwhile)",
            self.name,
            _duration(self.clock() - self.since),
            self.waiting,
        )
        self.trouble = ""
        self.waiting = 0
