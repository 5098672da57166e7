# SPDX-License-Identifier: Apache-2.0
"""Signing in to the web console: a mailed link, then (for staff) a second factor.

These are acts like any other: each writes its audit record, with channel
`web` and how the person proved themselves. The web channel only reads the
form and keeps the raw session id in a cookie.

- `request_link` answers nothing the channel may show: whether the address
  is known, malformed or over its limit (3 mails an hour), the page says the
  same, so the form cannot be used to learn who is on a list.
- `redeem_link` spends the link once (15 minutes) and opens a session. Site
  admins, owners and moderators get a session that is worth nothing until
  `pass_second_factor` accepts a TOTP code or a recovery code.
- Five wrong codes in 15 minutes lock that person's second factor for 15
  minutes; the lock is audited.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from listserv import audit, notices, ratelimit, roster, signin
from listserv.actors import Actor, Auth
from listserv.acts.errors import Conflict, NotFound
from listserv.context import Context
from listserv.eligibility import InvalidAddress, normalise_address
from listserv.models import SignInLink, TotpSecret, WebSession
from listserv.tokens import hash_token, new_token

LINK_MINUTES = 15
LINKS_PER_HOUR = 3
WRONG_CODES = 5
WRONG_CODE_WINDOW = timedelta(minutes=15)
LOCK_FOR = timedelta(minutes=15)


class Factor(enum.StrEnum):
    """What a new session still owes."""

    NONE = "none"  # a member: the link was enough
    ENROL = "enrol"  # staff without TOTP yet: set it up now
    VERIFY = "verify"  # staff: a code or a recovery code


@dataclass(frozen=True)
class SignedIn:
    raw_session_id: str
    session: WebSession
    owes: Factor


def request_link(ctx: Context, actor: Actor, address: str) -> bool:
    """Mail a sign-in link to a known address; True if one was sent (never shown)."""
    try:
        key = normalise_address(address.strip())
    except InvalidAddress:
        return False
    if not signin.is_known(ctx.session, ctx.settings, key):
        return False
    if not ratelimit.allow(
        ctx.session, f"sign-in-to:{key}", LINKS_PER_HOUR, timedelta(hours=1), ctx.now
    ):
        audit.record_act(
            ctx.session,
            actor,
            "sign-in-link-refused",
            target=key,
            source=ctx.source,
            outcome="rate-limited",
            at=ctx.now,
        )
        return False
    token = new_token()
    ctx.session.add(
        SignInLink(
            address=key,
            address_key=key,
            token_hash=hash_token(token),
            created_at=ctx.now,
            expires_at=ctx.now + timedelta(minutes=LINK_MINUTES),
        )
    )
    notices.send_notice(
        ctx,
        "sign_in_link.txt.j2",
        key,
        url=f"{ctx.settings.web.base_url}/login/{token}",
        minutes=LINK_MINUTES,
    )
    audit.record_act(
        ctx.session, actor, "sign-in-link-sent", target=key, source=ctx.source, at=ctx.now
    )
    return True


def find_link(ctx: Context, token: str, *, lock: bool = False) -> SignInLink:
    """The link a token names; NotFound, or Conflict (code link-used / link-expired)."""
    stmt = select(SignInLink).where(SignInLink.token_hash == hash_token(token))
    link = ctx.session.scalar(stmt.with_for_update() if lock else stmt)
    if link is None:
        raise NotFound("This sign-in link is not known.", code="link-unknown")
    if link.used_at is not None:
        raise Conflict("This sign-in link has already been used.", code="link-used")
    if link.expires_at <= ctx.now:
        raise Conflict("This sign-in link has expired.", code="link-expired")
    return link


def redeem_link(ctx: Context, actor: Actor, token: str) -> SignedIn:
    """Spend the link and open a session; staff still owe a second factor."""
    link = find_link(ctx, token, lock=True)
    link.used_at = ctx.now
    key = link.address_key
    owes = Factor.NONE
    if signin.is_staff(ctx.session, ctx.settings, key):
        factor = ctx.session.scalar(select(TotpSecret).where(TotpSecret.address_key == key))
        if factor is not None and factor.confirmed_at is not None:
            owes = Factor.VERIFY
        else:
            if factor is None:
                factor = TotpSecret(address_key=key, created_at=ctx.now, secret="")
                ctx.session.add(factor)
            factor.secret = signin.new_totp_secret()  # a fresh secret for each enrolment
            owes = Factor.ENROL
    auth = Auth.LINK if owes == Factor.NONE else Auth.NONE
    raw, row = signin.open_session(ctx.session, ctx.settings, link.address, key, auth, ctx.now)
    who = Actor(key, actor.channel, Auth.LINK)
    audit.record_act(
        ctx.session,
        who,
        "sign-in-link-used",
        target=key,
        source=ctx.source,
        detail={"second_factor": owes.value},
        at=ctx.now,
    )
    return SignedIn(raw, row, owes)


@dataclass(frozen=True)
class FactorResult:
    """What a second-factor attempt came to; wrong codes are counted, not raised."""

    passed: bool
    text: str = ""
    auth: Auth = Auth.NONE
    recovery_codes: tuple[str, ...] = ()
    locked_until: datetime | None = None


def totp_of(ctx: Context, key: str) -> TotpSecret | None:
    return ctx.session.scalar(select(TotpSecret).where(TotpSecret.address_key == key))


def _wrong(ctx: Context, actor: Actor, factor: TotpSecret) -> FactorResult:
    key = f"second-factor-wrong:{factor.address_key}"
    ratelimit.note(ctx.session, key, ctx.now)
    wrong = ratelimit.count(ctx.session, key, WRONG_CODE_WINDOW, ctx.now)
    audit.record_act(
        ctx.session,
        actor,
        "second-factor-refused",
        target=factor.address_key,
        source=ctx.source,
        outcome="refused",
        at=ctx.now,
    )
    if wrong >= WRONG_CODES:
        factor.locked_until = ctx.now + LOCK_FOR
        audit.record_act(
            ctx.session,
            actor,
            "second-factor-locked",
            target=factor.address_key,
            source=ctx.source,
            detail={"wrong_codes": wrong},
            at=ctx.now,
        )
        return _locked(factor)
    left = WRONG_CODES - wrong
    return FactorResult(
        False,
        f"That code is not right, or it was already used. {left} more wrong code(s) in "
        "15 minutes lock the second factor for 15 minutes.",
    )


def _locked(factor: TotpSecret) -> FactorResult:
    until = factor.locked_until
    assert until is not None
    return FactorResult(
        False,
        "Too many wrong codes: the second factor of this account is locked until "
        f"{until:%H:%M} UTC. Wait, then sign in again with a new link.",
        locked_until=until,
    )


def pass_second_factor(ctx: Context, actor: Actor, session: WebSession, code: str) -> FactorResult:
    """Check a TOTP code (or, once enrolled, a recovery code) for a session that owes one."""
    factor = totp_of(ctx, session.address_key)
    if factor is None:
        raise NotFound("There is no second factor to check for this sign-in.")
    if factor.locked_until is not None and factor.locked_until > ctx.now:
        return _locked(factor)
    code = "".join(code.split())
    enrolling = factor.confirmed_at is None
    step = signin.matching_step(factor, code, ctx.now)
    recovered = False
    if step is None and not enrolling:
        recovered = signin.use_recovery_code(ctx.session, factor.address_key, code, ctx.now)
    if step is None and not recovered:
        return _wrong(ctx, actor, factor)
    codes: tuple[str, ...] = ()
    if step is not None:
        factor.last_step = step
    if enrolling:
        factor.confirmed_at = ctx.now
        codes = signin.make_recovery_codes(ctx.session, factor.address_key, ctx.now).codes
    auth = Auth.LINK_RECOVERY if recovered else Auth.LINK_TOTP
    session.auth = auth
    who = Actor(session.address_key, actor.channel, auth)
    action = "second-factor-enrolled" if enrolling else "signed-in"
    audit.record_act(
        ctx.session, who, action, target=session.address_key, source=ctx.source, at=ctx.now
    )
    return FactorResult(True, auth=auth, recovery_codes=codes)


def sign_out(ctx: Context, actor: Actor, session: WebSession, *, everywhere: bool = False) -> int:
    """End this session, or every session of the person; returns how many ended."""
    if everywhere:
        ended = signin.end_sessions(ctx.session, session.address_key, ctx.now)
    else:
        session.ended_at = ctx.now
        ended = 1
    audit.record_act(
        ctx.session,
        actor,
        "signed-out-everywhere" if everywhere else "signed-out",
        target=roster.address_key(session.address),
        source=ctx.source,
        detail={"sessions": ended},
        at=ctx.now,
    )
    return ended
