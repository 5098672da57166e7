# SPDX-License-Identifier: Apache-2.0
"""`listserv postfix-maps`: every address served, for Postfix's relay_recipient_maps,
kept in step with the lists by the periodic job."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from listserv import postfix_maps
from listserv.config import Settings
from listserv.context import Context
from tests.admin_helpers import run_cli, write_config


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    return write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")


def test_the_map_lists_every_address_of_every_list(config: Path) -> None:
    result = run_cli(config, "postfix-maps")
    assert result.code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if not line.startswith("#")]
    for suffix in ("", "-request", "-join", "-leave", "-owner", "-bounces", "-confirm"):
        assert f"sm-cop{suffix}@lists.example.gov OK" in lines
    assert "listserv@lists.example.gov OK" in lines
    assert all(line.endswith(" OK") and line.count("@") == 1 for line in lines)


def test_the_file_follows_the_lists(config: Path, tmp_path: Path) -> None:
    target = tmp_path / "postfix" / "listserv_recipients"
    first = run_cli(config, "postfix-maps", "--out", str(target))
    assert first.code == 0 and first.stdout.startswith("wrote")
    again = run_cli(config, "postfix-maps", "--out", str(target))
    assert again.stdout.startswith("unchanged")
    made = run_cli(config, "lists", "create", "records-cop", "--owner", "owner@digital.gov")
    assert made.code == 0, made.stderr
    assert "records-cop@" not in target.read_text()
    run_cli(config, "postfix-maps", "--out", str(target))
    assert "records-cop-leave@lists.example.gov OK" in target.read_text()


def test_the_periodic_job_writes_the_configured_file(
    settings: Settings, ctx_factory, tmp_path: Path
) -> None:
    target = tmp_path / "recipients"
    ctx: Context = ctx_factory()
    ctx = replace(
        ctx, settings=replace(settings, smtp=replace(settings.smtp, recipient_map=target))
    )
    assert postfix_maps.refresh(ctx) == 1
    assert "sm-cop@lists.example.gov OK" in target.read_text()
    assert postfix_maps.refresh(ctx) == 0  # unchanged: not rewritten
