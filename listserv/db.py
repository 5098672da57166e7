# SPDX-License-Identifier: Apache-2.0
"""Database engine, sessions and migrations.

SQLite is the embedded default (WAL journal, a busy timeout, foreign keys on,
`synchronous=FULL` so a commit survives a power loss too) and
PostgreSQL (psycopg 3) serves several hosts. The schema is only ever created
by Alembic, so `serve` and `db upgrade` run the same migrations.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from listserv.config import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://") :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy issue BEGIN itself so transactions are real.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            # Deleted or rewritten rows (a scrubbed password) are zeroed on disk.
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        # SQLite has one writer at a time. Threads of this process queue on a
        # Python lock (woken at once) rather than on SQLite's busy handler,
        # which sleeps in steps of up to 100 ms; other processes (the CLI)
        # still meet the busy timeout.
        writer = threading.Lock()
        holders: set[int] = set()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front, so two writers queue
            # instead of failing on a lock upgrade.
            dbapi_conn = conn.connection.dbapi_connection
            writer.acquire()
            holders.add(id(dbapi_conn))
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                holders.discard(id(dbapi_conn))
                writer.release()
                raise

        dialect = engine.dialect
        plain_commit, plain_rollback = dialect.do_commit, dialect.do_rollback

        def _release(conn: Any) -> None:
            # SQLAlchemy passes the pool's proxy here; begin saw the raw connection.
            key = id(getattr(conn, "dbapi_connection", conn))
            if key in holders:
                holders.discard(key)
                writer.release()

        def do_commit(dbapi_conn: Any) -> None:
            try:
                plain_commit(dbapi_conn)
            finally:
                _release(dbapi_conn)

        def do_rollback(dbapi_conn: Any) -> None:
            try:
                plain_rollback(dbapi_conn)
            finally:
                _release(dbapi_conn)

        # On this engine's dialect instance only: the bound methods take the connection.
        setattr(dialect, "do_commit", do_commit)  # noqa: B010
        setattr(dialect, "do_rollback", do_rollback)  # noqa: B010
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply every migration up to `revision` (idempotent)."""
    command.upgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
