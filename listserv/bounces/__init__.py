# SPDX-License-Identifier: Apache-2.0
"""Bounces: mail back at LIST-bounces becomes bounce events, and events become scores.

Two halves around the `bounce_events` table, as in Mailman's bounce runner:
`receive.py` (the router's BOUNCES stage) reads one message sent to
`LIST-bounces@` or `LIST-bounces+EXT@`; `scoring.py` turns events — from DSNs
and from the relay's 5xx during delivery, all written by `events.py` — into
member scores as they are recorded, disabling delivery at the threshold; its
periodic job keeps the steps that need time to pass. `probes.py` confirms a threshold with a probe first when the list
asks; `warnings.py` repeats the disabled notice and removes the member after
the last; `policy.py` alerts the owners when many members' servers refuse our
mail. Re-enabling is an act (`acts.members.enable_delivery`, or confirming a
notice's token: `acts.confirmed.confirm_reenable`).
"""

from listserv.bounces.events import BounceSource, record_bounce
from listserv.bounces.policy import policy_alert_threshold
from listserv.bounces.probes import ACTOR, PROBE_PREFIX
from listserv.bounces.receive import FORWARD_HEADER, receive_bounce
from listserv.bounces.scoring import housekeeping, score_bounces, score_events
from listserv.bounces.warnings import cancel_bounce_requests, send_warnings

__all__ = [
    "ACTOR",
    "FORWARD_HEADER",
    "PROBE_PREFIX",
    "BounceSource",
    "cancel_bounce_requests",
    "housekeeping",
    "policy_alert_threshold",
    "receive_bounce",
    "record_bounce",
    "score_bounces",
    "score_events",
    "send_warnings",
]
