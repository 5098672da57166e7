# SPDX-License-Identifier: Apache-2.0
"""Bulk roster changes tell webhooks what single ones do: one event per member joined or left.

`members import`, `members remove` and `members sync` (the acts behind the
CLI and the console) on SQLite and PostgreSQL: every member added is a
`member.joined` delivery and every member removed a `member.left` one, for
each webhook listening on the list or site-wide, with the body a single add
or remove makes; webhooks for other events hear nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from listserv.actors import host_actor
from listserv.acts import members as member_acts
from listserv.acts import webhooks as webhook_acts
from listserv.acts.imports import ImportOptions, import_members
from listserv.acts.sync import remove_members, sync_members
from listserv.context import Context
from listserv.lists import get_list
from listserv.models import MailingList, OutboxState, Webhook, WebhookDelivery
from listserv.roster.files import RosterFile


@pytest.fixture
def ctx(ctx_factory: Callable[..., Context]) -> Context:
    return ctx_factory()


def the_list(ctx: Context, name: str = "sm-cop") -> MailingList:
    mlist = get_list(ctx.session, name)
    assert mlist is not None
    return mlist


def hooks(ctx: Context) -> tuple[Webhook, Webhook, Webhook]:
    """On SM-COP for joins and leaves; site-wide for leaves only; SM-COP for posts only."""
    mlist = the_list(ctx)
    actor = host_actor()
    both = webhook_acts.add_webhook(
        ctx, actor, "https://hooks.example.com/a", ["member.joined", "member.left"], mlist
    )
    leaves = webhook_acts.add_webhook(
        ctx, actor, "https://hooks.example.com/b", ["member.left"], None
    )
    posts = webhook_acts.add_webhook(
        ctx, actor, "https://hooks.example.com/c", ["post.accepted"], mlist
    )
    ctx.session.commit()
    return both, leaves, posts


def deliveries(ctx: Context, hook: Webhook, event: str) -> list[dict[str, Any]]:
    """The bodies queued for one webhook and event, as JSON, in the order queued."""
    rows = ctx.session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == hook.id, WebhookDelivery.event == event)
        .order_by(WebhookDelivery.id)
    ).all()
    assert all(r.state == OutboxState.QUEUED and r.expires_at > r.created_at for r in rows)
    return [json.loads(r.body) for r in rows]


def addresses(bodies: list[dict[str, Any]]) -> list[str]:
    return sorted(b["data"]["address"] for b in bodies)


@pytest.mark.parametrize("audit_each", [True, False])
def test_import_queues_member_joined_for_every_member_added(ctx: Context, audit_each: bool) -> None:
    both, leaves, posts = hooks(ctx)
    mlist = the_list(ctx)
    single = member_acts.add_member(ctx, host_actor(), mlist, "single@agency.gov", name="Sol")
    ctx.session.commit()
    text = "\n".join(
        [
            "Ann Lee <ann@agency.gov>",
            "bo@army.mil",
            "single@agency.gov",  # already a member: no event
            "someone@example.com",  # not eligible: no event
        ]
    )
    plan = import_members(
        ctx, host_actor(), mlist, RosterFile(text), ImportOptions(audit_each=audit_each)
    )
    ctx.session.commit()
    assert len(plan.to_add) == 2
    joined = deliveries(ctx, both, "member.joined")
    assert addresses(joined) == ["ann@agency.gov", "bo@army.mil", single.address]
    [one] = [b for b in joined if b["data"]["address"] == single.address]
    [ann] = [b for b in joined if b["data"]["address"] == "ann@agency.gov"]
    # The body a bulk add makes is the one a single add makes.
    assert set(ann) == set(one) and set(ann["data"]) == set(one["data"])
    assert ann["type"] == "member.joined" and ann["list"] == "sm-cop"
    assert ann["data"]["name"] == "Ann Lee"
    assert len({b["id"] for b in joined}) == len(joined)  # each event its own id
    assert deliveries(ctx, leaves, "member.joined") == []
    assert deliveries(ctx, posts, "member.joined") == []


def test_remove_queues_member_left_for_every_member_removed(ctx: Context) -> None:
    both, leaves, _ = hooks(ctx)
    mlist = the_list(ctx)
    import_members(
        ctx,
        host_actor(),
        mlist,
        RosterFile("a@agency.gov\nb@agency.gov\nc@agency.gov"),
        ImportOptions(),
    )
    ctx.session.commit()
    removal = remove_members(
        ctx, host_actor(), mlist, RosterFile("a@agency.gov\nc@agency.gov\nnobody@agency.gov"),
        reason="left the agency",
    )  # fmt: skip
    ctx.session.commit()
    assert sorted(removal.removed) == ["a@agency.gov", "c@agency.gov"]
    for hook in (both, leaves):
        left = deliveries(ctx, hook, "member.left")
        assert addresses(left) == ["a@agency.gov", "c@agency.gov"]
        assert {b["data"]["reason"] for b in left} == {"left the agency"}


def test_sync_queues_joins_and_leaves(ctx: Context) -> None:
    both, leaves, _ = hooks(ctx)
    mlist = the_list(ctx)
    import_members(
        ctx, host_actor(), mlist, RosterFile("stay@agency.gov\ngo@agency.gov"), ImportOptions()
    )
    ctx.session.commit()
    before = len(deliveries(ctx, both, "member.joined"))
    report = sync_members(
        ctx, host_actor(), mlist, "stay@agency.gov\nnew@agency.gov", "plain", ImportOptions()
    )
    ctx.session.commit()
    assert report.removal.removed == ["go@agency.gov"]
    joined = deliveries(ctx, both, "member.joined")
    assert addresses(joined[before:]) == ["new@agency.gov"]
    assert addresses(deliveries(ctx, both, "member.left")) == ["go@agency.gov"]
    assert addresses(deliveries(ctx, leaves, "member.left")) == ["go@agency.gov"]


def test_a_large_import_queues_one_delivery_per_member_and_listener(ctx: Context) -> None:
    both, _, _ = hooks(ctx)
    mlist = the_list(ctx)
    text = "\n".join(f"member{i:05d}@agency.gov" for i in range(12_000))
    import_members(
        ctx, host_actor(), mlist, RosterFile(text, "plain"), ImportOptions(audit_each=False)
    )
    ctx.session.commit()
    joined = deliveries(ctx, both, "member.joined")
    assert len(joined) == 12_000
    assert addresses(joined)[0] == "member00000@agency.gov"
    assert addresses(joined)[-1] == "member11999@agency.gov"
