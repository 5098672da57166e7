# SPDX-License-Identifier: Apache-2.0
"""API tokens: a site administrator issues one to a script or system, and revokes it.

A token is 256 random bits, shown once. Only its HMAC-SHA256 keyed with the
site secret is stored: a fast keyed hash is right for a secret with that
much entropy (a slow password hash would only slow every request), and the
key means a copied table alone cannot test guesses. Changing the site secret
therefore revokes every token.

Each token has a role (site-admin, owner, moderator or reader) and the lists
it covers (none named: every list); `actor_for` turns it into the `Actor`
whose `Scope` the permission checks honour, named by the token's name in
the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from listserv import audit, lists
from listserv.actors import Actor, Auth, Scope
from listserv.acts.errors import Conflict, Invalid, NotFound
from listserv.acts.permissions import Need, require
from listserv.context import Context
from listserv.models import ApiToken, Channel, Role
from listserv.prepared import Prepared

#: Every token starts so; the log filter recognises and redacts it.
PREFIX = "lsv_"

#: The roles a token may have, and the roster role each stands for (None: read only).
ROLES: dict[str, Role | None] = {
    "site-admin": None,
    "owner": Role.OWNER,
    "moderator": Role.MODERATOR,
    "reader": None,
}


def token_hash(secret: str, token: str) -> str:
    return hmac.new(secret.encode(), token.encode("utf-8", "replace"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Issued:
    """A new token's row, and the token itself (never stored, shown once)."""

    row: ApiToken
    token: str


def view(row: ApiToken) -> dict[str, Any]:
    """A token as listings show it (never its hash)."""
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "lists": list(row.lists or []),
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
        "last_used_at": row.last_used_at,
    }


def create_token(
    ctx: Context,
    actor: Actor,
    name: str,
    role: str,
    *,
    list_names: Sequence[str] = (),
    expires_at: datetime | None = None,
) -> Issued:
    """Issue a token (site administrators only); audited `token-create` without the token."""
    require(ctx.session, actor, None, Need.ADMINISTER)
    clean = name.strip()
    if not clean or len(clean) > 64 or any(c.isspace() for c in clean):
        raise Invalid(
            "a token name is 1 to 64 characters without spaces (e.g. hr-offboarding)",
            field="name",
        )
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}; got {role!r}", field="role")
    names = sorted({n.strip().lower() for n in list_names if n.strip()})
    if role == "site-admin" and names:
        raise Invalid("a site-admin token covers every list; name no --list", field="list")
    for list_name in names:
        if lists.get_list(ctx.session, list_name) is None:
            raise NotFound(f"There is no list named {list_name} here.", field="list")
    if expires_at is not None and expires_at <= ctx.now:
        raise Invalid("the expiry must be in the future", field="expires")
    if ctx.session.scalar(select(ApiToken.id).where(ApiToken.name == clean)) is not None:
        raise Conflict(f"a token named {clean!r} already exists", field="name")
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=clean,
        role=role,
        lists=names,
        token_hash=token_hash(ctx.settings.site.secret.get(), token),
        created_at=ctx.now,
        created_by=actor.address[:320],
        expires_at=expires_at,
    )
    ctx.session.add(row)
    ctx.session.flush()
    audit.record_act(
        ctx.session,
        actor,
        "token-create",
        target=f"token:{row.id}",
        source=ctx.source,
        detail={"after": _plain(view(row))},
        at=ctx.now,
    )
    return Issued(row, token)


def revoke_token(ctx: Context, actor: Actor, token_id: int) -> ApiToken:
    """Revoke a token at once (site administrators); audited `token-revoke`."""
    require(ctx.session, actor, None, Need.ADMINISTER)
    row = ctx.session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"There is no token {token_id}.", field="id")
    if row.revoked_at is not None:
        raise Conflict(f"Token {token_id} ({row.name}) is already revoked.", code="revoked")
    row.revoked_at = ctx.now
    audit.record_act(
        ctx.session,
        actor,
        "token-revoke",
        target=f"token:{row.id}",
        source=ctx.source,
        detail={"token": row.name},
        at=ctx.now,
    )
    return row


def all_tokens(session: Session) -> Sequence[ApiToken]:
    return session.scalars(select(ApiToken).order_by(ApiToken.id)).all()


@dataclass(frozen=True)
class Usable:
    """What a request needs of a token it proved (read as a plain row: every request does)."""

    id: int
    name: str
    role: str
    lists: tuple[str, ...]
    last_used_at: datetime | None


_USABLE = select(
    ApiToken.id,
    ApiToken.name,
    ApiToken.role,
    ApiToken.lists,
    ApiToken.expires_at,
    ApiToken.revoked_at,
    ApiToken.last_used_at,
)


def find_usable(session: Session, secret: str, token: str, now: datetime) -> Usable | None:
    """The token a presented token proves, unless unknown, revoked or expired."""
    if not token.startswith(PREFIX):
        return None
    row = (
        session.connection()
        .execute(_USABLE.where(ApiToken.token_hash == token_hash(secret, token)))
        .first()
    )
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    return Usable(row.id, row.name, row.role, tuple(row.lists or ()), row.last_used_at)


_LIVE = Prepared(
    select(ApiToken.revoked_at, ApiToken.expires_at).where(ApiToken.id == bindparam("id"))
)


def _moment(value: str | datetime) -> datetime:
    """A timestamp as the driver gives it (SQLite: UTC text) as an aware datetime."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def still_usable(session: Session, token_id: int, now: datetime) -> bool:
    """A token proved a moment ago is still usable: not revoked or deleted since, not expired.

    One primary-key read, so a revocation stops the token at its next request
    in every process even while the proof is remembered (`api.auth.TokenCache`).
    """
    row = _LIVE.first(session, {"id": token_id})
    if row is None or row[0] is not None:
        return False
    return row[1] is None or _moment(row[1]) > now


def touch(session: Session, token_id: int, now: datetime) -> None:
    """Note when a token was last used (callers do it at most once a minute)."""
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))


def actor_for(token: Usable | ApiToken) -> Actor:
    """The actor a token acts as: its name, channel api, auth token, its scope."""
    if token.role == "site-admin":
        return Actor(token.name, Channel.API, Auth.TOKEN, site_admin=True)
    names = frozenset(token.lists or []) or None
    return Actor(token.name, Channel.API, Auth.TOKEN, scope=Scope(ROLES[token.role], names))


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}
