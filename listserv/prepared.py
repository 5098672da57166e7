# SPDX-License-Identifier: Apache-2.0
"""Reads compiled once and run straight on the driver's cursor, for the hottest paths.

A Core statement executed through SQLAlchemy costs far more in Python than the
database spends answering it: on every call the statement is rebuilt, its
cache key generated, the cached compilation looked up and its result columns
matched again (a roster page of 100 paid ~0.6 ms for that, against ~0.1 ms in
SQLite). A `Prepared` read is written as an ordinary Core statement with named
`bindparam`s, compiled for the dialect the first time it runs, and then
executed as that SQL string on the session's own DBAPI connection, inside the
session's transaction. The driver prepares it once too: sqlite3 keeps a cache
of prepared statements per connection, and psycopg prepares a query on the
server after a few runs.

What this skips is SQLAlchemy's type processing: parameters must be passed
as the stored values (an enum's string, never the enum) and rows come back
as the driver gives them (tuples; SQLite's timestamps as text, JSON as text).
So it is for a few reads whose columns are plain, not a general executor.

`HeldReader` is the cheapest session for such reads: a reader connection kept
open by one thread (the event loop, for the API's quick reads on SQLite),
whose transaction is begun outside the Session, so a `Prepared` read goes
straight to its driver connection and the Session only comes into play for
ORM work. A new Session, a connection checked out of the pool and
SQLAlchemy's transaction around it cost ~60 µs a request; this, a few.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


class _Compiled(NamedTuple):
    sql: str
    #: Parameter names in order, for a driver that takes `?` (None: by name).
    order: tuple[str, ...] | None
    fixed: dict[str, Any]


class Prepared:
    """A Core statement's SQL, compiled per dialect on first use."""

    def __init__(self, statement: Executable) -> None:
        assert isinstance(statement, ClauseElement)
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _sql(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            with self._lock:
                compiled = self.statement.compile(dialect=dialect)
                assert isinstance(compiled, SQLCompiler)
                order = tuple(compiled.positiontup or ()) if compiled.positional else None
                # Values the dialect adds itself (SQLite's `OFFSET 0` after a LIMIT).
                fixed = {k: v for k, v in compiled.params.items() if v is not None}
                found = _Compiled(compiled.string, order, fixed)
                self._compiled[dialect.name] = found
        return found

    def rows(self, session: Session, params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        """Every row, in the session's transaction."""
        held = session.info.get(DRIVER)
        if held is not None:
            driver, dialect = held
        else:
            conn = session.connection()
            driver, dialect = conn.connection.driver_connection, conn.dialect
        sql, order, fixed = self._sql(dialect)
        values = {**fixed, **params} if fixed else params
        given: Sequence[Any] | Mapping[str, Any] = (
            values if order is None else tuple(values[name] for name in order)
        )
        cursor = driver.cursor()
        try:
            cursor.execute(sql, given)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def first(self, session: Session, params: Mapping[str, Any]) -> Sequence[Any] | None:
        found = self.rows(session, params)
        return found[0] if found else None


#: `Session.info` key: (driver connection, dialect) of a `HeldReader` session.
DRIVER = "listserv.prepared.driver"


class HeldReader:
    """A reader connection one thread keeps open, with one Session on it, reused a request.

    `with held as session:` is one transaction: a deferred BEGIN straight on the
    driver, ended by COMMIT (ROLLBACK on an error). `Prepared` reads use the
    driver connection in it; ORM work makes the Session begin its own
    transaction on the connection, which joins the driver's open one (the
    reader's BEGIN hook in `db.make_engine` does nothing inside a transaction)
    and is committed by the caller as usual. The Session is cleared after a
    request that loaded objects.

    `engine` must be a reader (`db.reader_of`): on SQLite its BEGIN is deferred
    and takes no lock, and an idle connection holds no snapshot, so keeping it
    open costs nothing. Only the thread that made it may use it, one request
    at a time.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn: Connection | None = None
        self.held: Session | None = None
        self.driver: Any = None

    def __enter__(self) -> Session:
        conn, session = self.conn, self.held
        if conn is None or session is None or conn.closed or conn.invalidated:
            self.close()
            conn = self.conn = self.engine.connect()
            session = self.held = Session(bind=conn, expire_on_commit=False)
            self.driver = conn.connection.driver_connection
            session.info[DRIVER] = (self.driver, conn.dialect)
        self.driver.execute("BEGIN")
        return session

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        session, driver = self.held, self.driver
        assert session is not None
        try:
            if kind is None:
                if session.in_transaction():
                    session.commit()
                driver.commit()  # a no-op if the Session's commit ended it
            else:
                session.rollback()
                driver.rollback()
        except BaseException:
            self.close()
            raise
        finally:
            if session.identity_map:
                session.expunge_all()

    def close(self) -> None:
        conn, session, self.conn, self.held = self.conn, self.held, None, None
        if session is not None:
            session.close()
        if conn is not None:
            conn.close()
