# SPDX-License-Identifier: Apache-2.0
"""Delivery: the workers that take claimed outbox work and hand it to a relay.

Input is due `outbox_recipients` and `outbox_batches` rows; output is their new
state and, for a list member the relay refused (or that could not be reached before
the job's deadline), a `bounce_events` row that the bounce stage scores.

- `worker`: the delivery worker's pipeline (claim → copies → relay → settle);
- `ledger`: its database side (claiming, settling, finishing jobs);
- `copies`: the transactions it sends, personalized and signed copies;
- `relay_bounces`: relay refusals written as bounce events;
- `relays`: the relay protocol and the Maildir relay;
- `smtp_relay`, `smtp_connection`, `smtp_transaction`: the SMTP relay client;
- `wire`: a message's bytes as SMTP carries them.
"""

from __future__ import annotations

from listserv.delivery.copies import (
    Addressee,
    Copy,
    JobInfo,
    Personalizer,
    Signer,
    make_personalizer,
    plain_copy,
    plan_copies,
)
from listserv.delivery.health import RelayHealth
from listserv.delivery.ledger import FailureHandler
from listserv.delivery.relay_bounces import record_relay_bounces
from listserv.delivery.relays import MaildirRelay, Relay, RelayUnavailable, SendResult
from listserv.delivery.smtp_relay import SMTPRelay
from listserv.delivery.wire import CanonicalBytes, canonical, wire_format
from listserv.delivery.worker import DeliveryWorker

__all__ = [
    "Addressee",
    "CanonicalBytes",
    "Copy",
    "DeliveryWorker",
    "FailureHandler",
    "JobInfo",
    "MaildirRelay",
    "Personalizer",
    "Relay",
    "RelayHealth",
    "RelayUnavailable",
    "SMTPRelay",
    "SendResult",
    "Signer",
    "canonical",
    "make_personalizer",
    "plain_copy",
    "plan_copies",
    "record_relay_bounces",
    "wire_format",
]
