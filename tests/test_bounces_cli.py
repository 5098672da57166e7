# SPDX-License-Identifier: Apache-2.0
"""`listserv bounces list|events|enable`: the owners' view of bouncing members."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from listserv.cli import main
from listserv.db import make_engine, make_sessionmaker, upgrade
from listserv.lists import sync_from_config
from listserv.models import AuditEvent, DeliveryStatus, Member
from listserv.templates import Templates
from tests.admin_helpers import CliResult, write_config
from tests.conftest import make_settings
from tests.test_bounces import DAY0, JANE, World, bounce_on, disable

BOB = "bob@agency.gov"


def run_cli(config: Path, *args: str) -> CliResult:
    """`listserv ARGS…` in-process through listserv.cli.main, with LISTSERV_CONFIG=config."""
    runner = CliRunner()
    env = {"LISTSERV_CONFIG": str(config), "LISTSERV_DATABASE_URL": None}
    with runner.isolation(env=env) as streams:  # type: ignore[arg-type]
        argv, sys.argv = sys.argv, ["listserv", *args]
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = argv
            sys.stdout.flush()  # the isolation's text wrappers buffer until flushed
            sys.stderr.flush()
        stdout = streams[0].getvalue().decode("utf-8", "replace")
        stderr = streams[1].getvalue().decode("utf-8", "replace")
    return CliResult(code, stdout, stderr)


@pytest.fixture
def setup(db_url: str, tmp_path: Path) -> Iterator[tuple[Path, World]]:
    """A config file for the CLI and a world over the same database: Jane disabled, Bob at 1."""
    var_dir = tmp_path / "var"
    config = write_config(tmp_path / "listserv.toml", db_url, var_dir)
    settings = make_settings(db_url, var_dir)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    with factory() as session, session.begin():
        sync_from_config(session, settings)
    world = World(settings, factory, Templates())
    world.add(JANE)
    world.add(BOB)
    world.add("carol@agency.gov")
    disable(world)
    bounce_on(world, 4, BOB, hour=1)
    world.score(DAY0 + timedelta(days=4, hours=2))
    try:
        yield config, world
    finally:
        engine.dispose()


def test_list_shows_scores_last_bounce_status_and_warnings(setup: tuple[Path, World]) -> None:
    config, _ = setup
    result = run_cli(config, "bounces", "list", "sm-cop", "--json")
    assert result.code == 0, result.stderr
    rows = result.json()
    assert [(r["address"], r["score"], r["status"], r["warnings"]) for r in rows] == [
        (JANE, 5.0, "disabled-bouncing", 0),
        (BOB, 1.0, "enabled", 0),
    ]
    assert rows[1]["last_bounce"].startswith((DAY0 + timedelta(days=4, hours=1)).isoformat()[:16])
    table = run_cli(config, "bounces", "list", "sm-cop")
    assert table.code == 0 and JANE in table.stdout and "carol" not in table.stdout


def test_events_lists_recent_bounces_newest_first(setup: tuple[Path, World]) -> None:
    config, _ = setup
    rows = run_cli(config, "bounces", "events", "sm-cop", "--json").json()
    assert len(rows) == 6
    assert rows[0]["address"] == BOB
    assert {(r["kind"], r["source"], r["status"]) for r in rows} == {("permanent", "verp", "5.1.1")}
    only_bob = run_cli(
        config, "bounces", "events", "sm-cop", "--address", "BOB@agency.gov", "--json"
    )
    assert [r["address"] for r in only_bob.json()] == [BOB]
    assert (
        run_cli(config, "bounces", "events", "sm-cop", "--limit", "2", "--json").json()[1][
            "address"
        ]
        == JANE
    )


def test_enable_turns_delivery_back_on_and_is_audited(setup: tuple[Path, World]) -> None:
    config, world = setup
    result = run_cli(config, "bounces", "enable", "sm-cop", "Jane@Agency.gov")
    assert result.code == 0, result.stderr
    assert "delivery enabled" in result.stdout
    member = world.member(JANE)
    assert member is not None
    assert (member.delivery_status, member.bounce_score, member.bounce_warnings_sent) == (
        DeliveryStatus.ENABLED,
        0.0,
        0,
    )
    with world.factory() as session:
        audit = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "member-change", AuditEvent.channel == "cli")
            .order_by(AuditEvent.id.desc())
        ).first()
        assert audit is not None
        assert audit.target == JANE and audit.actor.endswith("@host") and audit.auth == "host"
        assert audit.detail["after"]["delivery_status"] == "enabled"
    rows = run_cli(config, "bounces", "list", "sm-cop", "--json").json()
    assert [r["address"] for r in rows] == [BOB]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("enable", "sm-cop", "nobody@agency.gov"), "nobody@agency.gov is not a member of SM-COP"),
        (("list", "no-such-list"), "no list named 'no-such-list'"),
        (("events", "sm-cop", "--limit", "0"), "--limit must be greater than zero"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(
    setup: tuple[Path, World], args: tuple[str, ...], message: str
) -> None:
    config, _ = setup
    result = run_cli(config, "bounces", *args)
    assert result.code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"listserv: {message}")


def test_enable_refuses_a_member_suspended_for_conduct(setup: tuple[Path, World]) -> None:
    config, world = setup
    with world.factory() as session, session.begin():
        member = session.scalars(select(Member).where(Member.address_key == BOB)).one()
        member.delivery_status = DeliveryStatus.SUSPENDED
    result = run_cli(config, "bounces", "enable", "sm-cop", BOB)
    assert result.code == 1
    assert "is suspended, not disabled by bounces" in result.stderr
