# SPDX-License-Identifier: Apache-2.0
"""`members list` in a terminal and in a pipe, `members sync`, `members remove --file`,
and the CLI's one-line usage errors."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from listserv.cli.member_listing import write_table
from tests.admin_helpers import run_cli, write_config


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    return write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")


def add(config: Path, *addresses: str) -> None:
    for address in addresses:
        result = run_cli(config, "members", "add", "sm-cop", address, "--no-welcome")
        assert result.code == 0, result.stderr


def roster(config: Path) -> set[str]:
    rows = run_cli(config, "members", "list", "sm-cop", "--role", "member", "--json").json()
    return {r["address"] for r in rows}


def test_members_list_into_a_pipe_prints_one_address_per_line(config: Path) -> None:
    add(config, "ann@agency.gov", "bob@agency.gov")
    env = {**os.environ, "LISTSERV_CONFIG": str(config)}
    env.pop("LISTSERV_DATABASE_URL", None)
    piped = subprocess.run(
        f"'{sys.executable}' -m listserv members list sm-cop | head -1",
        shell=True,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == "ann@agency.gov\n"
    plain = run_cli(config, "members", "list", "sm-cop")  # not a terminal: plain
    assert plain.stdout.splitlines()[:2] == ["ann@agency.gov", "bob@agency.gov"]
    csv_out = run_cli(config, "members", "list", "sm-cop", "--format", "csv").stdout
    assert csv_out.splitlines()[0] == "address,name,title,role,delivery,status,joined"
    assert csv_out.splitlines()[1].startswith("ann@agency.gov,,,member,mail,enabled,")
    table = run_cli(config, "members", "list", "sm-cop", "--format", "table").stdout
    assert table.splitlines()[0].split() == [
        "Address", "Name", "Title", "Role", "Delivery", "Status", "Joined",
    ]  # fmt: skip


def test_owners_are_listed_without_a_members_delivery(config: Path) -> None:
    rows = run_cli(config, "members", "list", "sm-cop", "--json").json()
    owner = next(r for r in rows if r["role"] == "owner")
    assert owner["delivery"] == "" and owner["status"] == ""
    shown = run_cli(config, "members", "show", "sm-cop", owner["address"], "--json")
    assert shown.code == 0, shown.stderr
    assert shown.json()[0]["role"] == "owner"


def test_the_table_never_cuts_an_address_in_80_columns() -> None:
    address = "firstname.middlename.lastname.contractor@subagency.agency.gov"
    out = io.StringIO()
    row = {
        "address": address,
        "name": "A Rather Long Display Name Indeed",
        "title": "Supervisory Digital Communications Specialist",
        "role": "member",
        "delivery": "mail",
        "status": "enabled",
        "joined": datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
    }
    columns = ("address", "name", "title", "role", "delivery", "status", "joined")
    assert write_table([row], columns, out, address_width=len(address), width=80) == 1
    assert address in out.getvalue()
    assert "…" in out.getvalue()  # the name and title gave way instead


def test_sync_adds_and_removes_exactly_the_difference(config: Path, tmp_path: Path) -> None:
    add(config, "stay@agency.gov", "leave.one@agency.gov", "leave.two@navy.mil")
    before_owners = {
        r["address"]
        for r in run_cli(config, "members", "list", "sm-cop", "--json").json()
        if r["role"] != "member"
    }
    path = tmp_path / "roster.txt"
    path.write_text("STAY@agency.gov\nnew.one@agency.gov\nnew.two@army.mil\n")
    dry = run_cli(config, "members", "sync", "sm-cop", str(path), "--dry-run", "--json")
    assert dry.code == 0, dry.stderr
    assert sorted(dry.json()["removed_addresses"]) == ["leave.one@agency.gov", "leave.two@navy.mil"]
    assert roster(config) == {"stay@agency.gov", "leave.one@agency.gov", "leave.two@navy.mil"}
    done = run_cli(config, "members", "sync", "sm-cop", str(path), "--json")
    assert done.code == 0, done.stderr
    assert done.json()["added"] == 2 and done.json()["removed"] == 2
    assert roster(config) == {"stay@agency.gov", "new.one@agency.gov", "new.two@army.mil"}
    owners = {
        r["address"]
        for r in run_cli(config, "members", "list", "sm-cop", "--json").json()
        if r["role"] != "member"
    }
    assert owners == before_owners
    audit = run_cli(config, "audit", "--action", "member-remove", "--json").json()
    assert {e["target"] for e in audit} >= {"leave.one@agency.gov", "leave.two@navy.mil"}

    path.write_text("stay@agency.gov\nsomeone@gmail.com\n")
    refused = run_cli(config, "members", "sync", "sm-cop", str(path))
    assert refused.code == 3, refused.stderr
    assert "someone@gmail.com" in refused.stdout
    assert roster(config) == {"stay@agency.gov"}

    path.write_text("\n")
    empty = run_cli(config, "members", "sync", "sm-cop", str(path))
    assert empty.code == 1 and "would remove every member" in empty.stderr
    assert roster(config) == {"stay@agency.gov"}


def test_remove_with_a_file(config: Path, tmp_path: Path) -> None:
    add(config, "ann@agency.gov", "bob@agency.gov", "cat@agency.gov")
    path = tmp_path / "gone.csv"
    path.write_text("address\nann@agency.gov\nBOB@agency.gov\nnobody@agency.gov\n")
    result = run_cli(config, "members", "remove", "sm-cop", "--file", str(path), "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    assert sorted(report["removed"]) == ["ann@agency.gov", "bob@agency.gov"]
    assert report["not_members"] == ["nobody@agency.gov"]
    assert roster(config) == {"cat@agency.gov"}
    both = run_cli(config, "members", "remove", "sm-cop", "cat@agency.gov", "--file", str(path))
    assert both.code == 1 and both.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [("members", "list"), ("members", "lst"), ("members", "list", "sm-cop", "--role")],
)
def test_usage_errors_are_one_line(config: Path, args: tuple[str, ...]) -> None:
    result = run_cli(config, *args)
    assert result.code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("listserv: ")
    assert "--help" in result.stderr and "╭" not in result.stderr
