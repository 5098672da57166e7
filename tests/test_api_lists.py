# SPDX-License-Identifier: Apache-2.0
"""Lists, requests, held posts, bans, bounces, archive, audit and outbox through the API."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from listserv import db, periodic
from listserv.config import Settings
from listserv.models import utcnow
from tests.api_helpers import (
    BASE,
    bearer,
    hold_post,
    open_api,
    problem,
    waiting_request,
)

LIST_URL = f"{BASE}/lists/sm-cop"


async def test_settings_patch_takes_if_match_and_validates_as_lists_set(
    settings: Settings,
) -> None:
    async with open_api(settings) as site:
        headers = bearer(site.issue("owner", ("sm-cop",), name="settings-bot"))
        shown = await site.client.get(LIST_URL, headers=headers)
        assert shown.status_code == 200
        etag = shown.headers["etag"]
        assert shown.json()["settings"]["moderated"] is False
        changed = await site.client.patch(
            LIST_URL,
            json={"moderated": True, "retention_days": 365, "eligible_domains": ["gov"]},
            headers={**headers, "if-match": etag},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["settings"]["retention_days"] == 365
        assert changed.headers["etag"] != etag
        stale = problem(
            await site.client.patch(
                LIST_URL, json={"moderated": False}, headers={**headers, "if-match": etag}
            ),
            412,
        )
        assert stale["field"] == "If-Match"
        bad = problem(
            await site.client.patch(
                LIST_URL, json={"non_member_action": "explode"}, headers=headers
            ),
            422,
        )
        assert bad["field"] == "non_member_action"
        empty = problem(
            await site.client.patch(LIST_URL, json={"display_name": ""}, headers=headers), 422
        )
        assert empty["field"] == "display_name" and "may not be empty" in empty["detail"]
        problem(await site.client.patch(LIST_URL, json={"owners": ["x"]}, headers=headers), 422)
        problem(await site.client.patch(LIST_URL, json={}, headers=headers), 422)
        nan = await site.client.patch(
            LIST_URL,
            content=b'{"bounce_score_threshold": NaN}',
            headers={**headers, "content-type": "application/json"},
        )
        problem(nan, 400)
        too_big = problem(
            await site.client.patch(
                LIST_URL, json={"bounce_temporary_score": 1e10}, headers=headers
            ),
            422,
        )
        assert too_big["field"] == "bounce_temporary_score"
        problem(await site.client.get(f"{BASE}/lists/sm-cop/held/%C2%B2", headers=headers), 404)
        [row] = site.audit("list-change")
        assert (row.channel, row.actor) == ("api", "settings-bot")
        assert row.detail["after"]["retention_days"] == 365
        reader = bearer(site.issue("reader"))
        problem(await site.client.patch(LIST_URL, json={"moderated": False}, headers=reader), 403)


async def test_requests_are_decided_once(settings: Settings) -> None:
    async with open_api(settings) as site:
        headers = bearer(site.issue("moderator", ("sm-cop",), name="mod-bot"))
        first, second = (
            waiting_request(site, "a@example.com"),
            waiting_request(site, "b@example.com"),
        )
        page = (await site.client.get(f"{LIST_URL}/requests", headers=headers)).json()
        assert [r["id"] for r in page["items"]] == [first, second]
        assert page["items"][0]["name"] == "Casey Contractor"
        approved = await site.client.post(f"{LIST_URL}/requests/{first}/approve", headers=headers)
        assert approved.status_code == 200 and "joined" in approved.json()["detail"]
        again = problem(
            await site.client.post(f"{LIST_URL}/requests/{first}/reject", headers=headers), 409
        )
        assert "mod-bot" in again["detail"]
        rejected = await site.client.post(
            f"{LIST_URL}/requests/{second}/reject", json={"reason": "not staff"}, headers=headers
        )
        assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
        problem(await site.client.post(f"{LIST_URL}/requests/99999/approve", headers=headers), 404)
        members = (await site.client.get(f"{LIST_URL}/members", headers=headers)).json()
        assert "a@example.com" in [m["address"] for m in members["items"]]
        reader = bearer(site.issue("reader", ("sm-cop",)))
        problem(await site.client.get(f"{LIST_URL}/requests", headers=reader), 403)


async def test_held_posts_show_text_and_raw_and_are_decided_once(settings: Settings) -> None:
    async with open_api(settings) as site:
        headers = bearer(site.issue("moderator", ("sm-cop",), name="mod-bot"))
        kept, dropped, refused = (hold_post(site, subject=s) for s in ("One", "Two", "Three"))
        page = (await site.client.get(f"{LIST_URL}/held?limit=2", headers=headers)).json()
        assert [p["id"] for p in page["items"]] == [kept, dropped] and page["next_cursor"]
        shown = (await site.client.get(f"{LIST_URL}/held/{kept}", headers=headers)).json()
        assert shown["text"] == "Hello list." and shown["reasons"] == ["the sender is not a member"]
        raw = await site.client.get(f"{LIST_URL}/held/{kept}/raw", headers=headers)
        assert raw.headers["content-type"] == "message/rfc822"
        assert raw.content.startswith(b"From: outsider@agency.gov\r\n")
        ok = await site.client.post(f"{LIST_URL}/held/{kept}/approve", headers=headers)
        assert ok.status_code == 200 and ok.json()["status"] == "accepted"
        problem(await site.client.post(f"{LIST_URL}/held/{kept}/discard", headers=headers), 409)
        await site.client.post(f"{LIST_URL}/held/{dropped}/discard", headers=headers)
        await site.client.post(
            f"{LIST_URL}/held/{refused}/reject", json={"reason": "off topic"}, headers=headers
        )
        assert (await site.client.get(f"{LIST_URL}/held", headers=headers)).json()["items"] == []
        problem(await site.client.get(f"{LIST_URL}/held/424242", headers=headers), 404)
        actions = [a for a in ("post-approved", "post-discarded", "post-rejected")]
        for action in actions:
            [row] = site.audit(action)
            assert (row.channel, row.actor, row.auth) == ("api", "mod-bot", "token")
        archive = (await site.client.get(f"{LIST_URL}/archive?q=one", headers=headers)).json()
        assert [p["id"] for p in archive["items"]] == [kept]
        post = (await site.client.get(f"{LIST_URL}/archive/{kept}", headers=headers)).json()
        assert post["subject"] == "One"
        problem(await site.client.get(f"{LIST_URL}/archive/{dropped}", headers=headers), 404)


async def test_bans_added_listed_and_lifted(settings: Settings) -> None:
    async with open_api(settings) as site:
        headers = bearer(site.issue("owner", ("sm-cop",)))
        added = await site.client.post(
            f"{LIST_URL}/bans",
            json={"pattern": "*@spam.example", "reason": "spam"},
            headers=headers,
        )
        assert added.status_code == 201 and added.json()["kind"] == "glob"
        problem(
            await site.client.post(
                f"{LIST_URL}/bans", json={"pattern": "*@spam.example"}, headers=headers
            ),
            409,
        )
        bad = problem(
            await site.client.post(f"{LIST_URL}/bans", json={"pattern": "^("}, headers=headers),
            422,
        )
        assert bad["field"] == "pattern"
        listed = (await site.client.get(f"{LIST_URL}/bans", headers=headers)).json()
        assert [b["pattern"] for b in listed["items"]] == ["*@spam.example"]
        lifted = await site.client.delete(
            f"{LIST_URL}/bans", params={"pattern": "*@spam.example"}, headers=headers
        )
        assert lifted.status_code == 204
        problem(
            await site.client.delete(
                f"{LIST_URL}/bans", params={"pattern": "*@spam.example"}, headers=headers
            ),
            404,
        )
        problem(await site.client.delete(f"{LIST_URL}/bans", headers=headers), 422)
        assert (await site.client.get(f"{LIST_URL}/bounces", headers=headers)).json() == {
            "items": [],
            "next_cursor": None,
        }


async def test_audit_is_scoped_and_outbox_is_for_site_admins(settings: Settings) -> None:
    async with open_api(settings) as site:
        owner = bearer(site.issue("owner", ("sm-cop",), name="owner-bot"))
        admin = bearer(site.issue("site-admin", name="admin-bot"))
        await site.client.post(
            f"{LIST_URL}/members", json={"address": "c@agency.gov"}, headers=owner
        )
        seen = (await site.client.get(f"{BASE}/audit?limit=500", headers=owner)).json()["items"]
        assert seen and {e["list"] for e in seen} == {"sm-cop"}
        everything = (await site.client.get(f"{BASE}/audit?limit=500", headers=admin)).json()
        assert any(e["action"] == "token-create" for e in everything["items"])
        mine = (
            await site.client.get(
                f"{BASE}/audit", params={"action": "member-add", "list": "sm-cop"}, headers=admin
            )
        ).json()["items"]
        assert [(e["channel"], e["actor"], e["target"]) for e in mine] == [
            ("api", "owner-bot", "c@agency.gov")
        ]
        problem(await site.client.get(f"{BASE}/audit?list=nosuch", headers=owner), 404)
        problem(await site.client.get(f"{BASE}/audit?since=yesterday", headers=owner), 422)
        problem(await site.client.get(f"{BASE}/outbox", headers=owner), 403)
        jobs = (await site.client.get(f"{BASE}/outbox", headers=admin)).json()["items"]
        assert jobs and jobs[0]["kind"] == "service"  # the welcome to c@agency.gov


async def test_idempotent_answers_and_settled_deliveries_are_pruned(settings: Settings) -> None:
    async with open_api(settings) as site:
        headers = {**bearer(site.issue("owner", ("sm-cop",))), "idempotency-key": "k1"}
        added = await site.client.post(
            f"{LIST_URL}/members", json={"address": "d@agency.gov"}, headers=headers
        )
        assert added.status_code == 201
        jobs = {job.name: job for job in periodic.HOUSEKEEPING}
        with db.session_scope(site.factory) as session:
            ctx = site.ctx(session)
            assert jobs["prune-idempotent-answers"].run(ctx) == 0
            later = replace(ctx, now=utcnow() + timedelta(hours=25))
            assert jobs["prune-idempotent-answers"].run(later) == 1
            assert jobs["prune-webhook-deliveries"].run(later) == 0
        # Forgotten after a day: the same key now adds (here: refuses) afresh.
        again = await site.client.post(
            f"{LIST_URL}/members", json={"address": "d@agency.gov"}, headers=headers
        )
        problem(again, 409)


async def test_a_trailing_slash_is_a_404_problem_never_a_redirect_to_the_host_header(
    settings: Settings,
) -> None:
    async with open_api(settings) as site:
        headers = {**bearer(site.issue("owner", ("sm-cop",))), "host": "evil.example.com"}
        answer = await site.client.get(f"{LIST_URL}/", headers=headers)
        problem(answer, 404)
        assert "location" not in answer.headers
