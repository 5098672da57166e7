# SPDX-License-Identifier: Apache-2.0
"""Who received it: the roster at a past moment, replayed from the membership history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from listserv import roster
from listserv.acts import conduct as conduct_acts
from listserv.context import Context
from listserv.lists import get_list
from listserv.models import DeliveryMode, Role
from tests.actors import as_actor
from tests.admin_helpers import run_cli, write_config

T0 = datetime(2025, 1, 6, 15, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_members_at_follows_joins_leaves_and_delivery_changes(
    ctx_factory: Callable[..., Context], db_url: str, tmp_path: Path
) -> None:
    ctx = ctx_factory(now=at(0))
    mlist = get_list(ctx.session, "sm-cop")
    assert mlist is not None
    s = ctx.session
    ann = roster.add_member(s, mlist, "ann@agency.gov", now=at(1), actor=as_actor("test", "email"))
    bob = roster.add_member(s, mlist, "bob@army.mil", now=at(2), actor=as_actor("test", "email"))
    roster.add_member(s, mlist, "cat@navy.mil", now=at(3), actor=as_actor("test", "cli"))
    roster.change_member(
        s, mlist, bob, {"delivery_mode": DeliveryMode.NOMAIL}, now=at(4), actor=as_actor("test")
    )
    roster.remove_member(s, mlist, ann, now=at(5), actor=as_actor("test"))
    roster.change_member(
        s, mlist, bob, {"delivery_mode": DeliveryMode.REGULAR}, now=at(6), actor=as_actor("test")
    )
    ann = roster.add_member(s, mlist, "Ann@Agency.gov", now=at(7), actor=as_actor("test", "web"))
    ctx.now = at(7.5)
    conduct_acts.suspend(
        ctx, as_actor("o@digital.gov", "cli", "host"), mlist, ann.address, until=at(100), note=""
    )
    roster.add_member(
        s, mlist, "owner2@agency.gov", role=Role.OWNER, now=at(8), actor=as_actor("test")
    )
    s.commit()

    def receiving(moment: datetime) -> list[str]:
        return [e.address_key for e in roster.members_at(s, mlist, moment)]

    assert receiving(at(0.5)) == []
    assert receiving(at(1)) == ["ann@agency.gov"]  # at the very moment of joining
    assert receiving(at(3.5)) == ["ann@agency.gov", "bob@army.mil", "cat@navy.mil"]
    assert receiving(at(4.5)) == ["ann@agency.gov", "cat@navy.mil"]  # bob: nomail
    assert receiving(at(5.5)) == ["cat@navy.mil"]  # ann left
    assert receiving(at(6.5)) == ["bob@army.mil", "cat@navy.mil"]  # bob: mail again
    assert receiving(at(7.2)) == ["ann@agency.gov", "bob@army.mil", "cat@navy.mil"]
    assert receiving(at(9)) == ["bob@army.mil", "cat@navy.mil"]  # ann suspended; owners never
    # Everyone on the roster, receiving or not.
    everyone = roster.members_at(s, mlist, at(4.5), receiving_only=False)
    assert [(e.address_key, e.delivery_mode) for e in everyone] == [
        ("ann@agency.gov", "regular"),
        ("bob@army.mil", "nomail"),
        ("cat@navy.mil", "regular"),
    ]
    s.close()

    config = write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")
    for moment, expected in [
        ("2025-01-06T19:30:00Z", ["ann@agency.gov", "cat@navy.mil"]),
        ("2025-01-06T15:30:00-05:00", ["cat@navy.mil"]),  # 20:30 UTC: ann had left
        ("2025-01-06T21:30", ["bob@army.mil", "cat@navy.mil"]),  # no offset: UTC
        ("2025-01-06", []),
    ]:
        result = run_cli(config, "members", "list", "sm-cop", "--at", moment, "--json")
        assert result.code == 0, result.stderr
        assert [m["address"].lower() for m in result.json()] == expected, moment
    bad = run_cli(config, "members", "list", "sm-cop", "--at", "last tuesday")
    assert bad.code == 1 and "is not a date" in bad.stderr
