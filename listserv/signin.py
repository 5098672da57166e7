# SPDX-License-Identifier: Apache-2.0
"""Web sign-in's domain: who may sign in, sessions, TOTP codes and recovery codes.

No HTTP here: the acts (`acts/signin.py`) call these with a session and the
time, and the web channel keeps only the raw session id in a cookie.

- Sign-in links and session ids are random (160 and 256 bits) and stored as
  SHA-256 hashes, so a database dump signs nobody in and a session can be
  revoked by ending its row.
- TOTP is RFC 6238 with SHA-1, 6 digits and 30-second steps (what every
  authenticator app speaks), computed by pyotp. A code is accepted for the
  step before, the current and the step after (clock drift), and never for a
  step at or before the last one accepted, so a code seen over a shoulder
  cannot be replayed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.orm import Session

from listserv.config import Settings
from listserv.models import Member, RecoveryCode, Role, SignInLink, TotpSecret, WebSession

TOTP_STEP = 30
TOTP_DIGITS = 6
RECOVERY_CODES = 10
#: How often the idle clock of a session is moved on (a write per page otherwise).
TOUCH_EVERY = timedelta(seconds=30)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def is_site_admin(settings: Settings, key: str) -> bool:
    return key in settings.site.admins


def is_known(session: Session, settings: Settings, key: str) -> bool:
    """A site admin, or anyone on any list's roster, may ask for a sign-in link."""
    if is_site_admin(settings, key):
        return True
    return bool(session.scalar(select(exists().where(Member.address_key == key))))


def is_staff(session: Session, settings: Settings, key: str) -> bool:
    """Site admins, owners and moderators: they must pass a second factor."""
    if is_site_admin(settings, key):
        return True
    return bool(
        session.scalar(
            select(
                exists().where(
                    Member.address_key == key, Member.role.in_((Role.OWNER, Role.MODERATOR))
                )
            )
        )
    )


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def open_session(
    session: Session, settings: Settings, address: str, key: str, auth: str, now: datetime
) -> tuple[str, WebSession]:
    """A new session row; returns the raw id (for the cookie only) and the row."""
    raw = new_session_id()
    row = WebSession(
        id_hash=digest(raw),
        address=address,
        address_key=key,
        auth=auth,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.web.session_hours),
    )
    session.add(row)
    session.flush()
    return raw, row


def live_session(
    session: Session, settings: Settings, raw: str, now: datetime
) -> WebSession | None:
    """The session a cookie names, if it is neither ended, past 12 hours nor idle too long."""
    if not raw or len(raw) > 100:
        return None
    row = session.scalar(select(WebSession).where(WebSession.id_hash == digest(raw)))
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    if row.last_seen_at + timedelta(minutes=settings.web.session_idle_minutes) <= now:
        return None
    return row


def touch(session: Session, row: WebSession, now: datetime) -> bool:
    """Move the idle clock on; True when a write is needed (at most every 30 s)."""
    if now - row.last_seen_at < TOUCH_EVERY:
        return False
    row.last_seen_at = now
    return True


def end_sessions(session: Session, key: str, now: datetime) -> int:
    """End every open session of one person ("sign out everywhere")."""
    result = session.execute(
        update(WebSession)
        .where(WebSession.address_key == key, WebSession.ended_at.is_(None))
        .values(ended_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def new_totp_secret() -> str:
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, address: str, issuer: str) -> str:
    """The `otpauth://totp/...` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP).provisioning_uri(
        name=address, issuer_name=issuer
    )


def step_at(now: datetime) -> int:
    return int(now.timestamp()) // TOTP_STEP


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP).generate_otp(step)


def matching_step(factor: TotpSecret, code: str, now: datetime) -> int | None:
    """The time step a code belongs to (±1 step), if it is new; None if wrong or replayed."""
    if len(code) != TOTP_DIGITS or not code.isdigit():
        return None
    current = step_at(now)
    for step in (current - 1, current, current + 1):
        if step > factor.last_step and secrets.compare_digest(code_at(factor.secret, step), code):
            return step
    return None


@dataclass(frozen=True)
class RecoverySet:
    """Freshly made recovery codes: shown once, stored only as hashes."""

    codes: tuple[str, ...]


def normalise_recovery(code: str) -> str:
    return "".join(c for c in code.lower() if c.isalnum())


def make_recovery_codes(session: Session, key: str, now: datetime) -> RecoverySet:
    """Ten new codes, replacing any earlier set."""
    for old in session.scalars(select(RecoveryCode).where(RecoveryCode.address_key == key)):
        session.delete(old)
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = secrets.token_hex(5)  # 40 bits, shown as xxxxx-xxxxx
        codes.append(f"{raw[:5]}-{raw[5:]}")
        session.add(RecoveryCode(address_key=key, code_hash=digest(raw), created_at=now))
    return RecoverySet(tuple(codes))


def use_recovery_code(session: Session, key: str, code: str, now: datetime) -> bool:
    """Spend one recovery code; False when it is not one of this person's unused codes."""
    cleaned = normalise_recovery(code)
    if len(cleaned) != 10:
        return False
    row = session.scalar(
        select(RecoveryCode)
        .where(RecoveryCode.address_key == key, RecoveryCode.code_hash == digest(cleaned))
        .with_for_update()
    )
    if row is None or row.used_at is not None:
        return False
    row.used_at = now
    return True


def prune(session: Session, now: datetime) -> int:
    """Forget sessions and sign-in links a day past their end (the audit log keeps them)."""
    cutoff = now - timedelta(days=1)
    sessions = session.execute(
        delete(WebSession).where(or_(WebSession.expires_at < cutoff, WebSession.ended_at < cutoff))
    )
    links = session.execute(delete(SignInLink).where(SignInLink.expires_at < cutoff))
    return sum(int(getattr(r, "rowcount", 0) or 0) for r in (sessions, links))
