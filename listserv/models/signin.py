# SPDX-License-Identifier: Apache-2.0
"""Web sign-in: mailed one-time links, console sessions, TOTP secrets, recovery codes.

Nothing here stores a secret a database dump could use to sign in: links,
session ids and recovery codes are kept as SHA-256 hashes. The TOTP secret is
the exception RFC 6238 forces (the server must compute the same codes); it is
only useful together with a fresh sign-in link mailed to its owner.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from listserv.models.base import Base, utcnow


class SignInLink(Base):
    """A one-time link mailed to an address: valid minutes, works once."""

    __tablename__ = "sign_in_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(320))
    address_key: Mapped[str] = mapped_column(String(320), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class WebSession(Base):
    """A signed-in browser; the cookie holds the id, this row only its hash (revocable).

    `auth` is how far the person has proved themselves: empty while a second
    factor is still owed, then `link`, `link+totp` or `link+recovery`.
    """

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_address_key", "address_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str] = mapped_column(String(320))
    address_key: Mapped[str] = mapped_column(String(320))
    auth: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column(default=None)


class TotpSecret(Base):
    """One person's TOTP (RFC 6238) second factor; unconfirmed until a first code matches."""

    __tablename__ = "totp_secrets"

    id: Mapped[int] = mapped_column(primary_key=True)
    address_key: Mapped[str] = mapped_column(String(320), unique=True)
    secret: Mapped[str] = mapped_column(String(64))
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    #: The time step of the last code accepted: no code of it or before is taken again.
    last_step: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecoveryCode(Base):
    """A one-time code that stands in for TOTP when the phone is lost; stored hashed."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    address_key: Mapped[str] = mapped_column(String(320), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(default=None)
