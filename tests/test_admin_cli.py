# SPDX-License-Identifier: Apache-2.0
"""The host commands for owners: lists, owners, audit; exit codes and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from listserv.db import make_engine, make_sessionmaker
from listserv.models import Member
from listserv.passwords import verify_password
from tests.admin_helpers import CliResult, run_cli, write_config


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Path:
    return write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")


def one_line_error(result: CliResult, text: str) -> None:
    assert result.code != 0, result.stdout
    assert result.stderr.startswith("listserv: ") and result.stderr.count("\n") == 1, result.stderr
    assert text in result.stderr, result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["lists"],
        ["lists", "create"],
        ["lists", "set"],
        ["lists", "delete"],
        ["members", "set"],
        ["members", "show"],
        ["members", "import"],
        ["members", "export"],
        ["bans", "add"],
        ["owners", "password"],
        ["audit"],
        ["archive", "export"],
        ["archive", "purge"],
    ],
)
def test_every_command_has_help(config: Path, command: list[str]) -> None:
    result = run_cli(config, *command, "--help")
    assert result.code == 0 and "Usage" in result.stdout


def test_lists_create_then_set_with_validation_and_audit(config: Path) -> None:
    created = run_cli(
        config,
        "lists",
        "create",
        "Comms-COP",
        "--display-name",
        "Comms COP",
        "--description",
        "Communicators",
        "--owner",
        "lead@agency.gov",
        "--moderator",
        "mod@agency.gov",
        "--eligible-domain",
        ".gov",
        "--join-phrase",
        "Join Comms",
        "--subject-prefix",
        "[COMMS]",
    )
    assert created.code == 0, created.stderr
    shown = run_cli(config, "lists", "show", "comms-cop", "--json").json()[0]
    assert (shown["display_name"], shown["eligible_domains"], shown["join_phrases"]) == (
        "Comms COP",
        ["gov"],
        ["Join Comms"],
    )
    assert shown["from_config"] is False
    owners = run_cli(config, "owners", "list", "comms-cop", "--json").json()
    assert [(o["address"], o["role"]) for o in owners] == [
        ("lead@agency.gov", "owner"),
        ("mod@agency.gov", "moderator"),
    ]

    changed = run_cli(
        config,
        "lists",
        "set",
        "comms-cop",
        "moderated=yes",
        "non_member_action=REJECT",
        "retention_days=365",
        "eligible_domains=gov,mil,fed.us",
        "review_policy=members",
    )
    assert changed.code == 0, changed.stderr
    assert "retention_days 0 → 365" in changed.stdout
    shown = run_cli(config, "lists", "show", "comms-cop", "--json").json()[0]
    assert (shown["moderated"], shown["non_member_action"], shown["retention_days"]) == (
        True,
        "reject",
        365,
    )
    assert shown["eligible_domains"] == ["gov", "mil", "fed.us"]
    unchanged = run_cli(config, "lists", "set", "comms-cop", "moderated=true")
    assert "nothing changed" in unchanged.stdout
    [event] = run_cli(
        config, "audit", "--list", "comms-cop", "--action", "list-change", "--json"
    ).json()
    assert event["detail"]["before"]["retention_days"] == 0
    assert event["detail"]["after"]["retention_days"] == 365
    assert (event["channel"], event["auth"]) == ("cli", "host")

    for args, message in [
        (["lists", "set", "comms-cop", "non_member_action=maybe"], "must be one of hold"),
        (["lists", "set", "comms-cop", "retention_days=-1"], "0 or more"),
        (["lists", "set", "comms-cop", "retention_days=a year"], "whole number"),
        (["lists", "set", "comms-cop", "confirm_expiry_hours=0"], "greater than zero"),
        (["lists", "set", "comms-cop", "legal_hold=perhaps"], "true or false"),
        (["lists", "set", "comms-cop", "owners=x@agency.gov"], "owners are managed"),
        (["lists", "set", "comms-cop", "nonsense"], "is not key=value"),
        (["lists", "set", "comms-cop", "subject_prefix=a\nb"], "line breaks"),
        (["lists", "set", "no-such", "moderated=true"], "no list named"),
        (["lists", "create", "comms-cop", "--owner", "x@agency.gov"], "already exists"),
        (["lists", "create", "x-request", "--owner", "x@agency.gov"], "reserved suffix"),
        (["lists", "create", "_bad", "--owner", "x@agency.gov"], "is not a list name"),
        (["lists", "create", "listserv", "--owner", "x@agency.gov"], "site command address"),
        (["lists", "create", "ownerless"], "at least one --owner"),
        (["lists", "create", "x", "--owner", "not-an-address"], "not an email address"),
    ]:
        one_line_error(run_cli(config, *args), message)
    # A refused `set` changes nothing, even the valid assignments beside it.
    run_cli(config, "lists", "set", "comms-cop", "moderated=false", "retention_days=-5")
    assert run_cli(config, "lists", "show", "comms-cop", "--json").json()[0]["moderated"] is True


def test_lists_set_on_a_configured_list_survives_restarts_until_the_file_changes(
    config: Path, db_url: str, tmp_path: Path
) -> None:
    assert (
        run_cli(config, "lists", "set", "sm-cop", "retention_days=730", "moderated=true").code == 0
    )
    # Every command re-reads the configuration (as `serve` does at start).
    shown = run_cli(config, "lists", "show", "sm-cop", "--json").json()[0]
    assert (shown["retention_days"], shown["moderated"]) == (730, True)
    # The operator edits the file: the key the file changed wins, the other stays.
    write_config(config, db_url, tmp_path / "var", list={"moderated": False, "retention_days": 90})
    shown = run_cli(config, "lists", "show", "sm-cop", "--json").json()[0]
    assert (shown["retention_days"], shown["moderated"]) == (90, True)


def test_owners_add_remove_and_password(config: Path, db_url: str) -> None:
    assert (
        run_cli(config, "owners", "add", "sm-cop", "deputy@agency.gov", "--name", "Deputy").code
        == 0
    )
    assert run_cli(config, "owners", "add", "sm-cop", "mod@agency.gov", "--moderator").code == 0
    one_line_error(
        run_cli(config, "owners", "add", "sm-cop", "deputy@agency.gov"), "already an owner"
    )
    one_line_error(run_cli(config, "owners", "add", "sm-cop", "nope"), "not an email address")

    secret = "correct horse battery staple"
    typed = run_cli(
        config,
        "owners",
        "password",
        "sm-cop",
        "deputy@agency.gov",
        input=f"{secret}\n{secret}\n",
    )
    assert typed.code == 0, typed.stderr
    assert secret not in typed.stdout
    mismatch = run_cli(
        config,
        "owners",
        "password",
        "sm-cop",
        "deputy@agency.gov",
        input=f"{secret}\nsomething else entirely\n",
    )
    assert mismatch.code != 0
    short = run_cli(
        config,
        "owners",
        "password",
        "sm-cop",
        "deputy@agency.gov",
        "--password-stdin",
        input="short\n",
    )
    one_line_error(short, "at least 12 characters")
    piped = run_cli(
        config,
        "owners",
        "password",
        "sm-cop",
        "mod@agency.gov",
        "--moderator",
        "--password-stdin",
        input="another long passphrase\n",
    )
    assert piped.code == 0, piped.stderr

    engine = make_engine(db_url)
    with make_sessionmaker(engine)() as session:
        deputy = session.scalar(select(Member).where(Member.address_key == "deputy@agency.gov"))
        assert deputy is not None and deputy.password_hash is not None
        assert deputy.password_hash.startswith("$argon2")
        assert verify_password(deputy.password_hash, secret)
    engine.dispose()
    listed = run_cli(config, "owners", "list", "sm-cop", "--json").json()
    assert {(o["address"], o["role"], o["password"], o["configured"]) for o in listed} == {
        ("owner@digital.gov", "owner", False, True),
        ("deputy@agency.gov", "owner", True, False),
        ("mod@agency.gov", "moderator", True, False),
    }
    audit = run_cli(config, "audit", "--action", "owner-password-set", "--json").json()
    assert [a["target"] for a in audit] == ["deputy@agency.gov", "mod@agency.gov"]
    assert secret not in str(audit) and "argon2" not in str(audit)

    one_line_error(
        run_cli(config, "owners", "remove", "sm-cop", "owner@digital.gov"),
        "named in the configuration file",
    )
    assert run_cli(config, "owners", "remove", "sm-cop", "deputy@agency.gov").code == 0
    assert (
        run_cli(
            config, "owners", "password", "sm-cop", "mod@agency.gov", "--moderator", "--clear"
        ).code
        == 0
    )
    removed = run_cli(config, "audit", "--action", "owner-remove", "--json").json()
    assert removed[0]["detail"]["before"]["address"] == "deputy@agency.gov"


def test_the_last_owner_cannot_be_removed(config: Path) -> None:
    run_cli(config, "lists", "create", "solo", "--owner", "only@agency.gov")
    one_line_error(run_cli(config, "owners", "remove", "solo", "only@agency.gov"), "last owner")


def test_audit_filters_and_json(config: Path) -> None:
    run_cli(config, "members", "add", "sm-cop", "jane@agency.gov", "--no-welcome")
    run_cli(config, "members", "set", "sm-cop", "jane@agency.gov", "--delivery", "nomail")
    run_cli(config, "bans", "add", "sm-cop", "*@spam.example")
    run_cli(config, "members", "remove", "sm-cop", "jane@agency.gov")
    everything = run_cli(config, "audit", "--list", "sm-cop", "--json").json()
    actions = [e["action"] for e in everything]
    assert actions[-4:] == ["member-add", "member-change", "ban-add", "member-remove"]
    assert all(e["channel"] in ("cli", "system") for e in everything)
    jane = run_cli(config, "audit", "--target", "JANE@agency.gov", "--json").json()
    assert [e["action"] for e in jane] == ["member-add", "member-change", "member-remove"]
    change = jane[1]["detail"]
    assert (change["before"]["delivery_mode"], change["after"]["delivery_mode"]) == (
        "regular",
        "nomail",
    )
    actor = jane[0]["actor"]
    assert run_cli(config, "audit", "--actor", actor.upper(), "--json").json()[-1]["action"] == (
        "member-remove"
    )
    assert run_cli(config, "audit", "--since", "2999-01-01", "--json").json() == []
    assert len(run_cli(config, "audit", "--until", "2000-01-01", "--json").json()) == 0
    assert len(run_cli(config, "audit", "--limit", "2", "--json").json()) == 2
    assert run_cli(config, "audit", "--channel", "cli", "--action", "ban-add", "--json").json()
    table = run_cli(config, "audit", "--list", "sm-cop")
    assert "delivery_mode: regular → nomail" in table.stdout
    one_line_error(run_cli(config, "audit", "--since", "yesterday"), "is not a date")
