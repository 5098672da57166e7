# SPDX-License-Identifier: Apache-2.0
"""Sign-in over HTTP: the mailed link, TOTP enrolment and codes, lock-out, sessions, CSRF."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pyotp
import pytest
from sqlalchemy import select, update

from listserv import periodic, roster
from listserv.lists import get_list
from listserv.models import (
    AuditEvent,
    RecoveryCode,
    Role,
    SignInLink,
    TotpSecret,
    WebSession,
    utcnow,
)
from tests.actors import as_actor
from tests.console_helpers import (
    ADMIN,
    MEMBER,
    OWNER,
    code,
    console_settings,
    csrf_of,
    form_fields,
    next_code,
    open_link,
    sign_in,
    sign_in_path,
    totp_secret,
    wrong_code,
)
from tests.web_helpers import Site, add_member, main_text, open_site, outbox_to, snapshot


@pytest.fixture
async def site(db_url: str, tmp_path: Path) -> AsyncIterator[Site]:
    async with open_site(console_settings(db_url, tmp_path / "var")) as site:
        yield site


def client(site: Site) -> httpx.AsyncClient:
    return site.client_from("198.51.100.9")


def audit(site: Site, action: str) -> list[tuple[str, str, str]]:
    with site.factory() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return [(a.actor, a.channel, a.auth) for a in rows]


async def test_an_owner_signs_in_with_the_link_and_enrols_totp(site: Site) -> None:
    async with client(site) as browser:
        answer = await browser.post("/login", data={"address": OWNER})
        assert "If owner@digital.gov may sign in here" in main_text(answer.text)
        path = sign_in_path(site, OWNER)
        before = snapshot(site.factory)
        page = await browser.get(path)
        assert page.status_code == 200 and "Sign in as owner@digital.gov" in main_text(page.text)
        assert snapshot(site.factory) == before  # mail gateways fetch links: the GET does nothing
        pressed = await browser.post(path, data=form_fields(page.text))
        assert pressed.status_code == 303
        assert pressed.headers["location"].endswith("/login/second-factor")
        cookie = pressed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        # The session owes a second factor: the console is not open yet.
        held = await browser.get("/admin")
        assert held.status_code == 303 and held.headers["location"].endswith("/login/second-factor")

        enrol = await browser.get("/login/second-factor")
        secret = totp_secret(site, OWNER)
        text = main_text(enrol.text)
        assert f"otpauth://totp/lists.example.gov:owner%40digital.gov?secret={secret}" in text
        assert "issuer=lists.example.gov" in text
        assert '<svg role="img"' in enrol.text  # the QR code, inline
        done = await browser.post(
            "/login/second-factor",
            data={"csrf": form_fields(enrol.text)["csrf"], "code": code(secret)},
        )
        assert done.status_code == 200 and "Your recovery codes" in done.text
        codes = [c for c in main_text(done.text).split() if len(c) == 11 and c[5] == "-"]
        assert len(codes) == 10
        admin = await browser.get("/admin")
        assert admin.status_code == 200 and "SM-COP" in main_text(admin.text)
    with site.factory() as session:
        stored = session.scalars(select(RecoveryCode.code_hash)).all()
        assert len(stored) == 10 and not set(stored) & {c.replace("-", "") for c in codes}
    assert audit(site, "second-factor-enrolled") == [(OWNER, "web", "link+totp")]


async def test_unknown_and_malformed_addresses_get_the_same_answer(site: Site) -> None:
    async with client(site) as browser:
        known = await browser.post("/login", data={"address": OWNER})
        before = snapshot(site.factory)
        for address in ("nobody@agency.gov", "not an address", "x@y"):
            answer = await browser.post("/login", data={"address": address})
            assert answer.status_code == 200
            assert main_text(answer.text) == main_text(known.text).replace(OWNER, address)
        assert snapshot(site.factory) == before


async def test_at_most_three_sign_in_mails_an_hour(site: Site) -> None:
    async with client(site) as browser:
        for _ in range(5):
            answer = await browser.post("/login", data={"address": OWNER})
            assert answer.status_code == 200
    mails = [m for m in outbox_to(site.factory, OWNER) if "sign-in" in str(m["Subject"])]
    assert len(mails) == 3


async def test_a_used_or_expired_link_gets_410_with_what_to_do(site: Site) -> None:
    add_member(site, MEMBER, "Jane Doe")
    async with client(site) as browser:
        first = await open_link(site, browser, MEMBER)
        assert first.headers["location"].endswith("/account")
        path = sign_in_path(site, MEMBER)
        used = await browser.get(path)
        assert used.status_code == 410
        assert "Ask for a new link" in main_text(used.text)
        again = await browser.post(path, data={"form_key": "x"})
        assert again.status_code in (403, 410)
        await browser.post("/login", data={"address": MEMBER})
        path = sign_in_path(site, MEMBER)
        with site.factory() as session, session.begin():
            session.execute(update(SignInLink).values(expires_at=utcnow() - timedelta(minutes=1)))
        expired = await browser.get(path)
        assert expired.status_code == 410 and "has expired" in main_text(expired.text)
        unknown = await browser.get("/login/" + "a" * 32)
        assert unknown.status_code == 404


async def test_a_member_signs_in_with_the_link_alone_and_gets_404_for_the_console(
    site: Site,
) -> None:
    add_member(site, MEMBER, "Jane Doe")
    async with client(site) as browser:
        session = await sign_in(site, browser, MEMBER)
        account = await browser.get("/account")
        assert "a mailed link" in main_text(account.text)
        assert (await browser.get("/admin")).status_code == 404
        assert (await browser.get("/admin/lists/sm-cop/held")).status_code == 404
        assert session.csrf
    assert audit(site, "sign-in-link-used") == [(MEMBER, "web", "link")]


async def test_a_replayed_code_and_a_sixth_wrong_code_are_refused(site: Site) -> None:
    async with client(site) as browser:
        first = await sign_in(site, browser, OWNER)
        await browser.post("/logout", data={"csrf": first.csrf})
        secret = first.secret
        await open_link(site, browser, OWNER)
        page = await browser.get("/login/second-factor")
        csrf = form_fields(page.text)["csrf"]
        with site.factory() as session:
            last_step = session.scalar(select(TotpSecret.last_step))
        assert last_step
        # The very code the enrolment used, typed again: refused, and counted as wrong.
        replay = await browser.post(
            "/login/second-factor",
            data={"csrf": csrf, "code": pyotp.TOTP(secret).generate_otp(last_step)},
        )
        assert replay.status_code == 400 and "already used" in main_text(replay.text)
        for _ in range(3):
            wrong = await browser.post(
                "/login/second-factor", data={"csrf": csrf, "code": wrong_code(secret)}
            )
            assert wrong.status_code == 400
        fifth = await browser.post(
            "/login/second-factor", data={"csrf": csrf, "code": wrong_code(secret)}
        )
        assert fifth.status_code == 429 and "locked until" in main_text(fifth.text)
        # A sixth code is refused, even the right one, while the lock lasts.
        right = await browser.post(
            "/login/second-factor", data={"csrf": csrf, "code": next_code(site, OWNER, secret)}
        )
        assert right.status_code == 429 and "locked until" in main_text(right.text)
        assert (await browser.get("/admin")).status_code == 303
    assert len(audit(site, "second-factor-locked")) == 1


async def test_a_recovery_code_signs_in_once(site: Site) -> None:
    async with client(site) as browser:
        await open_link(site, browser, OWNER)
        enrol = await browser.get("/login/second-factor")
        secret = totp_secret(site, OWNER)
        done = await browser.post(
            "/login/second-factor",
            data={"csrf": form_fields(enrol.text)["csrf"], "code": code(secret)},
        )
        recovery = next(c for c in main_text(done.text).split() if len(c) == 11 and c[5] == "-")
        csrf = await csrf_of(browser)
        await browser.post("/logout", data={"csrf": csrf})
        for expected in (303, 400):
            await open_link(site, browser, OWNER)
            page = await browser.get("/login/second-factor")
            answer = await browser.post(
                "/login/second-factor",
                data={"csrf": form_fields(page.text)["csrf"], "code": recovery},
            )
            assert answer.status_code == expected
            if expected == 303:
                account = await browser.get("/account")
                assert "a recovery code" in main_text(account.text)
                await browser.post("/logout", data={"csrf": await csrf_of(browser)})
    assert audit(site, "signed-in") == [(OWNER, "web", "link+recovery")]


async def test_a_post_without_its_csrf_token_gets_403(site: Site) -> None:
    async with client(site) as browser:
        await sign_in(site, browser, OWNER)
        for path in ("/logout", "/account/sign-out-everywhere", "/admin/lists/sm-cop/held"):
            refused = await browser.post(path, data={"action": "approve"})
            assert refused.status_code == 403, path
            wrong = await browser.post(path, data={"csrf": "0" * 32, "action": "approve"})
            assert wrong.status_code == 403, path
        assert (await browser.get("/admin")).status_code == 200  # still signed in


async def test_after_the_idle_timeout_a_console_page_asks_to_sign_in_again(site: Site) -> None:
    async with client(site) as browser:
        await sign_in(site, browser, OWNER)
        with site.factory() as session, session.begin():
            session.execute(
                update(WebSession).values(last_seen_at=utcnow() - timedelta(minutes=31))
            )
        answer = await browser.get("/admin/lists/sm-cop/held")
        assert answer.status_code == 303 and answer.headers["location"].endswith("/login?ended=1")
        login = await browser.get(answer.headers["location"])
        assert "Your session has ended" in main_text(login.text)


async def test_sign_out_everywhere_ends_every_session(site: Site) -> None:
    async with client(site) as laptop, client(site) as phone:
        first = await sign_in(site, laptop, ADMIN)
        await sign_in(site, phone, ADMIN, first.secret)
        assert (await phone.get("/admin")).status_code == 200
        ended = await laptop.post("/account/sign-out-everywhere", data={"csrf": first.csrf})
        assert ended.status_code == 200 and "(2)" in main_text(ended.text)
        assert (await phone.get("/admin")).status_code == 303
        assert (await laptop.get("/admin")).status_code == 303
    with site.factory() as session:
        assert all(s.ended_at is not None for s in session.scalars(select(WebSession)))


async def test_tokens_and_session_ids_never_reach_the_log(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with client(site) as browser:
        await sign_in(site, browser, OWNER)
        raw = browser.cookies.get("listserv-session")
    token = sign_in_path(site, OWNER).rsplit("/", 1)[1]
    ours = [r for r in caplog.records if r.name.startswith("listserv")]
    logged = "\n".join(r.getMessage() for r in ours)
    assert "POST /login/[token] 303" in logged
    assert raw and raw not in logged and token not in logged


async def test_https_sites_use_a_host_prefixed_secure_cookie(db_url: str, tmp_path: Path) -> None:
    settings = console_settings(db_url, tmp_path / "var", base_url="https://lists.example.gov")
    async with open_site(settings) as site:
        add_member(site, MEMBER)
        async with site.client_from("198.51.100.10") as browser:
            pressed = await open_link(site, browser, MEMBER)
    cookie = pressed.headers["set-cookie"]
    assert cookie.startswith("__Host-listserv-session=")
    assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie


async def test_a_member_made_owner_must_sign_in_again_with_a_second_factor(site: Site) -> None:
    add_member(site, MEMBER, "Jane Doe")
    async with client(site) as browser:
        await sign_in(site, browser, MEMBER)
        with site.factory() as session, session.begin():
            mlist = get_list(session, "sm-cop")
            assert mlist is not None
            roster.add_member(session, mlist, MEMBER, role=Role.OWNER, actor=as_actor("test"))
        answer = await browser.get("/admin/lists/sm-cop/members")
        assert answer.status_code == 303 and answer.headers["location"].endswith("/login?again=1")
        page = await browser.get("/login?again=1")
        assert "set up the second factor" in main_text(page.text)
        await sign_in(site, browser, MEMBER)
        assert (await browser.get("/admin/lists/sm-cop/members")).status_code == 200


async def test_cross_site_posts_of_the_sign_in_forms_are_refused(site: Site) -> None:
    async with client(site) as browser:
        await browser.post("/login", data={"address": OWNER})
        path = sign_in_path(site, OWNER)
        page = await browser.get(path)
        other_site = {"sec-fetch-site": "cross-site", "origin": "https://evil.example"}
        for url, data in (("/login", {"address": OWNER}), (path, form_fields(page.text))):
            refused = await browser.post(url, data=data, headers=other_site)
            assert refused.status_code == 403, url
        assert (await browser.post(path, data=form_fields(page.text))).status_code == 303


async def test_housekeeping_forgets_old_sessions_and_links(site: Site) -> None:
    async with client(site) as browser:
        await sign_in(site, browser, OWNER)
    jobs = {job.name: job.run for job in periodic.HOUSEKEEPING}
    with site.factory() as session, session.begin():
        assert jobs["prune-sign-ins"](site.ctx(session)) == 0  # still live
    with site.factory() as session, session.begin():
        later = site.ctx(session)
        later.now = utcnow() + timedelta(days=2)
        assert jobs["prune-sign-ins"](later) == 2  # the session and its link
        assert session.scalars(select(WebSession)).all() == []
    assert audit(site, "sign-in-link-used")  # the record stays
