# SPDX-License-Identifier: Apache-2.0
"""Signing in to the console in tests: over HTTP with httpx, reading the mailed link.

`console_settings` adds a moderator, a second list with its own owner and a
site admin to the shipped configuration. `sign_in` walks the whole way a
person does: asks for a link, reads it from the queued mail, opens the page,
presses the button, enrols or types a TOTP code computed from the secret the
page showed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import httpx
import pyotp
from sqlalchemy import select

from listserv.actors import web_actor
from listserv.acts import subscriptions
from listserv.config import Settings
from listserv.confirmations.dispatch import confirm
from listserv.lists import get_list
from listserv.models import (
    IneligiblePolicy,
    PendingRequest,
    Post,
    PostStatus,
    RequestKind,
    RequestStatus,
    TotpSecret,
)
from listserv.posting import moderation
from listserv.tokens import find_token
from tests.conftest import make_settings, shipped_config
from tests.web_helpers import Site, outbox_to, parse_page

OWNER = "owner@digital.gov"
MODERATOR = "mod@agency.gov"
OTHER_OWNER = "boss@other.gov"
ADMIN = "admin@agency.gov"
MEMBER = "jane.doe@agency.gov"
SIGN_IN_URL = re.compile(r"(https?://\S+?)(/login/[a-z2-7]{32})")
SECRET_ON_PAGE = re.compile(r"<dt>Key</dt><dd><code>([A-Z2-7]+)</code>")


def console_settings(db_url: str, var_dir: Path, **web: object) -> Settings:
    lists = shipped_config()["lists"]
    lists[0]["moderators"] = [MODERATOR]
    other = dict(lists[0], name="other", display_name="OTHER", owners=[OTHER_OWNER], moderators=[])
    other["join_phrases"] = ["Join the other list"]
    other["leave_phrases"] = ["Leave the other list"]
    return make_settings(
        db_url, var_dir, site={"admins": [ADMIN]}, lists=[lists[0], other], web=web
    )


def sign_in_path(site: Site, address: str) -> str:
    """The path of the newest sign-in link mailed to `address`."""
    mails = [m for m in outbox_to(site.factory, address) if "sign-in link" in str(m["Subject"])]
    assert mails, f"no sign-in mail to {address}"
    body = mails[-1].get_body(("plain",))
    assert body is not None
    match = SIGN_IN_URL.search(body.get_content())
    assert match is not None, body.get_content()
    return match.group(2)


def totp_secret(site: Site, address: str) -> str:
    with site.factory() as session:
        secret = session.scalar(select(TotpSecret.secret).where(TotpSecret.address_key == address))
        assert secret is not None
        return secret


def code(secret: str, *, steps_ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30 * steps_ahead))


def next_code(site: Site, address: str, secret: str) -> str:
    """A code of a step not used yet (the one before, now, or the next), so never a replay."""
    with site.factory() as session:
        last = session.scalar(select(TotpSecret.last_step).where(TotpSecret.address_key == address))
    now = int(datetime.now(UTC).timestamp()) // 30
    step = max(now - 1, (last or 0) + 1)
    assert step <= now + 1, "every code of this half-minute has been used"
    return pyotp.TOTP(secret).generate_otp(step)


def wrong_code(secret: str) -> str:
    good = {code(secret, steps_ahead=n) for n in (-1, 0, 1)}
    return next(c for c in ("123456", "654321", "111111", "222222") if c not in good)


def form_fields(html: str, index: int = -1) -> dict[str, str]:
    fields: dict[str, str] = parse_page(html).forms[index].get("fields", {})
    return fields


@dataclass
class Session:
    client: httpx.AsyncClient
    csrf: str
    secret: str = ""


async def open_link(site: Site, client: httpx.AsyncClient, address: str) -> httpx.Response:
    """Ask for a link, open it, press its button; the response to that POST."""
    response = await client.post("/login", data={"address": address})
    assert response.status_code == 200, response.text
    path = sign_in_path(site, address)
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return await client.post(path, data=form_fields(page.text))


async def csrf_of(client: httpx.AsyncClient) -> str:
    page = await client.get("/account")
    assert page.status_code == 200, page.text
    return form_fields(page.text, 0)["csrf"]


async def sign_in(site: Site, client: httpx.AsyncClient, address: str, secret: str = "") -> Session:
    """Sign in all the way; staff enrol TOTP on first sign-in (or use `secret`)."""
    response = await open_link(site, client, address)
    assert response.status_code == 303, response.text
    if response.headers["location"].endswith("/login/second-factor"):
        page = await client.get("/login/second-factor")
        if not secret:
            match = SECRET_ON_PAGE.search(page.text)
            assert match is not None, page.text
            secret = match.group(1)
        done = await client.post(
            "/login/second-factor",
            data={"csrf": form_fields(page.text)["csrf"], "code": next_code(site, address, secret)},
        )
        assert done.status_code in (200, 303), done.text
    return Session(client, await csrf_of(client), secret)


def hold(
    site: Site,
    *,
    sender: str = "stranger@agency.gov",
    subject: str = "A question",
    body: str = "Hello, list.",
    html: str = "",
) -> int:
    """A post held for the moderators, as the posting stage holds one; its id."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "sm-cop@lists.example.gov"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="agency.gov")
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    raw = message.as_bytes()
    with site.factory() as session, session.begin():
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        post = Post(
            list_id=mlist.id,
            status=PostStatus.HELD,
            sender=sender,
            subject=subject,
            message_id=str(message["Message-ID"]),
            raw=raw,
            sha256=hashlib.sha256(raw).hexdigest(),
        )
        session.add(post)
        session.flush()
        moderation.hold_post(site.ctx(session), mlist, post, ["not a member"], tell_poster=False)
        return post.id


def request_awaiting(site: Site, address: str, name: str = "Bob Outsider") -> int:
    """A subscription request outside the list's domains, confirmed, waiting for an owner."""
    with site.factory() as session, session.begin():
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        mlist.ineligible_policy = IneligiblePolicy.HOLD
        requester = subscriptions.Requester(address=address, name=name)
        subscriptions.request_join(site.ctx(session), web_actor(), mlist, requester)
    token = find_token(str(outbox_to(site.factory, address)[-1]["Subject"]))
    assert token is not None
    with site.factory() as session, session.begin():
        confirm(site.ctx(session), web_actor(address), token)
        request = session.scalars(
            select(PendingRequest).where(
                PendingRequest.address_key == address, PendingRequest.kind == RequestKind.SUBSCRIBE
            )
        ).one()
        assert request.status == RequestStatus.AWAITING_APPROVAL
        return request.id
