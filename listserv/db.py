# SPDX-License-Identifier: Apache-2.0
"""Database engine, sessions and migrations.

SQLite is the embedded default (WAL journal, a busy timeout, foreign keys on,
`synchronous=FULL` so a commit survives a power loss too) and
PostgreSQL (psycopg 3) serves several hosts. The schema is only ever created
by Alembic, so `serve` and `db upgrade` run the same migrations.
"""

from __future__ import annotations

import ast
import fcntl
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
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

        # SQLite has one writer at a time. Writers queue on a lock that wakes
        # the next one at once (threads on a Python lock, processes on a file
        # lock beside the database) rather than on SQLite's busy handler, which
        # sleeps in steps of up to 100 ms: a writer in another process (the
        # processing worker) that comes back often would starve intake.
        writer = WriterLock(Path(path + "-writer") if path and path != ":memory:" else None)
        holders: set[int] = set()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            if conn.get_execution_options().get(READ_ONLY):
                # A reader (`reader_of`) never writes: a deferred BEGIN takes no
                # lock, so reads never queue behind writers nor writers behind them.
                # Straight to the driver: it cannot fail on a lock, and SQLAlchemy's
                # statement machinery was an eighth of an API read's CPU. Inside
                # a transaction already begun on the driver (`prepared.HeldReader`)
                # the ORM's transaction joins it.
                raw = conn.connection.dbapi_connection
                if not raw.in_transaction:
                    raw.execute("BEGIN")
                return
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


class WriterLock:
    """One SQLite writer at a time across this process's threads and other processes.

    The file lock is taken after the thread lock, so at most one thread of a
    process waits on it; the kernel wakes the next waiter as soon as it is free.
    """

    def __init__(self, path: Path | None) -> None:
        self._threads = threading.Lock()
        self._path = path
        self._file: IO[bytes] | None = None

    def acquire(self) -> None:
        self._threads.acquire()
        try:
            if self._path is not None:
                if self._file is None:
                    self._file = open(self._path, "ab")  # noqa: SIM115 (kept for the engine's life)
                fcntl.flock(self._file, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        try:
            if self._file is not None:
                fcntl.flock(self._file, fcntl.LOCK_UN)
        finally:
            self._threads.release()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


#: The execution option that marks an engine's sessions as read-only.
READ_ONLY = "listserv_read_only"


def reader_of(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions on the same engine that only read (polls, lookups, views).

    On SQLite they begin DEFERRED and skip the in-process writer lock, so a poll
    for due work never holds up intake's next commit. With WAL a reader sees the
    last committed state and blocks nobody. On PostgreSQL nothing differs.
    """
    engine: Engine = factory.kw["bind"]
    return sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)


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


_REVISION_LINE = re.compile(r"^(down_revision|revision)\b[^=]*=\s*(.+)$", re.MULTILINE)


def migrations_head(versions: Path = MIGRATIONS_DIR / "versions") -> str | None:
    """The one newest revision, read from the files' `revision` lines.

    Alembic executes every migration file to find its head, which costs a
    CLI command more than its own work; this reads two lines of each. None
    when the files have several heads or cannot be read, so the caller falls
    back to Alembic.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        found = dict(_REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        try:
            revision = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found.get("down_revision", "None"))
        except (KeyError, ValueError, SyntaxError):
            return None
        revisions.add(revision)
        parents.update([down] if isinstance(down, str) else (down or ()))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def at_head(engine: Engine) -> bool:
    """Whether the database already carries the newest migration (then upgrading does nothing)."""
    head = migrations_head()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:  # no schema yet
        return False
    return stored == [head]
