# SPDX-License-Identifier: Apache-2.0
"""What every CLI command shares: settings, a database session, output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from listserv import db
from listserv.actors import Actor, host_actor
from listserv.config import Settings, load_settings
from listserv.context import Context
from listserv.lists import get_list
from listserv.models import MailingList
from listserv.startup import make_templates, prepare_database

# Wide when piped, so tables in files and CI logs are not cut at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True)


class CLIError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"listserv: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


def settings() -> Settings:
    return load_settings()


@contextmanager
def open_context() -> Iterator[Context]:
    """A committed-on-success session over an up-to-date database."""
    cfg = settings()
    engine, factory = prepare_database(cfg)
    try:
        with db.session_scope(factory) as session:
            yield Context(
                session=session,
                settings=cfg,
                templates=make_templates(cfg),
                source="host",
            )
    finally:
        engine.dispose()


def require_list(session: Session, name: str) -> MailingList:
    mlist = get_list(session, name)
    if mlist is None:
        raise CLIError(f"no list named {name!r} (see `listserv lists list`)")
    return mlist


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def emit(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    as_json: bool,
    title: str | None = None,
) -> None:
    """Rows as a Rich table, or as a JSON array of objects with --json."""
    if as_json:
        sys.stdout.write(
            json.dumps(
                [{k: _plain(v) for k, v in r.items()} for r in rows], indent=2, ensure_ascii=False
            )
            + "\n"
        )
        return
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column.replace("_", " ").title())
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(table)
    if not rows:
        console.print("(none)")


def actor() -> Actor:
    """The operator at this shell: every list, audited as `user@host` by `host`."""
    return host_actor()
