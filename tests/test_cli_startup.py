# SPDX-License-Identifier: Apache-2.0
"""The `listserv` command starts fast: each command loads only its own modules, and
a database already at the newest migration is not migrated again."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from typer.main import get_command

from listserv import db
from listserv.cli import COMMANDS, app, load_command
from tests.admin_helpers import run_cli, write_config


def test_every_command_loads_under_its_own_name() -> None:
    for name, _, _ in COMMANDS:
        assert load_command(name).name == name


def test_help_lists_every_command_in_order() -> None:
    result = CliRunner().invoke(get_command(app), ["--help"], terminal_width=200)
    assert result.exit_code == 0
    commands = result.output.split("Commands", 1)[1]
    shown = re.findall(r"^\W+([a-z][a-z-]*)  ", commands, re.MULTILINE)
    assert shown == [name for name, _, _ in COMMANDS]


def test_a_roster_command_does_not_load_the_service_or_the_web_server() -> None:
    code = (
        "import sys\n"
        "from listserv.cli import load_command\n"
        "load_command('members')\n"
        "print(sorted(m for m in ('listserv.app', 'listserv.web.server', 'listserv.api.app',"
        " 'uvicorn', 'aiosmtpd') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_a_mistyped_command_gets_one_suggestion(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")
    result = run_cli(config, "memberz")
    assert result.code == 2
    assert result.stderr.strip() == (
        "listserv: No such command 'memberz' (did you mean 'members'?); see `listserv --help`"
    )
    nested = run_cli(config, "members", "lizt")
    assert nested.stderr.count("did you mean") == 1


def test_a_group_without_a_command_shows_its_help_and_nothing_else(
    tmp_path: Path, db_url: str
) -> None:
    result = run_cli(write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var"), "members")
    assert result.code == 2
    assert "Usage" in result.stdout + result.stderr
    assert "listserv:" not in result.stderr


def test_the_head_read_from_the_files_is_alembics() -> None:
    script = ScriptDirectory.from_config(db.alembic_config("sqlite://"))
    assert [db.migrations_head()] == script.get_heads()


def test_two_heads_or_an_unreadable_file_defer_to_alembic(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('revision = "a"\ndown_revision = None\n')
    (tmp_path / "b.py").write_text('revision = "b"\ndown_revision = "a"\n')
    assert db.migrations_head(tmp_path) == "b"
    (tmp_path / "c.py").write_text('revision = "c"\ndown_revision = "a"\n')
    assert db.migrations_head(tmp_path) is None
    (tmp_path / "c.py").write_text("revision = oops(\n")
    assert db.migrations_head(tmp_path) is None


@pytest.mark.parametrize("stage", ["empty", "behind", "current"])
def test_at_head_only_when_the_newest_migration_is_applied(db_url: str, stage: str) -> None:
    if stage != "empty":
        db.upgrade(db_url, "0001" if stage == "behind" else "head")
    engine = db.make_engine(db_url)
    try:
        assert db.at_head(engine) is (stage == "current")
    finally:
        engine.dispose()
