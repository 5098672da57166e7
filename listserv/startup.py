# SPDX-License-Identifier: Apache-2.0
"""What every process does before it serves: migrate, seed the configured lists, load templates.

The mail service, the web-only host (`listserv web`) and every CLI command
start the same way, so a CLI run against a fresh database finds it migrated
and a list named in the configuration exists before anyone writes to it.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from listserv import db, lists
from listserv.config import Settings
from listserv.templates import Templates


def prepare_database(settings: Settings) -> tuple[Engine, sessionmaker[Session]]:
    """Migrate to head (unless already there) and seed the configured lists."""
    engine = db.make_engine(settings.database_url)
    if not db.at_head(engine):
        db.upgrade(settings.database_url)
    factory = db.make_sessionmaker(engine)
    with db.session_scope(factory) as session:
        lists.sync_from_config(session, settings)
    return engine, factory


def make_templates(settings: Settings) -> Templates:
    """The built-in templates, overridden by any the site keeps under `var/templates`."""
    return Templates(settings.site.var_dir / "templates")
