# SPDX-License-Identifier: Apache-2.0
"""Tokens: issued on the host, stored hashed, refused when unknown, expired or revoked, metered."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text, update

from listserv.api import handling
from listserv.config import Settings
from listserv.logs import RedactSecrets, redact
from listserv.models import ApiToken, AuditEvent, utcnow
from tests.admin_helpers import run_cli, write_config
from tests.api_helpers import BASE, bearer, open_api, problem, with_limits


async def test_no_bad_or_unknown_token_is_401_problem(settings: Settings) -> None:
    async with open_api(settings) as site:
        site.issue()
        for headers in (
            {},
            {"authorization": "Basic dXNlcjpwYXNz"},
            bearer("lsv_" + "x" * 43),
            bearer("not-even-ours"),
        ):
            response = await site.client.get(f"{BASE}/lists", headers=headers)
            body = problem(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert body["type"].endswith("#problem-unauthorized")


async def test_expired_token_is_401(settings: Settings) -> None:
    async with open_api(settings) as site:
        token = site.issue(expires_at=utcnow() + timedelta(hours=1))
        assert (await site.client.get(f"{BASE}/lists", headers=bearer(token))).status_code == 200
        with site.factory() as session, session.begin():
            session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        problem(await site.client.get(f"{BASE}/lists", headers=bearer(token)), 401)


async def test_cli_token_is_printed_once_stored_hashed_and_revoked_at_once(
    settings: Settings, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "listserv.toml", settings.database_url, tmp_path / "var")
    created = run_cli(
        config, "tokens", "create", "hr-offboarding", "--role", "owner", "--list", "sm-cop",
        "--expires", "90d", "--json",
    )  # fmt: skip
    assert created.code == 0, created.stderr
    shown = created.json()
    assert set(shown) >= {"id", "name", "token", "expires_at"}
    assert shown["name"] == "hr-offboarding" and shown["token"].startswith("lsv_")
    token = shown["token"]
    async with open_api(settings) as site:
        response = await site.client.get(f"{BASE}/lists/sm-cop", headers=bearer(token))
        assert response.status_code == 200
        # The database holds only a keyed hash: no column of any table has the token.
        with site.factory() as session:
            row = session.scalar(select(ApiToken))
            assert row is not None and row.token_hash != token and token not in row.token_hash
            for table in ("api_tokens", "audit_events"):
                dump = repr(session.execute(text(f"SELECT * FROM {table}")).all())
                assert token not in dump and token[4:] not in dump
        listed = run_cli(config, "tokens", "list", "--json")
        assert listed.code == 0 and token not in listed.stdout
        assert listed.json()[0]["name"] == "hr-offboarding"
        assert listed.json()[0]["lists"] == ["sm-cop"]
        assert listed.json()[0]["last_used_at"] is not None  # noted by the GET above

        revoked = run_cli(config, "tokens", "revoke", str(shown["id"]))
        assert revoked.code == 0, revoked.stderr
        problem(await site.client.get(f"{BASE}/lists/sm-cop", headers=bearer(token)), 401)
        again = run_cli(config, "tokens", "revoke", str(shown["id"]))
        assert again.code == 1 and "already revoked" in again.stderr


def test_cli_refuses_bad_roles_and_names(settings: Settings, tmp_path: Path) -> None:
    config = write_config(tmp_path / "listserv.toml", settings.database_url, tmp_path / "var")
    bad_role = run_cli(config, "tokens", "create", "x", "--role", "emperor")
    assert bad_role.code == 1 and "role must be one of" in bad_role.stderr
    no_list = run_cli(config, "tokens", "create", "x", "--role", "owner", "--list", "nope")
    assert no_list.code == 1 and "no list named nope" in no_list.stderr
    assert run_cli(config, "tokens", "create", "dup", "--role", "reader").code == 0
    dup = run_cli(config, "tokens", "create", "dup", "--role", "reader")
    assert dup.code == 1 and "already exists" in dup.stderr
    no_role = run_cli(config, "tokens", "create", "x")
    assert no_role.code == 2 and "--role" in no_role.stderr


async def test_rate_limit_answers_429_with_retry_after(settings: Settings) -> None:
    async with open_api(with_limits(settings, api_requests_per_second=1, api_burst=3)) as site:
        token, other = site.issue(), site.issue()
        codes = [
            (await site.client.get(f"{BASE}/lists", headers=bearer(token))).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 200]
        refused = await site.client.get(f"{BASE}/lists", headers=bearer(token))
        body = problem(refused, 429)
        assert int(refused.headers["retry-after"]) >= 1
        assert "rate" in body["detail"]
        # Buckets are per token: another token is not held back.
        assert (await site.client.get(f"{BASE}/lists", headers=bearer(other))).status_code == 200


async def test_tokens_never_reach_logs_or_audit_records(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecrets())
    async with open_api(settings) as site:
        token = site.issue(name="records-sync")
        headers = bearer(token)
        logging.getLogger("listserv.test").info("calling with Authorization: Bearer %s", token)
        await site.client.post(
            f"{BASE}/lists/sm-cop/members", json={"address": "jane@agency.gov"}, headers=headers
        )
        await site.client.get(f"{BASE}/lists/sm-cop/members?q={token}", headers=headers)
        with site.factory() as session:
            audit = repr(session.execute(select(AuditEvent.__table__)).all())
        assert token not in audit and "records-sync" in audit
    assert token not in caplog.text
    assert "lsv_[token]" in caplog.text
    assert redact(f"token={token}") == "token=lsv_[token]"


async def test_routing_errors_and_failures_are_problems_with_the_security_headers(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_api(settings) as site:
        token = site.issue(role="site-admin")
        missing = await site.client.get(f"{BASE}/nothing-here", headers=bearer(token))
        assert problem(missing, 404)["detail"] == "There is no such resource in this API."
        wrong = await site.client.put(f"{BASE}/lists", headers=bearer(token))
        assert problem(wrong, 405)["detail"] == "Not allowed on this path."
        assert "GET" in wrong.headers["allow"]

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("the database went away")

        monkeypatch.setattr(handling, "authenticate", broken)
        transport = httpx.ASGITransport(
            app=site.client._transport.app,  # type: ignore[attr-defined]
            raise_app_exceptions=False,
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            failed = await client.get(f"{BASE}/lists", headers=bearer(token))
        problem(failed, 500)
        for answer in (missing, wrong, failed):
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["cache-control"] == "no-store"
