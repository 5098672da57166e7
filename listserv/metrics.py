# SPDX-License-Identifier: Apache-2.0
"""`/metrics`: what an operator graphs and alerts on, in the Prometheus text format.

Counts that live in the database are read when Prometheus scrapes, by a
custom collector, not kept in process memory: several hosts sharing one
PostgreSQL database then report the same numbers, and a restart loses
nothing. Each scrape is a handful of indexed aggregate queries.

- `listserv_messages_accepted_total`, `…_processed_total`, `…_failed_total`:
  inbound messages stored, processed, and kept as failed;
- `listserv_inbound_messages{status}`: the inbound queue by status;
- `listserv_outbox_recipients{state}`: outgoing recipients by Postfix state
  (recipient rows plus the recipients of bulk batches);
- `listserv_outbox_oldest_deferred_age_seconds`: how long the oldest message
  with a deferred recipient has been waiting;
- `listserv_bounce_events_total{kind}`: bounce events by kind;
- `listserv_limit_trips_total{limit}`: limits tripped at the doors (audited).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from listserv.models import (
    AuditEvent,
    BounceEvent,
    InboundMessage,
    InboundStatus,
    OutboxBatch,
    OutboxJob,
    OutboxRecipient,
    OutboxState,
    utcnow,
)

#: The media type of the text format Prometheus scrapes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class DatabaseCollector(Collector):
    """Reads every database-backed metric at scrape time."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def collect(self) -> Iterator[Metric]:
        with self._factory() as session:
            yield from self._inbound(session)
            yield from self._outbox(session)
            yield from self._bounces(session)
            yield from self._trips(session)

    def _inbound(self, session: Session) -> Iterator[Metric]:
        rows = session.execute(
            select(InboundMessage.status, func.count()).group_by(InboundMessage.status)
        ).all()
        by_status = {str(status): int(n) for status, n in rows}
        accepted = CounterMetricFamily(
            "listserv_messages_accepted", "Messages intake stored and acknowledged with 250."
        )
        accepted.add_metric([], sum(by_status.values()))
        processed = CounterMetricFamily(
            "listserv_messages_processed", "Inbound messages the processing stage finished."
        )
        processed.add_metric(
            [], by_status.get(InboundStatus.DONE, 0) + by_status.get(InboundStatus.IGNORED, 0)
        )
        failed = CounterMetricFamily(
            "listserv_messages_failed", "Inbound messages kept as failed (listserv inbound list)."
        )
        failed.add_metric([], by_status.get(InboundStatus.FAILED, 0))
        queue = GaugeMetricFamily(
            "listserv_inbound_messages", "Inbound messages by status.", labels=["status"]
        )
        for status in InboundStatus:
            queue.add_metric([status.value], by_status.get(status, 0))
        yield from (accepted, processed, failed, queue)

    def _outbox(self, session: Session) -> Iterator[Metric]:
        counts = {state.value: 0 for state in OutboxState}
        for state, n in session.execute(
            select(OutboxRecipient.state, func.count()).group_by(OutboxRecipient.state)
        ):
            counts[str(state)] = counts.get(str(state), 0) + int(n)
        for state, n in session.execute(
            select(OutboxBatch.state, func.sum(OutboxBatch.recipient_count)).group_by(
                OutboxBatch.state
            )
        ):
            counts[str(state)] = counts.get(str(state), 0) + int(n or 0)
        by_state = GaugeMetricFamily(
            "listserv_outbox_recipients", "Outgoing recipients by state.", labels=["state"]
        )
        for name, n in sorted(counts.items()):
            by_state.add_metric([name], n)
        yield by_state
        oldest = [
            session.scalar(
                select(func.min(OutboxJob.created_at))
                .join(table, table.job_id == OutboxJob.id)
                .where(table.state == OutboxState.DEFERRED)
            )
            for table in (OutboxRecipient, OutboxBatch)
        ]
        waiting = [when for when in oldest if when is not None]
        age = GaugeMetricFamily(
            "listserv_outbox_oldest_deferred_age_seconds",
            "Age of the oldest message with a deferred recipient (0 when none is deferred).",
        )
        age.add_metric([], max((utcnow() - min(waiting)).total_seconds(), 0.0) if waiting else 0)
        yield age

    def _bounces(self, session: Session) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "listserv_bounce_events", "Bounce events recorded, by kind.", labels=["kind"]
        )
        for kind, n in session.execute(
            select(BounceEvent.kind, func.count()).group_by(BounceEvent.kind)
        ):
            family.add_metric([str(kind)], int(n))
        yield family

    def _trips(self, session: Session) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "listserv_limit_trips",
            "Times a limit at a door tripped (each trip is audited).",
            labels=["limit"],
        )
        for limit, n in session.execute(
            select(AuditEvent.outcome, func.count())
            .where(AuditEvent.action == "limit-tripped")
            .group_by(AuditEvent.outcome)
        ):
            family.add_metric([str(limit)], int(n))
        yield family


def make_registry(factory: sessionmaker[Session]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(factory))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The text format for one scrape (runs the database queries: call it in a thread)."""
    return generate_latest(registry)
