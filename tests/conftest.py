# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures: real databases (SQLite file, PostgreSQL schema), a real
service on a loopback port, and helpers to send mail and read the Maildir.

PostgreSQL tests run when LISTSERV_TEST_DATABASE_URL is set (as `.ci/run`
does); each test gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import create_engine, text

from listserv.app import Service, build_service
from listserv.config import DEFAULT_CONFIG, Settings, settings_from_mapping
from listserv.context import Context
from listserv.db import make_engine, make_sessionmaker, normalise_url, upgrade
from listserv.lists import sync_from_config
from listserv.templates import Templates

#: Fixtures of their own modules, for every test: DKIM keys (`key_pair`, `ed25519_pair`).
pytest_plugins = ["tests.dkim_keys"]

PG_URL = os.environ.get("LISTSERV_TEST_DATABASE_URL", "")
TEST_SECRET = "test-secret-0123456789abcdef0123456789"


def _pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'listserv.sqlite3'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL tests need LISTSERV_TEST_DATABASE_URL (see .ci/run)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_schema_url(schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'listserv.sqlite3'}"


def shipped_config() -> dict[str, Any]:
    import tomllib

    return tomllib.loads(DEFAULT_CONFIG.read_text())


def config_data(db_url: str, var_dir: Path, **overrides: Any) -> dict[str, Any]:
    """The shipped configuration pointed at a test database and var dir, as a mapping.

    `overrides` are merged into tables: `site={...}`, `limits={...}`,
    `delivery={...}`, `lists=[...]` (replaces the lists), `list={...}`
    (merged into the first list).
    """
    data = shipped_config()
    data["site"]["secret"] = TEST_SECRET
    data["site"]["var_dir"] = str(var_dir)
    data["smtp"]["port"] = 0
    data["delivery"]["maildir"] = str(var_dir / "mail")
    data["database"]["url"] = db_url
    data["web"]["port"] = 0
    for key, value in overrides.items():
        if key == "list":
            data["lists"][0].update(value)
        elif key == "lists":
            data["lists"] = value
        else:
            data.setdefault(key, {}).update(value)
    return data


def make_settings(db_url: str, var_dir: Path, **overrides: Any) -> Settings:
    """Settings from `config_data` (see there for the overrides)."""
    return settings_from_mapping(
        config_data(db_url, var_dir, **overrides), environ={}, base=var_dir
    )


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path / "var")


@pytest.fixture
def sqlite_settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return make_settings(sqlite_url, tmp_path / "var")


@pytest.fixture
def ctx_factory(settings: Settings) -> Iterator[Callable[..., Context]]:
    """Domain-level tests: contexts over a migrated, seeded database.

    Each call opens a session; commit is the test's business (or use the
    returned context's session as a plain SQLAlchemy session).
    """
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    with factory() as session, session.begin():
        sync_from_config(session, settings)
    sessions = []
    templates = Templates()

    def make(**kwargs: Any) -> Context:
        session = factory()
        sessions.append(session)
        return Context(session=session, settings=settings, templates=templates, **kwargs)

    yield make
    for session in sessions:
        session.close()
    engine.dispose()


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Service]:
    """The real service (intake, processing, delivery to a Maildir) on a free port."""
    svc = build_service(settings)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


@pytest.fixture
async def lmtp_service(settings: Settings) -> AsyncIterator[Service]:
    svc = build_service(replace(settings, smtp=replace(settings.smtp, lmtp=True)))
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


def make_message(
    sender: str = "Jane Doe <jane.doe@agency.gov>",
    to: str = "sm-cop@lists.example.gov",
    subject: str = "Hello",
    body: str = "Hello everyone.\n",
    **headers: str,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = email.utils.make_msgid(domain="agency.gov")
    msg["Date"] = email.utils.formatdate()
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


async def send(
    service: Service,
    message: EmailMessage | bytes,
    *,
    mail_from: str | None = None,
    rcpt_to: list[str] | str | None = None,
) -> dict[str, Any]:
    """Send over real SMTP to the running service; returns per-recipient refusals."""
    if isinstance(message, EmailMessage):
        raw = message.as_bytes(policy=email.policy.SMTP)
        if mail_from is None:
            mail_from = email.utils.parseaddr(str(message["From"]))[1]
        if rcpt_to is None:
            rcpt_to = [email.utils.parseaddr(str(message["To"]))[1]]
    else:
        raw = message
    assert mail_from is not None and rcpt_to is not None
    if isinstance(rcpt_to, str):
        rcpt_to = [rcpt_to]
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=service.smtp_port, start_tls=False, use_tls=False, timeout=30
    )
    async with client:
        refused, _ = await client.sendmail(mail_from, rcpt_to, raw)  # "" is the null path <>
    return dict(refused)


def read_maildir(path: Path) -> list[tuple[Path, EmailMessage]]:
    new = path / "new"
    if not new.exists():
        return []
    files = sorted(new.iterdir(), key=lambda p: p.name)
    return [
        (
            p,
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default),  # type: ignore[misc]
        )
        for p in files
    ]


async def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05
) -> Any:
    """Poll until predicate() is truthy; returns its value or fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {predicate}")
        await asyncio.sleep(interval)


async def mail_to(
    service: Service, address: str, count: int = 1, timeout: float = 10.0
) -> list[EmailMessage]:
    """Wait until `count` messages for `address` are in the Maildir; return them."""
    maildir = service.settings.delivery.maildir

    def found() -> list[EmailMessage]:
        msgs = [m for _, m in read_maildir(maildir) if m["Delivered-To"] == address]
        return msgs if len(msgs) >= count else []

    return await wait_for(found, timeout)


async def settle(service: Service, timeout: float = 10.0) -> None:
    """Wait until nothing is waiting in the inbound queue or the outbox."""
    from sqlalchemy import func, select

    from listserv.models import InboundMessage, InboundStatus, OutboxRecipient, OutboxState

    def idle() -> bool:
        with service.factory() as session:
            inbound = session.scalar(
                select(func.count()).where(InboundMessage.status == InboundStatus.RECEIVED)
            )
            outgoing = session.scalar(
                select(func.count()).where(
                    OutboxRecipient.state.in_((OutboxState.QUEUED, OutboxState.ACTIVE))
                )
            )
            return inbound == 0 and outgoing == 0

    await asyncio.sleep(0.05)
    await wait_for(idle, timeout)
