# SPDX-License-Identifier: Apache-2.0
"""`listserv db upgrade` and `listserv db current`."""

from __future__ import annotations

import typer

from listserv import db
from listserv.cli.common import console, settings

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply the database migrations (creates the database if needed)."""
    cfg = settings()
    db.upgrade(cfg.database_url, revision)
    engine = db.make_engine(cfg.database_url)
    try:
        console.print(f"database at revision {db.current_revision(engine)}", highlight=False)
    finally:
        engine.dispose()


@app.command("current")
def current() -> None:
    """Show the database's schema revision."""
    cfg = settings()
    engine = db.make_engine(cfg.database_url)
    try:
        console.print(str(db.current_revision(engine) or "none (run `listserv db upgrade`)"))
    finally:
        engine.dispose()
